package runtime

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nlpodyssey/spago/mat"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/runtime/safetensors"
)

// LoadOptions controls Load.
type LoadOptions struct {
	// Heap reads the weights into process memory instead of memory-mapping
	// the safetensors files (see docs/runtime.md for the trade-off).
	Heap bool
	// Progress, if non-nil, receives a byte progress bar while the weights
	// are made resident (a live bar on a terminal, JSON lines otherwise).
	Progress io.Writer
	// MaxContext caps the context length below max_position_embeddings
	// (0 keeps the model's limit).
	MaxContext int
	// Name overrides ModelInfo.Name (default: the directory's base name).
	Name string
}

type layer struct {
	attnNorm, mlpNorm []float32
	q, k, v, o        Weight
	qBias, kBias      []float32 // nil without attention bias
	vBias             []float32
	gate, up, down    Weight
}

// Model is a loaded decoder-only transformer. Its weights are read-only after
// Load, so Generate and ScoreContinuations may run concurrently.
type Model struct {
	cfg     Config
	gen     GenerationConfig
	st      *safetensors.Set
	embed   Weight
	layers  []layer
	norm    []float32
	lmHead  Weight
	text    textCodec
	eos     map[int]bool
	info    ModelInfo
	maxCtx  int
	invFreq []float32
	// idle holds finished sessions for reuse (see acquireSession).
	idle   []*Session
	idleMu sync.Mutex
	// refHead is the lm_head upcast for the reference path, made on first use.
	refHead     *mat.Dense[float32]
	refHeadOnce sync.Once
	// LoadDuration is how long Load took; WeightsDuration is the part spent
	// opening and binding the weights (the rest is mostly the tokenizer).
	LoadDuration, WeightsDuration time.Duration
}

// Load opens the model in dir: config.json, generation_config.json, the
// safetensors weights (single file or sharded) and the tokenizer files.
func Load(dir string, opts LoadOptions) (*Model, error) {
	start := time.Now()
	cfgData, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	cfg, err := ParseConfig(cfgData)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	gen, err := LoadGenerationConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	m, err := loadWeights(dir, cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	m.gen = gen
	m.WeightsDuration = time.Since(start)
	text, err := loadTextCodec(dir)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	m.text = text
	m.setStopIDs()
	m.info.Name = opts.Name
	if m.info.Name == "" {
		abs, _ := filepath.Abs(dir)
		m.info.Name = filepath.Base(abs)
	}
	m.LoadDuration = time.Since(start)
	return m, nil
}

// loadWeights opens the safetensors and binds every tensor the
// architecture needs; the tokenizer is not touched.
func loadWeights(dir string, cfg Config, opts LoadOptions) (*Model, error) {
	stOpts := safetensors.Options{Mode: safetensors.Mmap}
	if opts.Heap {
		stOpts.Mode = safetensors.Heap
	}
	if opts.Progress != nil {
		total, err := safetensors.TotalBytes(dir)
		if err != nil {
			return nil, err
		}
		bar := progress.New(opts.Progress, "load weights", total)
		stOpts.Progress = func(n int64) { bar.Add(n) }
		defer bar.Finish(nil)
	}
	st, err := safetensors.OpenDir(dir, stOpts)
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, st: st}
	if err := m.bind(); err != nil {
		st.Close()
		return nil, err
	}
	m.maxCtx = cfg.MaxPositions
	if opts.MaxContext > 0 && opts.MaxContext < m.maxCtx {
		m.maxCtx = opts.MaxContext
	}
	half := cfg.HeadDim / 2
	m.invFreq = make([]float32, half)
	for i := range m.invFreq {
		// As transformers computes it: float32 exponent, then 1/base^e.
		e := float32(2*i) / float32(cfg.HeadDim)
		m.invFreq[i] = float32(1 / math.Pow(cfg.RopeTheta, float64(e)))
	}
	m.info = ModelInfo{Architecture: cfg.Architecture, ContextLength: m.maxCtx,
		VocabSize: cfg.VocabSize, WeightBytes: m.weightBytesPerToken()}
	return m, nil
}

func (m *Model) bind() error {
	c := m.cfg
	var err error
	if m.embed, err = loadWeight(m.st, "model.embed_tokens.weight", c.VocabSize, c.HiddenSize); err != nil {
		return err
	}
	q, kv := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	m.layers = make([]layer, c.NumLayers)
	for i := range m.layers {
		l := &m.layers[i]
		p := "model.layers." + strconv.Itoa(i) + "."
		steps := []func() error{
			func() (e error) { l.attnNorm, e = loadVector(m.st, p+"input_layernorm.weight", c.HiddenSize); return },
			func() (e error) {
				l.mlpNorm, e = loadVector(m.st, p+"post_attention_layernorm.weight", c.HiddenSize)
				return
			},
			func() (e error) { l.q, e = loadWeight(m.st, p+"self_attn.q_proj.weight", q, c.HiddenSize); return },
			func() (e error) { l.k, e = loadWeight(m.st, p+"self_attn.k_proj.weight", kv, c.HiddenSize); return },
			func() (e error) { l.v, e = loadWeight(m.st, p+"self_attn.v_proj.weight", kv, c.HiddenSize); return },
			func() (e error) { l.o, e = loadWeight(m.st, p+"self_attn.o_proj.weight", c.HiddenSize, q); return },
			func() (e error) {
				l.gate, e = loadWeight(m.st, p+"mlp.gate_proj.weight", c.IntermediateSize, c.HiddenSize)
				return
			},
			func() (e error) {
				l.up, e = loadWeight(m.st, p+"mlp.up_proj.weight", c.IntermediateSize, c.HiddenSize)
				return
			},
			func() (e error) {
				l.down, e = loadWeight(m.st, p+"mlp.down_proj.weight", c.HiddenSize, c.IntermediateSize)
				return
			},
		}
		if c.AttentionBias {
			steps = append(steps,
				func() (e error) { l.qBias, e = loadVector(m.st, p+"self_attn.q_proj.bias", q); return },
				func() (e error) { l.kBias, e = loadVector(m.st, p+"self_attn.k_proj.bias", kv); return },
				func() (e error) { l.vBias, e = loadVector(m.st, p+"self_attn.v_proj.bias", kv); return },
			)
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
	}
	if m.norm, err = loadVector(m.st, "model.norm.weight", c.HiddenSize); err != nil {
		return err
	}
	if _, has := m.st.Tensor("lm_head.weight"); has && !c.TieWordEmbeddings {
		if m.lmHead, err = loadWeight(m.st, "lm_head.weight", c.VocabSize, c.HiddenSize); err != nil {
			return err
		}
	} else if !c.TieWordEmbeddings {
		return errors.New("tensor lm_head.weight is missing (tie_word_embeddings is false)")
	} else {
		m.lmHead = m.embed
	}
	return nil
}

// weightBytesPerToken is the bytes of weights one decode step reads: every
// layer matrix, the norms and biases, the lm_head and one embedding row.
func (m *Model) weightBytesPerToken() int64 {
	var n int64
	for i := range m.layers {
		l := &m.layers[i]
		for _, w := range []*Weight{&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down} {
			n += w.Bytes()
		}
		n += 4 * int64(len(l.attnNorm)+len(l.mlpNorm)+len(l.qBias)+len(l.kBias)+len(l.vBias))
	}
	n += m.lmHead.Bytes() + 4*int64(len(m.norm))
	n += m.embed.Bytes() / int64(m.embed.Rows)
	return n
}

// setStopIDs collects the end-of-sequence ids: generation_config.json,
// config.json and the tokenizer's <|im_end|> / <|endoftext|>.
func (m *Model) setStopIDs() {
	m.eos = map[int]bool{}
	for _, id := range m.gen.EOSTokenIDs {
		m.eos[id] = true
	}
	for _, id := range m.cfg.EOSTokenIDs {
		m.eos[id] = true
	}
	if m.text != nil {
		for _, id := range m.text.stopIDs() {
			m.eos[id] = true
		}
	}
}

// Config returns the model's architecture description.
func (m *Model) Config() Config { return m.cfg }

// GenerationDefaults returns the sampling defaults of generation_config.json.
func (m *Model) GenerationDefaults() GenerationConfig { return m.gen }

// Info describes the model.
func (m *Model) Info() ModelInfo { return m.info }

// IsEOS reports whether id ends a generation.
func (m *Model) IsEOS(id int) bool { return m.eos[id] }

// Close releases the weights; the Model must not be used afterwards.
func (m *Model) Close() error {
	if m.st == nil {
		return nil
	}
	err := m.st.Close()
	m.st = nil
	return err
}
