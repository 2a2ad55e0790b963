package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/auth"
	"github.com/airlock-dev/airlock/runtime"
)

func init() { auth.BcryptCost = bcrypt.MinCost }

const (
	testUser = "alice"
	testPass = "correct horse battery"
)

type testServer struct {
	t         testing.TB
	srv       *Server
	url       string
	key       string
	auditPath string
	cancel    context.CancelFunc
	done      chan error
	stopped   bool
}

// startServer runs a real Server on a loopback port with an htpasswd user
// and an API key.
func startServer(t testing.TB, engine runtime.Engine, mod func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := auth.SetUser(htpasswd, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	key, _, err := auth.CreateKey(keys, "sdk")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Engine: engine, HtpasswdPath: htpasswd, APIKeysPath: keys,
		AuditLogPath: filepath.Join(dir, "audit.log"),
		Model:        ModelInfo{ManifestSHA256: strings.Repeat("ab", 32)},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, srv: srv, url: "http://" + ln.Addr().String(), key: key,
		auditPath: cfg.AuditLogPath, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop() })
	return ts
}

// stop shuts the server down and returns Serve's error.
func (ts *testServer) stop() error {
	if ts.stopped {
		return nil
	}
	ts.stopped = true
	ts.cancel()
	select {
	case err := <-ts.done:
		return err
	case <-time.After(60 * time.Second):
		ts.t.Fatal("server did not shut down")
		return nil
	}
}

type authMode int

const (
	authBasic authMode = iota
	authNone
	authBearer
)

func (ts *testServer) request(method, path string, body any, mode authMode) (*http.Response, []byte) {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	switch mode {
	case authBasic:
		req.SetBasicAuth(testUser, testPass)
	case authBearer:
		req.Header.Set("Authorization", "Bearer "+ts.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func chatBody(stream bool, extra map[string]any) map[string]any {
	b := map[string]any{
		"model":    "fake",
		"messages": []map[string]any{{"role": "user", "content": "hello"}},
		"seed":     7, "max_tokens": 5, "stream": stream,
	}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func wantAPIError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var e struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		t.Fatalf("not an OpenAI error body: %s", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e.Error[k]; !ok {
			t.Fatalf("error body lacks %q: %s", k, body)
		}
	}
	if code != "" && e.Error["code"] != code {
		t.Fatalf("code %v, want %s: %s", e.Error["code"], code, body)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
}

// auditRecords stops the server and returns its verified audit records.
func (ts *testServer) auditRecords() []audit.Record {
	ts.t.Helper()
	if err := ts.stop(); err != nil {
		ts.t.Fatal(err)
	}
	files, err := audit.Files(ts.auditPath)
	if err != nil {
		ts.t.Fatal(err)
	}
	if _, err := audit.Verify(files, audit.VerifyOptions{}); err != nil {
		ts.t.Fatalf("audit chain: %v", err)
	}
	var out []audit.Record
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var r audit.Record
			if err := json.Unmarshal(line, &r); err != nil {
				ts.t.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

func TestAuthentication(t *testing.T) {
	ts := startServer(t, &fakeEngine{}, nil)
	resp, body := ts.request("GET", "/healthz", nil, authNone)
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/v1/models", "/readyz", "/metrics", "/v1/chat/completions", "/nope"} {
		resp, body := ts.request("GET", path, nil, authNone)
		wantAPIError(t, resp, body, 401, "missing_credentials")
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Fatalf("%s: no WWW-Authenticate", path)
		}
	}
	req, _ := http.NewRequest("GET", ts.url+"/v1/models", nil)
	req.SetBasicAuth(testUser, "wrong password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	wantAPIError(t, resp, body, 401, "invalid_api_key")
	req.SetBasicAuth("nobody", testPass)
	resp, _ = http.DefaultClient.Do(req)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	wantAPIError(t, resp, body, 401, "invalid_api_key")
	req.Header.Set("Authorization", "Bearer alk_0123456789abcdef_"+strings.Repeat("x", 43))
	resp, _ = http.DefaultClient.Do(req)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	wantAPIError(t, resp, body, 401, "invalid_api_key")

	resp, body = ts.request("GET", "/v1/models", nil, authBasic)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"fake"`) || !strings.Contains(string(body), `"object":"list"`) {
		t.Fatalf("models: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.request("GET", "/v1/models", nil, authBearer)
	if resp.StatusCode != 200 {
		t.Fatalf("bearer: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.request("GET", "/metrics", nil, authBearer)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `airlock_auth_failures_total{reason="invalid"} 3`) ||
		!strings.Contains(string(body), "airlock_queue_depth 0") {
		t.Fatalf("metrics: %d %s", resp.StatusCode, body)
	}
	recs := ts.auditRecords()
	// healthz is not audited; everything else is, failures included.
	if len(recs) != 5+3+3 {
		t.Fatalf("%d audit records", len(recs))
	}
	if recs[5].AuthMethod != "failed" || recs[5].User != testUser || recs[5].Status != 401 {
		t.Fatalf("failed login record: %+v", recs[5])
	}
	if recs[8].User != testUser || recs[8].AuthMethod != "basic" || recs[9].AuthMethod != "bearer" || !strings.HasPrefix(recs[9].User, "key:") {
		t.Fatalf("identity records: %+v %+v", recs[8], recs[9])
	}
	for _, r := range recs {
		raw, _ := json.Marshal(r)
		if strings.Contains(string(raw), testPass) || strings.Contains(string(raw), ts.key) {
			t.Fatal("a secret reached the audit log")
		}
	}
}

func TestLoginThrottling(t *testing.T) {
	ts := startServer(t, &fakeEngine{}, nil)
	for i := range 5 {
		req, _ := http.NewRequest("GET", ts.url+"/v1/models", nil)
		req.SetBasicAuth(testUser, "guess")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	// Locked out now, even with the right password from this address.
	resp, body := ts.request("GET", "/v1/models", nil, authBasic)
	wantAPIError(t, resp, body, 429, "too_many_failed_logins")
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
}

func TestChatCompletion(t *testing.T) {
	ts := startServer(t, &fakeEngine{}, nil)
	resp, body := ts.request("POST", "/v1/chat/completions", chatBody(false, map[string]any{
		"messages": []map[string]any{
			{"role": "system", "content": "be brief"},
			{"role": "user", "content": "hi"},
			{"role": "assistant", "content": "hello"},
			{"role": "user", "content": []map[string]any{{"type": "text", "text": "again"}}},
		},
	}), authBearer)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var c struct {
		ID, Object, Model string
		Created           int64
		Choices           []struct {
			Index        int
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage map[string]int
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Model != "fake" || c.Created == 0 ||
		len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" || c.Choices[0].Message.Content != "w7-0 w7-1 w7-2 w7-3 w7-4 " ||
		c.Choices[0].FinishReason != "length" {
		t.Fatalf("completion: %s", body)
	}
	prompt := "<system>be brief\n<user>hi\n<assistant>hello\n<user>again\n<assistant>"
	if c.Usage["prompt_tokens"] != len(prompt) || c.Usage["completion_tokens"] != 5 || c.Usage["total_tokens"] != len(prompt)+5 {
		t.Fatalf("usage: %v", c.Usage)
	}
	recs := ts.auditRecords()
	r := recs[len(recs)-1]
	if r.Prompt == nil || *r.Prompt != prompt || r.Response == nil || *r.Response != c.Choices[0].Message.Content ||
		r.PromptTokens != len(prompt) || r.CompTokens != 5 || r.FinishReason != "length" || r.Status != 200 ||
		r.Model != "fake" || r.ManifestSHA256 != strings.Repeat("ab", 32) || r.Params["seed"] != float64(7) {
		t.Fatalf("audit record: %+v", r)
	}
}

func readSSE(t *testing.T, r io.Reader) []string {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(r)
	var cur []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(cur) != 1 {
				t.Fatalf("event with %d data lines", len(cur))
			}
			events = append(events, cur[0])
			cur = nil
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("unexpected SSE line %q", line)
		}
		cur = append(cur, data)
	}
	if len(cur) != 0 {
		t.Fatalf("unterminated event %q", cur)
	}
	return events
}

func TestChatStreaming(t *testing.T) {
	ts := startServer(t, &fakeEngine{}, nil)
	resp, body := ts.request("POST", "/v1/chat/completions", chatBody(true, map[string]any{
		"stream_options": map[string]any{"include_usage": true},
	}), authBasic)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	events := readSSE(t, bytes.NewReader(body))
	if events[len(events)-1] != "[DONE]" {
		t.Fatalf("last event %q", events[len(events)-1])
	}
	var content strings.Builder
	var finish []string
	var sawUsage bool
	for i, ev := range events[:len(events)-1] {
		var c struct {
			ID, Object, Model string
			Choices           []struct {
				Index        int
				Delta        map[string]string
				FinishReason *string `json:"finish_reason"`
			}
			Usage *struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
				TotalTokens      int `json:"total_tokens"`
			}
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, ev)
		}
		if c.Object != "chat.completion.chunk" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Model != "fake" {
			t.Fatalf("chunk %d: %s", i, ev)
		}
		if c.Usage != nil {
			sawUsage = true
			if len(c.Choices) != 0 || c.Usage.CompletionTokens != 5 || c.Usage.TotalTokens != c.Usage.PromptTokens+5 {
				t.Fatalf("usage chunk: %s", ev)
			}
			continue
		}
		if i == 0 && c.Choices[0].Delta["role"] != "assistant" {
			t.Fatalf("first chunk has no role: %s", ev)
		}
		content.WriteString(c.Choices[0].Delta["content"])
		if c.Choices[0].FinishReason != nil {
			finish = append(finish, *c.Choices[0].FinishReason)
		}
	}
	if content.String() != "w7-0 w7-1 w7-2 w7-3 w7-4 " || len(finish) != 1 || finish[0] != "length" || !sawUsage {
		t.Fatalf("content %q finish %v usage %v", content.String(), finish, sawUsage)
	}
	recs := ts.auditRecords()
	if r := recs[len(recs)-1]; r.Status != 200 || r.CompTokens != 5 || *r.Response != content.String() {
		t.Fatalf("audit: %+v", r)
	}
}

func TestStopAndParams(t *testing.T) {
	ts := startServer(t, &fakeEngine{}, nil)
	resp, body := ts.request("POST", "/v1/chat/completions", chatBody(false, map[string]any{"stop": "-2", "max_tokens": 10}), authBasic)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"content":"w7-0 w7-1 "`) || !strings.Contains(string(body), `"finish_reason":"stop"`) {
		t.Fatalf("stop: %s", body)
	}
}

func TestLimits(t *testing.T) {
	ts := startServer(t, &fakeEngine{delay: 50 * time.Millisecond}, func(c *Config) {
		c.Limits = Limits{MaxBodyBytes: 2000, MaxPromptTokens: 100, MaxTokens: 50, RequestTimeout: 300 * time.Millisecond}
	})
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"malformed json", `{"messages": [`, 400, "invalid_json"},
		{"trailing data", `{"messages":[{"role":"user","content":"x"}]} {}`, 400, "invalid_json"},
		{"wrong type", `{"messages": "hi"}`, 400, "invalid_json"},
		{"body too large", `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 3000) + `"}]}`, 413, "request_too_large"},
		{"prompt too long", chatBody(false, map[string]any{"messages": []map[string]any{{"role": "user", "content": strings.Repeat("y", 150)}}}), 400, "context_length_exceeded"},
		{"max_tokens over limit", chatBody(false, map[string]any{"max_tokens": 51}), 400, "max_tokens_exceeded"},
		{"max_tokens zero", chatBody(false, map[string]any{"max_tokens": 0}), 400, ""},
		{"temperature", chatBody(false, map[string]any{"temperature": 3}), 400, ""},
		{"top_p", chatBody(false, map[string]any{"top_p": 0}), 400, ""},
		{"no messages", chatBody(false, map[string]any{"messages": []any{}}), 400, ""},
		{"bad role", chatBody(false, map[string]any{"messages": []map[string]any{{"role": "tool", "content": "x"}}}), 400, ""},
		{"image part", chatBody(false, map[string]any{"messages": []map[string]any{{"role": "user", "content": []map[string]any{{"type": "image_url"}}}}}), 400, ""},
		{"n", chatBody(false, map[string]any{"n": 2}), 400, ""},
		{"too many stops", chatBody(false, map[string]any{"stop": []string{"a", "b", "c", "d", "e"}}), 400, ""},
		{"unknown model", chatBody(false, map[string]any{"model": "gpt-4"}), 404, "model_not_found"},
		{"timeout", chatBody(false, map[string]any{"max_tokens": 50}), 408, "request_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.request("POST", "/v1/chat/completions", tc.body, authBasic)
			wantAPIError(t, resp, body, tc.status, tc.code)
		})
	}
	resp, body := ts.request("GET", "/v1/chat/completions", nil, authBasic)
	wantAPIError(t, resp, body, 405, "method_not_allowed")
	recs := ts.auditRecords()
	if len(recs) != len(cases)+1 {
		t.Fatalf("%d records for %d requests", len(recs), len(cases)+1)
	}
	for _, r := range recs {
		if r.Status < 400 || r.Error == "" {
			t.Fatalf("rejected request recorded as %+v", r)
		}
	}
}

func TestQueueFull(t *testing.T) {
	eng := &fakeEngine{delay: 20 * time.Millisecond}
	ts := startServer(t, eng, func(c *Config) { c.Concurrency, c.Queue = 1, 1 })
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := ts.request("POST", "/v1/chat/completions", chatBody(false, map[string]any{"max_tokens": 40}), authBasic)
			statuses <- resp.StatusCode
		}()
	}
	waitFor(t, func() bool { return ts.srv.engine.Running() == 1 && ts.srv.engine.QueueDepth() == 1 })
	resp, body := ts.request("POST", "/v1/chat/completions", chatBody(false, nil), authBasic)
	wantAPIError(t, resp, body, 429, "queue_full")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Fatalf("admitted request got %d", s)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestCancelOnDisconnect(t *testing.T) {
	eng := &fakeEngine{delay: 20 * time.Millisecond}
	ts := startServer(t, eng, func(c *Config) { c.Concurrency, c.Queue = 1, 4 })
	for _, stream := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		j, _ := json.Marshal(chatBody(stream, map[string]any{"max_tokens": 500}))
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/chat/completions", bytes.NewReader(j))
		req.SetBasicAuth(testUser, testPass)
		if !stream {
			// Hang up once the generation is running.
			go func() {
				for eng.active.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(30 * time.Millisecond)
				cancel()
			}()
		}
		resp, err := http.DefaultClient.Do(req)
		if stream {
			if err != nil {
				t.Fatal(err)
			}
			// Read the first chunk, then hang up.
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		} else {
			if err == nil {
				t.Fatal("request finished before its client hung up")
			}
		}
		cancel()
		waitFor(t, func() bool { return eng.active.Load() == 0 && ts.srv.engine.Running() == 0 })
	}
	if eng.cancelled.Load() != 2 {
		t.Fatalf("%d generations saw cancellation", eng.cancelled.Load())
	}
	// The slot is free: a new request is served at once.
	resp, body := ts.request("POST", "/v1/chat/completions", chatBody(false, map[string]any{"max_tokens": 1}), authBasic)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	recs := ts.auditRecords()
	if len(recs) != 3 || recs[0].Status != StatusClientClosed || recs[1].Status != StatusClientClosed || recs[0].FinishReason != "cancelled" {
		t.Fatalf("records: %+v", recs)
	}
}

func TestGracefulShutdown(t *testing.T) {
	eng := &fakeEngine{delay: 10 * time.Millisecond}
	ts := startServer(t, eng, nil)
	type result struct {
		status int
		body   []byte
	}
	res := make(chan result, 1)
	go func() {
		resp, body := ts.request("POST", "/v1/chat/completions", chatBody(true, map[string]any{"max_tokens": 30}), authBasic)
		res <- result{resp.StatusCode, body}
	}()
	waitFor(t, func() bool { return eng.active.Load() == 1 })
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.status != 200 || !bytes.HasSuffix(r.body, []byte("data: [DONE]\n\n")) {
		t.Fatalf("in-flight request not finished: %d %s", r.status, r.body)
	}
	if _, err := http.Get(ts.url + "/healthz"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
	files, _ := audit.Files(ts.auditPath)
	rep, err := audit.Verify(files, audit.VerifyOptions{})
	if err != nil || rep.Records != 1 {
		t.Fatalf("audit after shutdown: %+v %v", rep, err)
	}
}

func TestShutdownCancelsAfterGrace(t *testing.T) {
	eng := &fakeEngine{delay: 50 * time.Millisecond}
	ts := startServer(t, eng, func(c *Config) { c.ShutdownGrace = 200 * time.Millisecond })
	done := make(chan []byte, 1)
	go func() {
		_, body := ts.request("POST", "/v1/chat/completions", chatBody(true, map[string]any{"max_tokens": 500}), authBasic)
		done <- body
	}()
	waitFor(t, func() bool { return eng.active.Load() == 1 })
	start := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	body := <-done
	if !bytes.Contains(body, []byte(`"code":"shutting_down"`)) {
		t.Fatalf("stream not ended with a shutdown error: %s", body)
	}
	files, _ := audit.Files(ts.auditPath)
	if rep, err := audit.Verify(files, audit.VerifyOptions{}); err != nil || rep.Records != 1 {
		t.Fatalf("audit: %+v %v", rep, err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]Config{
		"no engine":  {AuditLogPath: filepath.Join(dir, "a"), NoAuth: true},
		"no audit":   {Engine: &fakeEngine{}, NoAuth: true},
		"no auth":    {Engine: &fakeEngine{}, AuditLogPath: filepath.Join(dir, "a")},
		"bad mode":   {Engine: &fakeEngine{}, AuditLogPath: filepath.Join(dir, "a"), NoAuth: true, AuditContent: "most"},
		"half tls":   {Engine: &fakeEngine{}, AuditLogPath: filepath.Join(dir, "a"), NoAuth: true, TLSCertFile: "c"},
		"no htpassw": {Engine: &fakeEngine{}, AuditLogPath: filepath.Join(dir, "a"), HtpasswdPath: filepath.Join(dir, "missing")},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAuditContentModes(t *testing.T) {
	for _, mode := range []audit.ContentMode{audit.ContentHash, audit.ContentNone} {
		ts := startServer(t, &fakeEngine{}, func(c *Config) { c.AuditContent = mode })
		resp, _ := ts.request("POST", "/v1/chat/completions", chatBody(false, nil), authBasic)
		if resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
		r := ts.auditRecords()[0]
		if r.Prompt != nil || r.Response != nil || (mode == audit.ContentHash) != (r.PromptSHA256 != "" && r.ResponseSHA256 != "") {
			t.Fatalf("%s: %+v", mode, r)
		}
	}
}

func TestCredentialReload(t *testing.T) {
	var htpasswd, keys string
	ts := startServer(t, &fakeEngine{}, func(c *Config) {
		c.ReloadInterval = 20 * time.Millisecond
		htpasswd, keys = c.HtpasswdPath, c.APIKeysPath
	})
	do := func(user, pass string) int {
		req, _ := http.NewRequest("GET", ts.url+"/v1/models", nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if err := auth.SetUser(htpasswd, "bob", "bobs password"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return do("bob", "bobs password") == 200 })
	if err := auth.RemoveUser(htpasswd, testUser); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return do(testUser, testPass) == 401 })
	// A broken file keeps the previous credentials.
	if err := os.WriteFile(htpasswd, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if s := do("bob", "bobs password"); s != 200 {
		t.Fatalf("after a broken file: %d", s)
	}
	// Revoking a key takes effect on reload too.
	list, _ := auth.ListKeys(keys)
	if err := auth.RevokeKey(keys, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.ReloadAuth(); err == nil {
		t.Fatal("ReloadAuth with a broken htpasswd file reported no error")
	}
	waitFor(t, func() bool {
		resp, _ := ts.request("GET", "/v1/models", nil, authBearer)
		return resp.StatusCode == 401
	})
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certPath, keyPath)
	ts := startServer(t, &fakeEngine{}, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certPath, keyPath })
	ts.url = strings.Replace(ts.url, "http://", "https://", 1)
	pool := x509.NewCertPool()
	certPEM, _ := os.ReadFile(certPath)
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", ts.url+"/v1/models", nil)
	req.SetBasicAuth(testUser, testPass)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("status %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}
	// Plain HTTP to the TLS port does not reach a handler.
	plain, err := http.Get(strings.Replace(ts.url, "https://", "http://", 1) + "/healthz")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
}

func writeSelfSigned(t *testing.T, certPath, keyPath string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(cryptorand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}
