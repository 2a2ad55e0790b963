package runtime

import (
	"os"
	"testing"
)

// FuzzParseConfig checks that no config.json or generation_config.json
// content panics, and that an accepted config is internally consistent.
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{tinyDir + "/config.json", tinyDir + "/generation_config.json"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":4,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":3,"eos_token_id":[1,2]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseGenerationConfig(data)
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if c.HeadDim <= 0 || c.HeadDim%2 != 0 || c.NumKVHeads <= 0 || c.NumHeads%c.NumKVHeads != 0 ||
			c.HiddenSize <= 0 || c.VocabSize <= 0 || c.NumLayers <= 0 || c.IntermediateSize <= 0 {
			t.Fatalf("accepted inconsistent config %+v", c)
		}
	})
}
