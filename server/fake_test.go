package server

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/airlock-dev/airlock/runtime"
)

// fakeEngine is a deterministic Engine: one token per prompt byte, and a
// generation of "w<seed%97>-<i> " words with a controllable delay per token.
type fakeEngine struct {
	delay     time.Duration
	started   atomic.Int64 // generations begun
	cancelled atomic.Int64 // generations that saw their context end
	active    atomic.Int64
}

func (f *fakeEngine) Encode(text string) []int {
	ids := make([]int, len(text))
	for i := range len(text) {
		ids[i] = int(text[i])
	}
	return ids
}

func (f *fakeEngine) Decode(ids []int) string {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return string(b)
}

func (f *fakeEngine) RenderChat(msgs []runtime.Message, gen bool) (string, error) {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "<%s>%s\n", m.Role, m.Content)
	}
	if gen {
		b.WriteString("<assistant>")
	}
	return b.String(), nil
}

func (f *fakeEngine) Generate(ctx context.Context, ids []int, p runtime.SampleParams, emit func(runtime.TokenEvent) error) (runtime.Result, error) {
	f.started.Add(1)
	f.active.Add(1)
	defer f.active.Add(-1)
	res := runtime.Result{PromptTokens: len(ids)}
	var text strings.Builder
	for i := range p.MaxTokens {
		if f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			f.cancelled.Add(1)
			res.FinishReason = runtime.FinishCancelled
			res.Text = text.String()
			res.CompletionTokens = len(res.IDs)
			return res, nil
		}
		piece := fmt.Sprintf("w%d-%d ", p.Seed%97, i)
		for _, s := range p.Stop {
			if strings.Contains(piece, s) {
				res.FinishReason = runtime.FinishStop
				res.Text = text.String()
				res.CompletionTokens = len(res.IDs)
				return res, nil
			}
		}
		res.IDs = append(res.IDs, 1000+i)
		text.WriteString(piece)
		if emit != nil {
			if err := emit(runtime.TokenEvent{ID: 1000 + i, Text: piece}); err != nil {
				res.Text = text.String()
				res.CompletionTokens = len(res.IDs)
				return res, err
			}
		}
	}
	res.FinishReason = runtime.FinishLength
	res.Text = text.String()
	res.CompletionTokens = len(res.IDs)
	return res, nil
}

func (f *fakeEngine) ScoreContinuations(context.Context, []int, [][]int) ([]float64, error) {
	return nil, fmt.Errorf("not supported")
}

func (f *fakeEngine) Info() runtime.ModelInfo {
	return runtime.ModelInfo{Name: "fake", Architecture: "Fake", ContextLength: 4096, VocabSize: 256}
}
