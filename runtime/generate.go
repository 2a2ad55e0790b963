package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/airlock-dev/airlock/runtime/sample"
)

// prefillChunk bounds how many prompt tokens one forward pass processes, so
// a long prompt does not need activations for all of it at once.
const prefillChunk = 512

// Session is one sequence being decoded: its KV cache and activation
// workspace. It is not safe for concurrent use; separate sessions of one
// Model may run concurrently.
type Session struct {
	m     *Model
	cache *KVCache
	ws    *workspace
}

// NewSession returns a session with room for capacity positions before its
// KV cache first grows.
func (m *Model) NewSession(capacity int) *Session {
	return &Session{m: m, cache: m.NewKVCache(capacity), ws: m.newWorkspace(1)}
}

// maxIdleSessions bounds the sessions a Model keeps for reuse.
const maxIdleSessions = 4

// acquireSession returns an idle session (its memory already faulted in,
// which on some VMs saves tens of milliseconds per request) or a new one.
func (m *Model) acquireSession(capacity int) *Session {
	m.idleMu.Lock()
	if n := len(m.idle); n > 0 {
		s := m.idle[n-1]
		m.idle = m.idle[:n-1]
		m.idleMu.Unlock()
		s.Reset()
		s.cache.reserve(capacity)
		return s
	}
	m.idleMu.Unlock()
	return m.NewSession(capacity)
}

// maxIdlePositions bounds the KV cache of a session kept for reuse, so one
// long conversation does not pin its memory after it ends.
const maxIdlePositions = 4096

// releaseSession keeps s for reuse unless enough sessions are idle or its
// cache grew large.
func (m *Model) releaseSession(s *Session) {
	if s.cache.capacity() > maxIdlePositions {
		return
	}
	m.idleMu.Lock()
	if len(m.idle) < maxIdleSessions {
		m.idle = append(m.idle, s)
	}
	m.idleMu.Unlock()
}

// Len returns the number of positions processed.
func (s *Session) Len() int { return s.cache.n }

// Reset forgets every processed position.
func (s *Session) Reset() { s.cache.n = 0 }

// Append runs ids through the model and returns the logits after the last of
// them. The slice is reused by the next call.
func (s *Session) Append(ctx context.Context, ids []int) ([]float32, error) {
	if len(ids) == 0 {
		return nil, errors.New("no tokens to process")
	}
	for i := 0; i < len(ids); i += prefillChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := min(i+prefillChunk, len(ids))
		mode := logitsNone
		if end == len(ids) {
			mode = logitsLast
		}
		if err := s.m.forward(ids[i:end], s.cache, s.ws, mode); err != nil {
			return nil, err
		}
	}
	return s.ws.logits[:s.m.cfg.VocabSize], nil
}

// Generate continues promptIDs, calling emit for every generated token as
// soon as it is chosen. Text that could be the start of a stop string is
// held back until it is known not to be; when generation ends, held-back
// text is released in a final event with ID -1. The end-of-sequence token
// itself is neither emitted nor part of Result.IDs. An error from emit stops
// generation and is returned.
func (m *Model) Generate(ctx context.Context, promptIDs []int, p SampleParams, emit func(TokenEvent) error) (Result, error) {
	return m.GenerateObserved(ctx, promptIDs, p, nil, emit)
}

// GenerateObserved is Generate that also calls observe at every generated
// step with the chosen id and the raw logits it was chosen from (before
// repetition penalty and temperature; the first step's are the logits after
// the last prompt token). The slice is only valid during the call. A step
// that picks an end-of-sequence token is not observed.
func (m *Model) GenerateObserved(ctx context.Context, promptIDs []int, p SampleParams, observe func(id int, logits []float32), emit func(TokenEvent) error) (Result, error) {
	res := Result{PromptTokens: len(promptIDs)}
	if len(promptIDs) == 0 {
		return res, errors.New("generate: the prompt is empty")
	}
	if len(promptIDs) >= m.maxCtx {
		return res, fmt.Errorf("generate: prompt of %d tokens leaves no room in the context of %d", len(promptIDs), m.maxCtx)
	}
	room := m.maxCtx - len(promptIDs)
	maxTokens := p.MaxTokens
	if maxTokens <= 0 || maxTokens > room {
		maxTokens = room
	}
	sess := m.acquireSession(len(promptIDs) + min(maxTokens, kvChunk))
	defer m.releaseSession(sess)
	smp := sample.New(sample.Params{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP,
		RepetitionPenalty: p.RepetitionPenalty}, p.Seed)
	for _, id := range promptIDs {
		smp.Observe(id)
	}
	logits, err := sess.Append(ctx, promptIDs)
	if err != nil {
		if ctx.Err() != nil {
			res.FinishReason = FinishCancelled
			return res, nil
		}
		return res, fmt.Errorf("generate: %w", err)
	}
	out := newTextStream(m, p.Stop)
	finish := func(reason FinishReason) (Result, error) {
		res.FinishReason = reason
		res.CompletionTokens = len(res.IDs)
		rest := out.finish()
		res.Text = out.text()
		if rest != "" && emit != nil {
			if err := emit(TokenEvent{ID: -1, Text: rest}); err != nil {
				return res, err
			}
		}
		return res, nil
	}
	var rawBuf []float32
	for {
		if ctx.Err() != nil {
			return finish(FinishCancelled)
		}
		var raw []float32
		if observe != nil {
			raw = append(rawBuf[:0], logits...)
			rawBuf = raw
		}
		id := smp.Next(logits)
		if m.eos[id] {
			return finish(FinishStop)
		}
		if observe != nil {
			observe(id, raw)
		}
		res.IDs = append(res.IDs, id)
		smp.Observe(id)
		piece := out.push(id)
		if emit != nil {
			if err := emit(TokenEvent{ID: id, Text: piece}); err != nil {
				res.CompletionTokens = len(res.IDs)
				res.Text = out.text()
				return res, err
			}
		}
		if out.stopped {
			return finish(FinishStop)
		}
		if len(res.IDs) >= maxTokens {
			return finish(FinishLength)
		}
		if logits, err = sess.Append(ctx, []int{id}); err != nil {
			if ctx.Err() != nil {
				return finish(FinishCancelled)
			}
			return res, fmt.Errorf("generate: %w", err)
		}
	}
}

// textStream turns generated ids into emitted text, cutting at the first
// stop string and holding back any tail that could still grow into one.
type textStream struct {
	dec     streamDecoder
	stops   []string
	full    strings.Builder // all decoded text
	emitted int             // bytes of full already released
	cut     int             // length of the final text once stopped
	stopped bool
}

func newTextStream(m *Model, stops []string) *textStream {
	ts := &textStream{cut: -1}
	for _, s := range stops {
		if s != "" {
			ts.stops = append(ts.stops, s)
		}
	}
	if m.text != nil {
		ts.dec = m.text.newStream()
	}
	return ts
}

// push adds one id and returns the text now safe to release.
func (ts *textStream) push(id int) string {
	if ts.dec == nil {
		return ""
	}
	ts.full.WriteString(ts.dec.push(id))
	return ts.release()
}

func (ts *textStream) release() string {
	s := ts.full.String()
	if ts.stopped {
		return ""
	}
	for _, stop := range ts.stops {
		// A match can start no earlier than the first unreleased byte minus
		// the stop's length (earlier text was released as stop-free).
		from := max(0, ts.emitted-len(stop)+1)
		if i := strings.Index(s[from:], stop); i >= 0 && (ts.cut < 0 || from+i < ts.cut) {
			ts.cut = from + i
		}
	}
	if ts.cut >= 0 {
		ts.stopped = true
		out := s[ts.emitted:max(ts.emitted, ts.cut)]
		ts.emitted = max(ts.emitted, ts.cut)
		return out
	}
	hold := 0
	for _, stop := range ts.stops {
		for n := min(len(stop)-1, len(s)-ts.emitted); n > hold; n-- {
			if strings.HasSuffix(s, stop[:n]) {
				hold = n
				break
			}
		}
	}
	out := s[ts.emitted : len(s)-hold]
	ts.emitted = len(s) - hold
	return out
}

// finish releases what was held back (nothing after a stop string).
func (ts *textStream) finish() string {
	if ts.dec == nil || ts.stopped {
		return ""
	}
	ts.full.WriteString(ts.dec.flush())
	s := ts.full.String()
	out := s[ts.emitted:]
	ts.emitted = len(s)
	return out
}

// text returns the generated text up to any stop string.
func (ts *textStream) text() string {
	s := ts.full.String()
	if ts.cut >= 0 {
		return s[:ts.cut]
	}
	return s
}

// ScoreContinuations returns, for each continuation, the sum of the log
// probabilities of its tokens following promptIDs. The prompt is processed
// once; each continuation runs on a copy of its KV cache.
func (m *Model) ScoreContinuations(ctx context.Context, promptIDs []int, continuations [][]int) ([]float64, error) {
	if len(promptIDs) == 0 {
		return nil, errors.New("score: the prompt is empty")
	}
	longest := 0
	for _, c := range continuations {
		if len(c) == 0 {
			return nil, errors.New("score: a continuation is empty")
		}
		longest = max(longest, len(c))
	}
	sess := m.acquireSession(len(promptIDs))
	defer m.releaseSession(sess)
	last, err := sess.Append(ctx, promptIDs)
	if err != nil {
		return nil, fmt.Errorf("score: %w", err)
	}
	// Every continuation's first token is scored against the same logits:
	// normalize them once.
	firstNorm := sample.LogSumExp(last)
	first := append([]float32(nil), last...)
	scores := make([]float64, len(continuations))
	ws := m.newWorkspace(1)
	V := m.cfg.VocabSize
	for i, c := range continuations {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("score: %w", err)
		}
		if c[0] < 0 || c[0] >= V {
			return nil, fmt.Errorf("score: token id %d is outside the vocabulary", c[0])
		}
		s := float64(first[c[0]]) - firstNorm
		if len(c) > 1 {
			cache := sess.cache.Clone(len(c))
			if err := m.forward(c[:len(c)-1], cache, ws, logitsAll); err != nil {
				return nil, fmt.Errorf("score: %w", err)
			}
			for t := 1; t < len(c); t++ {
				if c[t] < 0 || c[t] >= V {
					return nil, fmt.Errorf("score: token id %d is outside the vocabulary", c[t])
				}
				s += sample.LogSoftmax(ws.logits[(t-1)*V:t*V], c[t])
			}
		}
		scores[i] = s
	}
	return scores, nil
}
