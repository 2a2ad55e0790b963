package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Config is the architecture description read from config.json.
type Config struct {
	Architecture      string  // "Qwen2ForCausalLM" or "LlamaForCausalLM"
	ModelType         string  // "qwen2" or "llama"
	HiddenSize        int     // width of the residual stream
	IntermediateSize  int     // width of the SwiGLU MLP
	NumLayers         int     // decoder blocks
	NumHeads          int     // query heads
	NumKVHeads        int     // key/value heads (GQA when < NumHeads)
	HeadDim           int     // per-head width
	VocabSize         int     // rows of the embedding and the lm_head
	MaxPositions      int     // max_position_embeddings
	RopeTheta         float64 // RoPE base
	RMSNormEps        float64 // epsilon inside RMSNorm
	TieWordEmbeddings bool    // lm_head shares the embedding matrix
	AttentionBias     bool    // q/k/v projections carry a bias (Qwen2)
	BOSTokenID        int     // -1 if unset
	EOSTokenIDs       []int   // end-of-sequence ids from config.json
}

// idList decodes a token id given as a number or a list of numbers.
type idList []int

func (l *idList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*l = nil
		return nil
	}
	var one int
	if err := json.Unmarshal(b, &one); err == nil {
		*l = idList{one}
		return nil
	}
	var many []int
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("token id must be a number or a list of numbers: %w", err)
	}
	*l = many
	return nil
}

type rawConfig struct {
	Architectures         []string        `json:"architectures"`
	ModelType             string          `json:"model_type"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      int             `json:"num_key_value_heads"`
	HeadDim               int             `json:"head_dim"`
	VocabSize             int             `json:"vocab_size"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	RopeTheta             float64         `json:"rope_theta"`
	RMSNormEps            float64         `json:"rms_norm_eps"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         *bool           `json:"attention_bias"`
	HiddenAct             string          `json:"hidden_act"`
	RopeScaling           json.RawMessage `json:"rope_scaling"`
	UseSlidingWindow      bool            `json:"use_sliding_window"`
	BOSTokenID            *int            `json:"bos_token_id"`
	EOSTokenID            idList          `json:"eos_token_id"`
}

// ParseConfig decodes and validates the contents of config.json.
func ParseConfig(data []byte) (Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return Config{}, fmt.Errorf("config.json: %w", err)
	}
	c := Config{
		ModelType:        r.ModelType,
		HiddenSize:       r.HiddenSize,
		IntermediateSize: r.IntermediateSize,
		NumLayers:        r.NumHiddenLayers,
		NumHeads:         r.NumAttentionHeads,
		NumKVHeads:       r.NumKeyValueHeads,
		HeadDim:          r.HeadDim,
		VocabSize:        r.VocabSize,
		MaxPositions:     r.MaxPositionEmbeddings,
		RopeTheta:        r.RopeTheta,
		RMSNormEps:       r.RMSNormEps,
		BOSTokenID:       -1,
		EOSTokenIDs:      r.EOSTokenID,
	}
	if len(r.Architectures) > 0 {
		c.Architecture = r.Architectures[0]
	}
	switch {
	case c.Architecture == "Qwen2ForCausalLM" || (c.Architecture == "" && r.ModelType == "qwen2"):
		c.Architecture, c.AttentionBias, c.TieWordEmbeddings = "Qwen2ForCausalLM", true, false
		if r.UseSlidingWindow {
			return Config{}, errors.New("config.json: use_sliding_window is not supported")
		}
	case c.Architecture == "LlamaForCausalLM" || (c.Architecture == "" && r.ModelType == "llama"):
		c.Architecture, c.AttentionBias, c.TieWordEmbeddings = "LlamaForCausalLM", false, false
	default:
		return Config{}, fmt.Errorf("config.json: architecture %q (model_type %q) is not supported; want Qwen2ForCausalLM or LlamaForCausalLM", c.Architecture, r.ModelType)
	}
	if r.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *r.TieWordEmbeddings
	}
	if r.AttentionBias != nil {
		c.AttentionBias = *r.AttentionBias
	}
	if r.BOSTokenID != nil {
		c.BOSTokenID = *r.BOSTokenID
	}
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	if c.MaxPositions == 0 {
		c.MaxPositions = 2048
	}
	if r.HiddenAct != "" && r.HiddenAct != "silu" {
		return Config{}, fmt.Errorf("config.json: hidden_act %q is not supported; want silu", r.HiddenAct)
	}
	if len(r.RopeScaling) > 0 && string(r.RopeScaling) != "null" {
		return Config{}, fmt.Errorf("config.json: rope_scaling %s is not supported", r.RopeScaling)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumLayers}, {"num_attention_heads", c.NumHeads},
		{"num_key_value_heads", c.NumKVHeads}, {"vocab_size", c.VocabSize},
	} {
		if f.v <= 0 {
			return Config{}, fmt.Errorf("config.json: %s must be positive, got %d", f.name, f.v)
		}
	}
	if c.HeadDim < 0 || c.MaxPositions < 0 || c.RopeTheta < 0 || c.RMSNormEps < 0 {
		return Config{}, fmt.Errorf("config.json: head_dim, max_position_embeddings, rope_theta and rms_norm_eps must not be negative")
	}
	if c.HeadDim == 0 {
		if c.HiddenSize%c.NumHeads != 0 {
			return Config{}, fmt.Errorf("config.json: hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if c.HeadDim%2 != 0 {
		return Config{}, fmt.Errorf("config.json: head dimension %d must be even for RoPE", c.HeadDim)
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return Config{}, fmt.Errorf("config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumHeads, c.NumKVHeads)
	}
	return c, nil
}

// GenerationConfig holds the sampling defaults of generation_config.json.
type GenerationConfig struct {
	DoSample          bool
	Temperature       float32
	TopK              int
	TopP              float32
	RepetitionPenalty float32
	MaxNewTokens      int
	EOSTokenIDs       []int
}

// LoadGenerationConfig reads DIR/generation_config.json; a missing file gives
// the zero value (greedy).
func LoadGenerationConfig(dir string) (GenerationConfig, error) {
	data, err := os.ReadFile(filepath.Join(dir, "generation_config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return GenerationConfig{}, nil
	}
	if err != nil {
		return GenerationConfig{}, fmt.Errorf("generation_config.json: %w", err)
	}
	return ParseGenerationConfig(data)
}

// ParseGenerationConfig decodes generation_config.json.
func ParseGenerationConfig(data []byte) (GenerationConfig, error) {
	var r struct {
		DoSample          bool     `json:"do_sample"`
		Temperature       *float32 `json:"temperature"`
		TopK              int      `json:"top_k"`
		TopP              float32  `json:"top_p"`
		RepetitionPenalty float32  `json:"repetition_penalty"`
		MaxNewTokens      int      `json:"max_new_tokens"`
		EOSTokenID        idList   `json:"eos_token_id"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return GenerationConfig{}, fmt.Errorf("generation_config.json: %w", err)
	}
	g := GenerationConfig{DoSample: r.DoSample, TopK: r.TopK, TopP: r.TopP,
		RepetitionPenalty: r.RepetitionPenalty, MaxNewTokens: r.MaxNewTokens, EOSTokenIDs: r.EOSTokenID}
	if r.Temperature != nil {
		g.Temperature = *r.Temperature
	} else if r.DoSample {
		g.Temperature = 1 // transformers' default when sampling
	}
	return g, nil
}

// SampleParams returns the defaults as SampleParams: greedy unless do_sample.
func (g GenerationConfig) SampleParams() SampleParams {
	if !g.DoSample {
		return SampleParams{RepetitionPenalty: g.RepetitionPenalty, MaxTokens: g.MaxNewTokens}
	}
	return SampleParams{Temperature: g.Temperature, TopK: g.TopK, TopP: g.TopP,
		RepetitionPenalty: g.RepetitionPenalty, MaxTokens: g.MaxNewTokens}
}
