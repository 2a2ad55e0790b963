package infer

import (
	"context"
	"strings"
	"sync"

	"github.com/airlock-dev/airlock/runtime"
)

// fakeEngine is a runtime.Engine whose tokenizer maps each rune to its code
// point and whose model is whatever the test plugs in. It records the calls
// the handler makes so tests can check what reached the model.
type fakeEngine struct {
	ctxLen int
	// score returns the summed log-prob of each continuation.
	score func(ctx context.Context, prompt string, conts []string) ([]float64, error)
	// reply is what Generate produces (cut to MaxTokens runes).
	reply string
	// genErr is returned by Generate.
	genErr error

	mu          sync.Mutex
	scoreCalls  int
	genCalls    int
	lastPrompt  string
	lastConts   []string
	lastParams  runtime.SampleParams
	lastPrompts []string
}

func (f *fakeEngine) Encode(text string) []int {
	ids := make([]int, 0, len(text))
	for _, r := range text {
		ids = append(ids, int(r))
	}
	return ids
}

func (f *fakeEngine) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteRune(rune(id))
	}
	return b.String()
}

func (f *fakeEngine) RenderChat(msgs []runtime.Message, addGen bool) (string, error) {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
	}
	if addGen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String(), nil
}

func (f *fakeEngine) Generate(ctx context.Context, ids []int, p runtime.SampleParams, emit func(runtime.TokenEvent) error) (runtime.Result, error) {
	f.mu.Lock()
	f.genCalls++
	f.lastPrompt = f.Decode(ids)
	f.lastParams = p
	f.mu.Unlock()
	if f.genErr != nil {
		return runtime.Result{PromptTokens: len(ids)}, f.genErr
	}
	out := []rune(f.reply)
	if p.MaxTokens > 0 && len(out) > p.MaxTokens {
		out = out[:p.MaxTokens]
	}
	res := runtime.Result{PromptTokens: len(ids), FinishReason: runtime.FinishStop}
	for _, r := range out {
		if err := ctx.Err(); err != nil {
			res.FinishReason = runtime.FinishCancelled
			return res, err
		}
		if err := emit(runtime.TokenEvent{ID: int(r), Text: string(r)}); err != nil {
			return res, err
		}
		res.IDs = append(res.IDs, int(r))
	}
	res.Text = string(out)
	res.CompletionTokens = len(out)
	if len(out) < len([]rune(f.reply)) {
		res.FinishReason = runtime.FinishLength
	}
	return res, nil
}

func (f *fakeEngine) ScoreContinuations(ctx context.Context, ids []int, conts [][]int) ([]float64, error) {
	prompt := f.Decode(ids)
	var cs []string
	for _, c := range conts {
		cs = append(cs, f.Decode(c))
	}
	f.mu.Lock()
	f.scoreCalls++
	f.lastPrompt = prompt
	f.lastConts = cs
	f.lastPrompts = append(f.lastPrompts, prompt)
	f.mu.Unlock()
	return f.score(ctx, prompt, cs)
}

func (f *fakeEngine) Info() runtime.ModelInfo {
	return runtime.ModelInfo{Name: "fake", ContextLength: f.ctxLen, VocabSize: 0x110000}
}

// keywordScorer prefers 正面 when the prompt contains "好" and 负面 when it
// contains "坏"; otherwise it returns the fixed scores given.
func keywordScorer(ctx context.Context, prompt string, conts []string) ([]float64, error) {
	out := make([]float64, len(conts))
	text := prompt[strings.LastIndex(prompt, "Text:\n"):]
	for i, c := range conts {
		switch {
		case c == LabelPositive && strings.Contains(text, "好"):
			out[i] = -0.1
		case c == LabelNegative && strings.Contains(text, "坏"):
			out[i] = -0.1
		default:
			out[i] = -3
		}
	}
	return out, nil
}
