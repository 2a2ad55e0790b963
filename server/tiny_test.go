package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/runtime"
)

// tinyDir is the random-weight test model (its text is gibberish).
var tinyDir = filepath.Join("..", "testdata", "tiny-qwen2")

var (
	tinyOnce  sync.Once
	tinyModel *runtime.Model
	tinyErr   error
)

func loadTiny(t testing.TB) *runtime.Model {
	t.Helper()
	tinyOnce.Do(func() { tinyModel, tinyErr = runtime.Load(tinyDir, runtime.LoadOptions{}) })
	if tinyErr != nil {
		t.Fatalf("load the tiny test model: %v", tinyErr)
	}
	return tinyModel
}

// slowEngine adds a delay before every emitted token of a real engine, so
// tests can hold generation slots and disconnect mid-stream.
type slowEngine struct {
	runtime.Engine
	delay time.Duration
}

func (s slowEngine) Generate(ctx context.Context, ids []int, p runtime.SampleParams, emit func(runtime.TokenEvent) error) (runtime.Result, error) {
	return s.Engine.Generate(ctx, ids, p, func(ev runtime.TokenEvent) error {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
		}
		if emit == nil {
			return nil
		}
		return emit(ev)
	})
}

func tinyChat(stream bool, extra map[string]any) map[string]any {
	b := chatBody(stream, extra)
	b["model"] = "tiny-qwen2"
	return b
}

func TestTinyModelChat(t *testing.T) {
	m := loadTiny(t)
	ts := startServer(t, m, nil)
	msgs := []map[string]any{
		{"role": "system", "content": "You are terse."},
		{"role": "user", "content": "Name a colour."},
		{"role": "assistant", "content": "Blue."},
		{"role": "user", "content": "内网安全部署?"},
	}
	params := map[string]any{"messages": msgs, "max_tokens": 12, "temperature": 0.8, "top_p": 0.9, "seed": 42}
	resp, body := ts.request("POST", "/v1/chat/completions", tinyChat(false, params), authBearer)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var c chatCompletion
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	var rm []runtime.Message
	for _, x := range msgs {
		rm = append(rm, runtime.Message{Role: x["role"].(string), Content: x["content"].(string)})
	}
	prompt, _ := m.RenderChat(rm, true)
	if want := len(m.Encode(prompt)); c.Usage.PromptTokens != want {
		t.Fatalf("prompt_tokens %d, want %d", c.Usage.PromptTokens, want)
	}
	if c.Usage.CompletionTokens < 1 || c.Usage.CompletionTokens > 12 || c.Choices[0].Message.Content == "" {
		t.Fatalf("completion: %s", body)
	}

	// The same seed streamed gives the same text, chunk by chunk.
	resp, sbody := ts.request("POST", "/v1/chat/completions", tinyChat(true, params), authBasic)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, sbody)
	}
	events := readSSE(t, bytes.NewReader(sbody))
	if events[len(events)-1] != "[DONE]" {
		t.Fatalf("no [DONE]: %s", sbody)
	}
	var text strings.Builder
	var finish string
	for _, ev := range events[:len(events)-1] {
		var ch chatChunk
		if err := json.Unmarshal([]byte(ev), &ch); err != nil {
			t.Fatal(err)
		}
		text.WriteString(ch.Choices[0].Delta.Content)
		if f := ch.Choices[0].FinishReason; f != nil {
			finish = *f
		}
	}
	if text.String() != c.Choices[0].Message.Content || finish != c.Choices[0].FinishReason {
		t.Fatalf("stream %q/%s differs from %q/%s", text.String(), finish, c.Choices[0].Message.Content, c.Choices[0].FinishReason)
	}

	// A prompt beyond the token limit is refused before generation.
	resp, body = ts.request("POST", "/v1/chat/completions", tinyChat(false, map[string]any{
		"messages": []map[string]any{{"role": "user", "content": strings.Repeat("token ", 5000)}},
	}), authBasic)
	wantAPIError(t, resp, body, 400, "context_length_exceeded")

	recs := ts.auditRecords()
	if len(recs) != 3 || *recs[0].Prompt != prompt || *recs[1].Response != text.String() || recs[2].Status != 400 {
		t.Fatalf("audit records: %+v", recs)
	}
}

func TestTinyModelQueueAndCancel(t *testing.T) {
	eng := slowEngine{loadTiny(t), 50 * time.Millisecond}
	ts := startServer(t, eng, func(c *Config) { c.Concurrency, c.Queue = 1, 1 })

	// One streaming request holds the slot; a second waits; a third is
	// turned away with 429.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, _ := json.Marshal(tinyChat(true, map[string]any{"max_tokens": 500})) // at least 25 s
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/chat/completions", bytes.NewReader(j))
	req.SetBasicAuth(testUser, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan int, 1)
	go func() {
		resp, _ := ts.request("POST", "/v1/chat/completions", tinyChat(false, map[string]any{"max_tokens": 2}), authBasic)
		waiting <- resp.StatusCode
	}()
	waitFor(t, func() bool { return ts.srv.engine.QueueDepth() == 1 })
	resp2, body := ts.request("POST", "/v1/chat/completions", tinyChat(false, nil), authBasic)
	wantAPIError(t, resp2, body, 429, "queue_full")

	// Hanging up frees the slot at once: the waiting request completes long
	// before the 500 tokens of the first would have.
	start := time.Now()
	cancel()
	resp.Body.Close()
	if s := <-waiting; s != 200 {
		t.Fatalf("queued request: %d", s)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("slot freed after %v", d)
	}
	recs := ts.auditRecords()
	statuses := map[int]int{}
	for _, r := range recs {
		statuses[r.Status]++
	}
	if statuses[StatusClientClosed] != 1 || statuses[200] != 1 || statuses[429] != 1 || len(recs) != 3 {
		t.Fatalf("audit statuses %v", statuses)
	}
}

// TestServedLogTampering edits, deletes, reorders and truncates records of
// a log written by a real server and checks Verify names each.
func TestServedLogTampering(t *testing.T) {
	ts := startServer(t, loadTiny(t), nil)
	for i := range 5 {
		resp, body := ts.request("POST", "/v1/chat/completions", tinyChat(i%2 == 0, map[string]any{"max_tokens": 2}), authBasic)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	_ = ts.auditRecords() // stops the server and checks the intact chain
	orig, err := os.ReadFile(ts.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(orig, []byte("\n"))[:5]
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	for _, tc := range []struct {
		name string
		data []byte
		kind string
		line int
	}{
		{"edited", join(lines[0], bytes.Replace(lines[1], []byte(`"user":"alice"`), []byte(`"user":"carol"`), 1), lines[2], lines[3], lines[4]), audit.KindEdited, 2},
		{"deleted", join(lines[0], lines[1], lines[3], lines[4]), audit.KindDeleted, 3},
		{"reordered", join(lines[0], lines[2], lines[1], lines[3], lines[4]), audit.KindReordered, 2},
		{"truncated", join(lines[0], lines[1], lines[2], lines[3], lines[4][:40]), audit.KindTruncated, 5},
	} {
		path := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := audit.Verify([]string{path}, audit.VerifyOptions{})
		var ce *audit.ChainError
		if !errors.As(err, &ce) || ce.Kind != tc.kind || ce.Line != tc.line {
			t.Errorf("%s: got %v, want %s at line %d", tc.name, err, tc.kind, tc.line)
		}
	}
}

// TestPageAndInferBehindAuth checks the chat page and POST /api/infer are
// mounted behind auth and audited with the model and manifest.
func TestPageAndInferBehindAuth(t *testing.T) {
	ts := startServer(t, loadTiny(t), nil)
	resp, _ := ts.request("GET", "/", nil, authNone)
	if resp.StatusCode != 401 {
		t.Fatalf("page without auth: %d", resp.StatusCode)
	}
	resp, _ = ts.request("GET", "/", nil, authBasic)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	req, _ := http.NewRequest("POST", ts.url+"/api/infer", strings.NewReader(`{"text":"hello there","mode":"chat","max_tokens":3,"seed":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(testUser, testPass)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Fatalf("infer: %d", r2.StatusCode)
	}
	recs := ts.auditRecords()
	last := recs[len(recs)-1]
	if last.Route != "/api/infer" || last.Model != "tiny-qwen2" || last.ManifestSHA256 != strings.Repeat("ab", 32) || last.CompTokens == 0 {
		t.Fatalf("infer record: %+v", last)
	}
}
