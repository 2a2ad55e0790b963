// Package modelgen writes random-weight Qwen2/Llama model directories in the
// Hugging Face layout (config.json, generation_config.json, safetensors
// weights, optionally sharded, and tokenizer files), so the runtime can be
// tested and benchmarked at any shape without downloading a model.
package modelgen

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"github.com/airlock-dev/airlock/runtime/safetensors"
)

// Spec is the shape and format of a model to generate.
type Spec struct {
	Architecture     string // "Qwen2ForCausalLM" (default) or "LlamaForCausalLM"
	Hidden           int
	Intermediate     int
	Layers           int
	Heads            int
	KVHeads          int
	Vocab            int
	MaxPositions     int
	RopeTheta        float64
	RMSNormEps       float64
	Tied             bool              // tie_word_embeddings (no lm_head.weight)
	DType            safetensors.DType // BF16 (default), F16 or F32
	Shards           int               // > 1 writes model-0000i-of-0000n.safetensors + index
	Seed             uint64
	BOS, EOS         int
	TokenizerDir     string   // copy tokenizer.json and tokenizer_config.json from here
	Omit             []string // tensor names to leave out (error tests)
	Reshape          map[string][]int
	GenerationConfig map[string]any // written as generation_config.json if non-nil
}

// Presets are named real shapes.
var Presets = map[string]Spec{
	"qwen1.5-0.5b": {Architecture: "Qwen2ForCausalLM", Hidden: 1024, Intermediate: 2816, Layers: 24,
		Heads: 16, KVHeads: 16, Vocab: 151936, MaxPositions: 32768, RopeTheta: 1e6, RMSNormEps: 1e-6,
		Tied: true, BOS: 151643, EOS: 151645},
	"qwen2-0.5b": {Architecture: "Qwen2ForCausalLM", Hidden: 896, Intermediate: 4864, Layers: 24,
		Heads: 14, KVHeads: 2, Vocab: 151936, MaxPositions: 32768, RopeTheta: 1e6, RMSNormEps: 1e-6,
		Tied: true, BOS: 151643, EOS: 151645},
	"tiny": {Architecture: "Qwen2ForCausalLM", Hidden: 64, Intermediate: 176, Layers: 2,
		Heads: 4, KVHeads: 2, Vocab: 512, MaxPositions: 4096, RopeTheta: 1e6, RMSNormEps: 1e-6,
		Tied: true, BOS: 0, EOS: 1},
}

func (s *Spec) defaults() {
	if s.Architecture == "" {
		s.Architecture = "Qwen2ForCausalLM"
	}
	if s.KVHeads == 0 {
		s.KVHeads = s.Heads
	}
	if s.MaxPositions == 0 {
		s.MaxPositions = 4096
	}
	if s.RopeTheta == 0 {
		s.RopeTheta = 1e6
	}
	if s.RMSNormEps == 0 {
		s.RMSNormEps = 1e-6
	}
	if s.DType == "" {
		s.DType = safetensors.BF16
	}
	if s.Shards < 1 {
		s.Shards = 1
	}
}

// qwen2 reports whether the spec has q/k/v biases.
func (s *Spec) qwen2() bool { return s.Architecture == "Qwen2ForCausalLM" }

// tensorSpec is one tensor to generate: values uniform with the given
// standard deviation around mean.
type tensorSpec struct {
	name      string
	shape     []int
	mean, std float64
}

func (s *Spec) tensors() []tensorSpec {
	hd := s.Hidden / s.Heads
	q, kv := s.Heads*hd, s.KVHeads*hd
	lin := func(name string, rows, cols int) tensorSpec {
		return tensorSpec{name, []int{rows, cols}, 0, 1 / math.Sqrt(float64(cols))}
	}
	ts := []tensorSpec{
		{"model.embed_tokens.weight", []int{s.Vocab, s.Hidden}, 0, 0.5},
		{"model.norm.weight", []int{s.Hidden}, 1, 0.1},
	}
	if !s.Tied {
		ts = append(ts, tensorSpec{"lm_head.weight", []int{s.Vocab, s.Hidden}, 0, 0.5 / math.Sqrt(float64(s.Hidden))})
	}
	for i := 0; i < s.Layers; i++ {
		p := "model.layers." + strconv.Itoa(i) + "."
		ts = append(ts,
			tensorSpec{p + "input_layernorm.weight", []int{s.Hidden}, 1, 0.1},
			tensorSpec{p + "post_attention_layernorm.weight", []int{s.Hidden}, 1, 0.1},
			lin(p+"self_attn.q_proj.weight", q, s.Hidden),
			lin(p+"self_attn.k_proj.weight", kv, s.Hidden),
			lin(p+"self_attn.v_proj.weight", kv, s.Hidden),
			lin(p+"self_attn.o_proj.weight", s.Hidden, q),
			lin(p+"mlp.gate_proj.weight", s.Intermediate, s.Hidden),
			lin(p+"mlp.up_proj.weight", s.Intermediate, s.Hidden),
			lin(p+"mlp.down_proj.weight", s.Hidden, s.Intermediate),
		)
		if s.qwen2() {
			ts = append(ts,
				tensorSpec{p + "self_attn.q_proj.bias", []int{q}, 0, 0.3},
				tensorSpec{p + "self_attn.k_proj.bias", []int{kv}, 0, 0.3},
				tensorSpec{p + "self_attn.v_proj.bias", []int{kv}, 0, 0.3},
			)
		}
	}
	return ts
}

// Write generates the model directory dir. progress, if non-nil, is called
// with the bytes of weights written.
func Write(dir string, spec Spec, progress func(int64)) error {
	spec.defaults()
	if spec.Hidden <= 0 || spec.Heads <= 0 || spec.Hidden%spec.Heads != 0 || spec.Layers <= 0 ||
		spec.Intermediate <= 0 || spec.Vocab <= 0 || spec.Heads%spec.KVHeads != 0 {
		return fmt.Errorf("modelgen: inconsistent shape %+v", spec)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("modelgen: %w", err)
	}
	if err := writeConfigs(dir, spec); err != nil {
		return err
	}
	omit := map[string]bool{}
	for _, n := range spec.Omit {
		omit[n] = true
	}
	var all []safetensors.WriteTensor
	for i, ts := range spec.tensors() {
		if omit[ts.name] {
			continue
		}
		shape := ts.shape
		if r, ok := spec.Reshape[ts.name]; ok {
			shape = r
		}
		all = append(all, safetensors.WriteTensor{Name: ts.name, DType: spec.DType, Shape: shape,
			Write: filler(ts, shape, spec.DType, spec.Seed*1000003+uint64(i), progress)})
	}
	if spec.Shards == 1 {
		if err := safetensors.WriteFile(filepath.Join(dir, safetensors.SingleFile), all, map[string]string{"format": "pt"}); err != nil {
			return fmt.Errorf("modelgen: %w", err)
		}
	} else if err := writeShards(dir, all, spec.Shards); err != nil {
		return err
	}
	if spec.TokenizerDir != "" {
		for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
			data, err := os.ReadFile(filepath.Join(spec.TokenizerDir, name))
			if err != nil {
				return fmt.Errorf("modelgen: tokenizer: %w", err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return fmt.Errorf("modelgen: %w", err)
			}
		}
	}
	return nil
}

func writeShards(dir string, all []safetensors.WriteTensor, n int) error {
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	shards := make([][]safetensors.WriteTensor, n)
	weightMap := map[string]string{}
	var total int64
	for i, t := range all {
		k := i * n / len(all)
		shards[k] = append(shards[k], t)
		weightMap[t.Name] = fmt.Sprintf("model-%05d-of-%05d.safetensors", k+1, n)
		total += t.ByteSize()
	}
	for k, sh := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", k+1, n)
		if err := safetensors.WriteFile(filepath.Join(dir, name), sh, map[string]string{"format": "pt"}); err != nil {
			return fmt.Errorf("modelgen: %w", err)
		}
	}
	idx, _ := json.MarshalIndent(map[string]any{
		"metadata":   map[string]any{"total_size": total},
		"weight_map": weightMap,
	}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, safetensors.IndexFile), idx, 0o644); err != nil {
		return fmt.Errorf("modelgen: %w", err)
	}
	return nil
}

func writeConfigs(dir string, s Spec) error {
	modelType := "qwen2"
	if !s.qwen2() {
		modelType = "llama"
	}
	torchDType := map[safetensors.DType]string{safetensors.BF16: "bfloat16", safetensors.F16: "float16", safetensors.F32: "float32"}[s.DType]
	cfg := map[string]any{
		"architectures": []string{s.Architecture}, "model_type": modelType,
		"hidden_size": s.Hidden, "intermediate_size": s.Intermediate, "num_hidden_layers": s.Layers,
		"num_attention_heads": s.Heads, "num_key_value_heads": s.KVHeads, "vocab_size": s.Vocab,
		"max_position_embeddings": s.MaxPositions, "rope_theta": s.RopeTheta, "rms_norm_eps": s.RMSNormEps,
		"tie_word_embeddings": s.Tied, "hidden_act": "silu", "torch_dtype": torchDType,
		"bos_token_id": s.BOS, "eos_token_id": s.EOS, "use_sliding_window": false,
	}
	gen := s.GenerationConfig
	if gen == nil {
		gen = map[string]any{"bos_token_id": s.BOS, "pad_token_id": s.BOS, "do_sample": true,
			"eos_token_id": []int{s.EOS, s.BOS}, "repetition_penalty": 1.1, "top_p": 0.8, "top_k": 20}
	}
	for name, v := range map[string]any{"config.json": cfg, "generation_config.json": gen} {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("modelgen: %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("modelgen: %w", err)
		}
	}
	return nil
}

// chunkElems is how many elements one generator goroutine fills at a time.
const chunkElems = 1 << 20

// filler returns a writer of random values for ts: uniform on 256 levels
// with ts's mean and standard deviation, eight values per 64-bit draw of a
// splitmix64 stream seeded per chunk, chunks filled in parallel, so the
// output depends only on the seed.
func filler(ts tensorSpec, shape []int, dt safetensors.DType, seed uint64, progress func(int64)) func(io.Writer) error {
	return func(w io.Writer) error {
		n := 1
		for _, d := range shape {
			n *= d
		}
		es := dt.Size()
		// Uniform on [-a, a] has standard deviation a/√3.
		a := ts.std * math.Sqrt(3)
		var table [256][4]byte
		for i := range table {
			v := float32(ts.mean + a*(2*(float64(i)+0.5)/256-1))
			switch dt {
			case safetensors.BF16:
				binary.LittleEndian.PutUint16(table[i][:], safetensors.F32ToBF16(v))
			case safetensors.F16:
				binary.LittleEndian.PutUint16(table[i][:], safetensors.F32ToF16(v))
			default:
				binary.LittleEndian.PutUint32(table[i][:], math.Float32bits(v))
			}
		}
		fill := func(c int) []byte {
			lo := c * chunkElems
			hi := min(lo+chunkElems, n)
			buf := make([]byte, (hi-lo)*es)
			state := seed ^ uint64(c)*0x9e3779b97f4a7c15
			for i := 0; i < hi-lo; i += 8 {
				r := splitmix(&state)
				for j := 0; j < 8 && i+j < hi-lo; j++ {
					copy(buf[(i+j)*es:(i+j+1)*es], table[byte(r>>(8*j))][:es])
				}
			}
			return buf
		}
		// Fill a window of chunks in parallel, then write them in order.
		window := 2 * runtime.GOMAXPROCS(0)
		nchunks := (n + chunkElems - 1) / chunkElems
		bufs := make([][]byte, window)
		for c0 := 0; c0 < nchunks; c0 += window {
			c1 := min(c0+window, nchunks)
			var wg sync.WaitGroup
			for c := c0; c < c1; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					bufs[c-c0] = fill(c)
				}()
			}
			wg.Wait()
			for c := c0; c < c1; c++ {
				if _, err := w.Write(bufs[c-c0]); err != nil {
					return err
				}
				if progress != nil {
					progress(int64(len(bufs[c-c0])))
				}
			}
		}
		return nil
	}
}

func splitmix(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// WeightBytes returns the total bytes of weights the spec produces.
func (s Spec) WeightBytes() int64 {
	s.defaults()
	var n int64
	for _, t := range s.tensors() {
		e := int64(s.DType.Size())
		for _, d := range t.shape {
			e *= int64(d)
		}
		n += e
	}
	return n
}
