package runtime

import (
	"math"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/runtime/safetensors"
	"github.com/airlock-dev/airlock/tools/mkmodel/modelgen"
)

// smallSpec is a random model small enough for the reference path.
func smallSpec() modelgen.Spec {
	return modelgen.Spec{Architecture: "Qwen2ForCausalLM", Hidden: 48, Intermediate: 96, Layers: 2,
		Heads: 6, KVHeads: 6, Vocab: 300, MaxPositions: 256, Tied: true, Seed: 3, BOS: 0, EOS: 1}
}

func writeModel(t *testing.T, spec modelgen.Spec) string {
	t.Helper()
	dir := t.TempDir()
	if err := modelgen.Write(dir, spec, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func testIDs(n, vocab int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i*7919 + 13) % vocab
	}
	return ids
}

// checkFastMatchesReference compares every position's logits of a
// whole-prompt prefill and of token-by-token decoding with the reference
// path.
func checkFastMatchesReference(t *testing.T, m *Model, ids []int, tol float64) {
	t.Helper()
	ref, err := m.referenceForward(ids)
	if err != nil {
		t.Fatal(err)
	}
	V := m.cfg.VocabSize
	cache := m.NewKVCache(4)
	ws := m.newWorkspace(len(ids))
	if err := m.forward(ids, cache, ws, logitsAll); err != nil {
		t.Fatal(err)
	}
	step := m.NewKVCache(1)
	sws := m.newWorkspace(1)
	var worst float64
	for p := range ids {
		if err := m.forward(ids[p:p+1], step, sws, logitsLast); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < V; i++ {
			r := float64(ref[p][i])
			worst = max(worst, math.Abs(float64(ws.logits[p*V+i])-r), math.Abs(float64(sws.logits[i])-r))
		}
		if argmax(ref[p]) != argmax(sws.logits[:V]) || argmax(ref[p]) != argmax(ws.logits[p*V:(p+1)*V]) {
			t.Errorf("position %d: argmax differs between reference, prefill and decode", p)
		}
	}
	if worst > tol {
		t.Errorf("fast path differs from the reference by up to %.3g (tolerance %.3g)", worst, tol)
	}
	t.Logf("worst |fast − reference| logit difference: %.3g", worst)
}

func TestVariantsMatchReference(t *testing.T) {
	cases := []struct {
		name string
		edit func(*modelgen.Spec)
	}{
		{"qwen2-bf16", func(*modelgen.Spec) {}},
		{"gqa", func(s *modelgen.Spec) { s.KVHeads = 2 }},
		{"mqa", func(s *modelgen.Spec) { s.KVHeads = 1 }},
		{"untied", func(s *modelgen.Spec) { s.Tied = false }},
		{"sharded", func(s *modelgen.Spec) { s.Shards = 3; s.Tied = false }},
		{"f16", func(s *modelgen.Spec) { s.DType = safetensors.F16 }},
		{"f32", func(s *modelgen.Spec) { s.DType = safetensors.F32; s.KVHeads = 3 }},
		{"llama", func(s *modelgen.Spec) { s.Architecture = "LlamaForCausalLM"; s.KVHeads = 2; s.Tied = false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := smallSpec()
			tc.edit(&spec)
			m, err := Load(writeModel(t, spec), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.cfg.NumKVHeads != spec.KVHeads || m.cfg.TieWordEmbeddings != spec.Tied ||
				m.cfg.AttentionBias != (spec.Architecture == "Qwen2ForCausalLM") {
				t.Fatalf("config %+v does not reflect the spec", m.cfg)
			}
			if shared := sameBacking(&m.lmHead, &m.embed); shared == spec.Tied {
				// fine: tied models share, untied ones must not
			} else {
				t.Fatalf("lm_head shares the embedding: %v, tied: %v", shared, spec.Tied)
			}
			checkFastMatchesReference(t, m, testIDs(20, spec.Vocab), 2e-3)
		})
	}
}

func TestHeapAndMmapAgree(t *testing.T) {
	dir := writeModel(t, smallSpec())
	a, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Load(dir, LoadOptions{Heap: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ids := testIDs(10, 300)
	wa, wb := a.newWorkspace(10), b.newWorkspace(10)
	if err := a.forward(ids, a.NewKVCache(10), wa, logitsLast); err != nil {
		t.Fatal(err)
	}
	if err := b.forward(ids, b.NewKVCache(10), wb, logitsLast); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		if wa.logits[i] != wb.logits[i] {
			t.Fatalf("logit %d: mmap %v, heap %v", i, wa.logits[i], wb.logits[i])
		}
	}
}

func TestLoadErrorsNameTheTensor(t *testing.T) {
	cases := []struct {
		name string
		edit func(*modelgen.Spec)
		want []string
	}{
		{"missing", func(s *modelgen.Spec) { s.Omit = []string{"model.layers.1.mlp.up_proj.weight"} },
			[]string{"model.layers.1.mlp.up_proj.weight", "missing"}},
		{"missing-bias", func(s *modelgen.Spec) { s.Omit = []string{"model.layers.0.self_attn.k_proj.bias"} },
			[]string{"model.layers.0.self_attn.k_proj.bias", "missing"}},
		{"misshapen", func(s *modelgen.Spec) {
			s.Reshape = map[string][]int{"model.layers.0.self_attn.q_proj.weight": {48, 47}}
		}, []string{"model.layers.0.self_attn.q_proj.weight", "[48 47]", "want [48 48]"}},
		{"misshapen-norm", func(s *modelgen.Spec) { s.Reshape = map[string][]int{"model.norm.weight": {49}} },
			[]string{"model.norm.weight", "[49]"}},
		{"missing-lm-head", func(s *modelgen.Spec) { s.Tied = false; s.Omit = []string{"lm_head.weight"} },
			[]string{"lm_head.weight", "missing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := smallSpec()
			tc.edit(&spec)
			_, err := Load(writeModel(t, spec), LoadOptions{})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"architectures":["GPT2LMHeadModel"]}`, "not supported"},
		{`{"architectures":["Qwen2ForCausalLM"],"hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":5,"vocab_size":10}`, "multiple"},
		{`{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"vocab_size":10,"rope_scaling":{"type":"linear","factor":2}}`, "rope_scaling"},
		{`{"architectures":["Qwen2ForCausalLM"],"hidden_size":0}`, "hidden_size"},
		{`{`, "config.json"},
	} {
		if _, err := ParseConfig([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%s) = %v, want an error mentioning %q", tc.json, err, tc.want)
		}
	}
	c, err := ParseConfig([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":10,"eos_token_id":[2,3]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 16 || c.AttentionBias || c.RopeTheta != 10000 || len(c.EOSTokenIDs) != 2 {
		t.Fatalf("llama defaults: %+v", c)
	}
}

// sameBacking reports whether two weights view the same memory.
func sameBacking(a, b *Weight) bool {
	if a.BF16 != nil && b.BF16 != nil {
		return &a.BF16[0] == &b.BF16[0]
	}
	if a.F32 != nil && b.F32 != nil {
		return &a.F32[0] == &b.F32[0]
	}
	return false
}

func TestConfigRejectsNegativeFields(t *testing.T) {
	for _, field := range []string{`"head_dim":-2`, `"max_position_embeddings":-1`, `"rope_theta":-5`, `"rms_norm_eps":-1`} {
		js := `{"architectures":["Qwen2ForCausalLM"],"hidden_size":8,"intermediate_size":4,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":3,` + field + `}`
		if _, err := ParseConfig([]byte(js)); err == nil {
			t.Errorf("accepted %s", field)
		}
	}
}
