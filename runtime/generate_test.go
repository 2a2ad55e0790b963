package runtime

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/airlock-dev/airlock/runtime/sample"
)

func TestGenerateGreedyMatchesExpected(t *testing.T) {
	e := loadExpected(t)
	m := loadTiny(t)
	for _, p := range e.Prompts {
		var events []TokenEvent
		res, err := m.Generate(context.Background(), p.IDs, SampleParams{MaxTokens: e.Steps}, func(ev TokenEvent) error {
			events = append(events, ev)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.FinishReason != FinishLength || res.PromptTokens != len(p.IDs) || res.CompletionTokens != e.Steps {
			t.Fatalf("%s: result %+v", p.Name, res)
		}
		for i, id := range p.Greedy.Tokens {
			if res.IDs[i] != id {
				t.Fatalf("%s: ids %v, want %v", p.Name, res.IDs, p.Greedy.Tokens)
			}
		}
		var text strings.Builder
		n := 0
		for _, ev := range events {
			if ev.ID >= 0 {
				n++
			}
			text.WriteString(ev.Text)
		}
		if n != e.Steps || text.String() != res.Text || res.Text != m.Decode(res.IDs) {
			t.Fatalf("%s: streamed %d events %q; result text %q; decoded %q", p.Name, n, text.String(), res.Text, m.Decode(res.IDs))
		}
	}
}

func TestGenerateStopString(t *testing.T) {
	m := loadTiny(t)
	prompt := loadExpected(t).Prompts[0].IDs
	full, err := m.Generate(context.Background(), prompt, SampleParams{MaxTokens: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Pick a stop string from the middle of the greedy text.
	runes := []rune(full.Text)
	if len(runes) < 12 {
		t.Fatalf("greedy text too short: %q", full.Text)
	}
	stop := string(runes[len(runes)/2 : len(runes)/2+3])
	cut := strings.Index(full.Text, stop)
	var streamed strings.Builder
	res, err := m.Generate(context.Background(), prompt, SampleParams{MaxTokens: 24, Stop: []string{"never-occurs", stop}},
		func(ev TokenEvent) error {
			streamed.WriteString(ev.Text)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if res.FinishReason != FinishStop || res.Text != full.Text[:cut] || streamed.String() != res.Text {
		t.Fatalf("stop %q: finish %s, text %q, streamed %q; want text %q", stop, res.FinishReason, res.Text, streamed.String(), full.Text[:cut])
	}
	if len(res.IDs) >= len(full.IDs) {
		t.Fatalf("generation did not stop early: %d ids", len(res.IDs))
	}
}

func TestTextStreamHoldsBackStopPrefix(t *testing.T) {
	ts := &textStream{cut: -1, stops: []string{"<END>"}}
	var out []string
	push := func(s string) {
		ts.full.WriteString(s)
		out = append(out, ts.release())
	}
	push("hello <")
	push("EN")
	push("x more <E")
	if strings.Join(out, "|") != "hello ||<ENx more " {
		t.Fatalf("released %q", out)
	}
	push("ND> tail")
	if !ts.stopped || ts.text() != "hello <ENx more " || out[len(out)-1] != "" {
		t.Fatalf("stopped %v text %q last %q", ts.stopped, ts.text(), out[len(out)-1])
	}
}

func TestGenerateStopsOnEOS(t *testing.T) {
	m, err := Load(tinyDir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := loadExpected(t).Prompts[3]
	m.eos[p.Greedy.Tokens[5]] = true // pretend the sixth greedy token ends the sequence
	res, err := m.Generate(context.Background(), p.IDs, SampleParams{MaxTokens: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.FinishReason != FinishStop || len(res.IDs) != 5 {
		t.Fatalf("finish %s after %d tokens, want stop after 5", res.FinishReason, len(res.IDs))
	}
	if !m.IsEOS(151645) || !m.IsEOS(151643) {
		t.Fatal("<|im_end|> and <|endoftext|> must end generation")
	}
}

func TestGenerateCancelAndEmitError(t *testing.T) {
	m := loadTiny(t)
	prompt := loadExpected(t).Prompts[0].IDs
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := m.Generate(ctx, prompt, SampleParams{MaxTokens: 100}, func(TokenEvent) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if err != nil || res.FinishReason != FinishCancelled || len(res.IDs) != 3 {
		t.Fatalf("cancel: err %v, finish %s, %d ids", err, res.FinishReason, len(res.IDs))
	}
	boom := errors.New("client went away")
	_, err = m.Generate(context.Background(), prompt, SampleParams{MaxTokens: 100}, func(TokenEvent) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("emit error: got %v", err)
	}
	if _, err := m.Generate(context.Background(), nil, SampleParams{}, nil); err == nil {
		t.Fatal("empty prompt accepted")
	}
	if _, err := m.Generate(context.Background(), []int{-1}, SampleParams{}, nil); err == nil {
		t.Fatal("negative token id accepted")
	}
}

func TestGenerateSeededSampling(t *testing.T) {
	m := loadTiny(t)
	prompt := loadExpected(t).Prompts[0].IDs
	p := SampleParams{Temperature: 1.5, TopK: 50, TopP: 0.95, RepetitionPenalty: 1.1, Seed: 99, MaxTokens: 16}
	a, err := m.Generate(context.Background(), prompt, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Generate(context.Background(), prompt, p, nil)
	p.Seed = 100
	c, _ := m.Generate(context.Background(), prompt, p, nil)
	if !equalInts(a.IDs, b.IDs) {
		t.Fatalf("same seed: %v vs %v", a.IDs, b.IDs)
	}
	if equalInts(a.IDs, c.IDs) {
		t.Fatalf("different seeds gave the same %v", a.IDs)
	}
}

// TestGenerateConcurrent runs several generations on one model at once and
// checks each against its sequential result (run with -race).
func TestGenerateConcurrent(t *testing.T) {
	e := loadExpected(t)
	m := loadTiny(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for round := 0; round < 2; round++ {
		for _, p := range e.Prompts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := m.Generate(context.Background(), p.IDs, SampleParams{MaxTokens: e.Steps}, nil)
				if err != nil {
					errs <- err
					return
				}
				if !equalInts(res.IDs, p.Greedy.Tokens) {
					errs <- errors.New(p.Name + ": concurrent generation diverged")
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestScoreContinuations(t *testing.T) {
	m := loadTiny(t)
	e := loadExpected(t)
	prompt := e.Prompts[0].IDs
	conts := [][]int{e.Prompts[0].Greedy.Tokens[:3], {9707, 11}, {151645}, e.Prompts[1].Greedy.Tokens[:4]}
	got, err := m.ScoreContinuations(context.Background(), prompt, conts)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range conts {
		all, err := m.referenceForward(append(append([]int(nil), prompt...), c...))
		if err != nil {
			t.Fatal(err)
		}
		var want float64
		for j, id := range c {
			want += sample.LogSoftmax(all[len(prompt)-1+j], id)
		}
		if math.Abs(got[i]-want) > 1e-3 {
			t.Errorf("continuation %v: score %v, reference %v", c, got[i], want)
		}
	}
	if got[0] <= got[1] {
		t.Errorf("greedy continuation scores %v, not above %v", got[0], got[1])
	}
	if _, err := m.ScoreContinuations(context.Background(), prompt, [][]int{{}}); err == nil {
		t.Error("empty continuation accepted")
	}
}

func TestChatAndEncodeThroughModel(t *testing.T) {
	m := loadTiny(t)
	p := loadExpected(t).Prompts[0]
	text, err := m.RenderChat([]Message{{Role: "user", Content: "x"}}, true)
	if err != nil || !strings.HasPrefix(text, "<|im_start|>system\n") || !strings.HasSuffix(text, "<|im_start|>assistant\n") {
		t.Fatalf("RenderChat = %q, %v", text, err)
	}
	if got := m.Encode(m.Decode(p.IDs)); !equalInts(got, p.IDs) {
		t.Fatalf("encode(decode(ids)) = %v, want %v", got, p.IDs)
	}
	info := m.Info()
	if info.Architecture != "Qwen2ForCausalLM" || info.VocabSize != 151936 || info.ContextLength != 32768 || info.Name != "tiny-qwen2" {
		t.Fatalf("info %+v", info)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
