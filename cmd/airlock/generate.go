package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/runtime"
	"github.com/airlock-dev/airlock/runtime/kernels"
)

// threadsFlag sets how many goroutines the compute kernels use.
var threadsFlag = &cli.IntFlag{Name: "threads", Usage: "compute threads (default: every core)", EnvVars: []string{"AIRLOCK_THREADS"}}

func applyThreads(c *cli.Context) {
	if n := c.Int("threads"); n > 0 {
		kernels.SetThreads(n)
	}
}

// modelDirArg returns the single DIR argument (flags may follow it).
func modelDirArg(c *cli.Context) (string, error) {
	pos := c.Args().Slice()
	if len(pos) != 1 {
		return "", usagef("%s: want exactly one model directory argument, got %d", c.Command.Name, len(pos))
	}
	dir := pos[0]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", usagef("%s: %s is not a directory", c.Command.Name, dir)
	}
	return dir, nil
}

// loadModel applies --threads and loads the model in dir, with --heap and
// load progress on stderr.
func loadModel(c *cli.Context, dir string) (*runtime.Model, error) {
	applyThreads(c)
	return runtime.Load(dir, runtime.LoadOptions{Heap: c.Bool("heap"), Progress: os.Stderr})
}

// samplingFlags are shared by generate and chat.
func samplingFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "max-tokens", Usage: "most tokens to generate (default: generation_config.json or 256)"},
		&cli.Float64Flag{Name: "temperature", Usage: "sampling temperature; 0 means greedy argmax, without the default repetition penalty (default: generation_config.json)"},
		&cli.IntFlag{Name: "top-k", Usage: "sample among the K most likely tokens (default: generation_config.json)"},
		&cli.Float64Flag{Name: "top-p", Usage: "nucleus sampling mass (default: generation_config.json)"},
		&cli.Float64Flag{Name: "repetition-penalty", Usage: "penalty for repeated tokens (default: generation_config.json)"},
		&cli.Uint64Flag{Name: "seed", Usage: "random seed for sampling"},
		&cli.StringSliceFlag{Name: "stop", Usage: "stop string (repeatable)"},
		threadsFlag,
	}
}

// sampleParams merges generation_config.json defaults with the flags.
func sampleParams(c *cli.Context, m *runtime.Model) runtime.SampleParams {
	p := m.GenerationDefaults().SampleParams()
	if c.IsSet("temperature") {
		p.Temperature = float32(c.Float64("temperature"))
		if p.Temperature <= 0 {
			// Greedy means plain argmax over the model's logits.
			p.Temperature, p.TopK, p.TopP, p.RepetitionPenalty = 0, 0, 0, 0
		}
	}
	if c.IsSet("top-k") {
		p.TopK = c.Int("top-k")
	}
	if c.IsSet("top-p") {
		p.TopP = float32(c.Float64("top-p"))
	}
	if c.IsSet("repetition-penalty") {
		p.RepetitionPenalty = float32(c.Float64("repetition-penalty"))
	}
	if c.IsSet("max-tokens") {
		p.MaxTokens = c.Int("max-tokens")
	} else if p.MaxTokens == 0 {
		p.MaxTokens = 256
	}
	p.Seed = c.Uint64("seed")
	p.Stop = c.StringSlice("stop")
	return p
}

func init() {
	register(&cli.Command{
		Name:      "generate",
		Usage:     "generate a continuation of a prompt",
		ArgsUsage: "DIR (--prompt TEXT | --chat TEXT | --prompt-ids 1,2,3)",
		Description: "Exactly one of --prompt (raw text), --chat (wrapped in the chat template with a\n" +
			"generation prompt) or --prompt-ids is required. With --json the output is one object\n" +
			`{"prompt_ids":[...],"ids":[...],"text":"...","steps":[{"id":..,"top":[[id,logit],...]}]}` + "\n" +
			"where top holds the --top-logits K largest raw logits at each generated step.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "prompt", Usage: "raw prompt text"},
			&cli.StringFlag{Name: "chat", Usage: "user message, wrapped in the chat template"},
			&cli.StringFlag{Name: "prompt-ids", Usage: "comma-separated prompt token ids"},
			&cli.IntFlag{Name: "top-logits", Usage: "with --json, record the K largest raw logits per step"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of streaming text"},
			&cli.BoolFlag{Name: "heap", Usage: "read the weights into memory instead of memory-mapping them", EnvVars: []string{"AIRLOCK_HEAP_WEIGHTS"}},
		}, samplingFlags()...),
		Action: runGenerate,
	})
}

type generateStep struct {
	ID  int          `json:"id"`
	Top [][2]float64 `json:"top"`
}

type generateOutput struct {
	PromptIDs []int          `json:"prompt_ids"`
	IDs       []int          `json:"ids"`
	Text      string         `json:"text"`
	Steps     []generateStep `json:"steps"`
}

func runGenerate(c *cli.Context) error {
	dir, err := modelDirArg(c)
	if err != nil {
		return err
	}
	set := 0
	for _, f := range []string{"prompt", "chat", "prompt-ids"} {
		if c.IsSet(f) {
			set++
		}
	}
	if set != 1 {
		return usagef("generate: give exactly one of --prompt, --chat or --prompt-ids")
	}
	if c.Int("top-logits") < 0 {
		return usagef("generate: --top-logits must be ≥ 0")
	}
	var ids []int
	if c.IsSet("prompt-ids") {
		if ids, err = parseIDs(c.String("prompt-ids")); err != nil {
			return usagef("generate: --prompt-ids: %v", err)
		}
	}
	m, err := loadModel(c, dir)
	if err != nil {
		return err
	}
	defer m.Close()
	switch {
	case c.IsSet("prompt"):
		if !m.HasTokenizer() {
			return fmt.Errorf("generate: %w", runtime.ErrNoTokenizer)
		}
		ids = m.Encode(c.String("prompt"))
	case c.IsSet("chat"):
		text, err := m.RenderChat([]runtime.Message{{Role: "user", Content: c.String("chat")}}, true)
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		ids = m.Encode(text)
	}
	if len(ids) == 0 {
		return usagef("generate: the prompt is empty")
	}
	for _, id := range ids {
		if id < 0 || id >= m.Info().VocabSize {
			return usagef("generate: token id %d is outside the vocabulary [0, %d)", id, m.Info().VocabSize)
		}
	}
	p := sampleParams(c, m)
	ctx, stop := signalContext(c.Context)
	defer stop()

	if !c.Bool("json") {
		res, err := m.Generate(ctx, ids, p, func(ev runtime.TokenEvent) error {
			_, err := os.Stdout.WriteString(ev.Text)
			return err
		})
		fmt.Println()
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		if res.FinishReason == runtime.FinishCancelled {
			return fmt.Errorf("generate: cancelled")
		}
		return nil
	}
	k := c.Int("top-logits")
	out := generateOutput{PromptIDs: ids, IDs: []int{}, Steps: []generateStep{}}
	res, err := m.GenerateObserved(ctx, ids, p, func(id int, logits []float32) {
		step := generateStep{ID: id, Top: [][2]float64{}}
		if k > 0 {
			step.Top = topLogits(logits, k)
		}
		out.Steps = append(out.Steps, step)
	}, nil)
	if err == nil && res.FinishReason == runtime.FinishCancelled {
		err = fmt.Errorf("cancelled")
	}
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	out.IDs = append(out.IDs, res.IDs...)
	out.Text = res.Text
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// topLogits returns the k largest logits as [id, logit] pairs, best first.
func topLogits(logits []float32, k int) [][2]float64 {
	k = min(k, len(logits))
	idx := make([]int, 0, k+1)
	for i, v := range logits {
		if len(idx) == k && v <= logits[idx[k-1]] {
			continue
		}
		pos := sort.Search(len(idx), func(j int) bool { return logits[idx[j]] < v })
		idx = slices.Insert(idx, pos, i)
		if len(idx) > k {
			idx = idx[:k]
		}
	}
	out := make([][2]float64, len(idx))
	for i, id := range idx {
		out[i] = [2]float64{float64(id), float64(logits[id])}
	}
	return out
}

func parseIDs(s string) ([]int, error) {
	var ids []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, err := strconv.Atoi(f)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no token ids")
	}
	return ids, nil
}

// signalContext is cancelled on SIGINT/SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}
