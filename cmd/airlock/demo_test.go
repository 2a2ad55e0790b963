package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
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
	"github.com/airlock-dev/airlock/infer"
)

// TestDemoEndToEnd runs the whole demo (key, bundle, verify, serve) on a
// loopback port and uses the served model through every route it mounts.
func TestDemoEndToEnd(t *testing.T) {
	// bcrypt at the production cost takes seconds under -race, twice
	// (hashing the password, then checking it); the cost is not under test.
	defer func(c int) { auth.BcryptCost = c }(auth.BcryptCost)
	auth.BcryptCost = bcrypt.MinCost
	dir := t.TempDir()
	const user, password = "demo", "demo-password-for-tests"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, demoOptions{Dir: dir, Listen: "127.0.0.1:0", User: user, Password: password, MaxTokens: 16},
			&out, &errOut, func(u string) { urls <- u })
	}()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("demo ended before serving: %v\n%s", err, errOut.String())
	case <-time.After(90 * time.Second):
		t.Fatal("demo did not start serving within 90 s")
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("URL %s is not loopback", base)
	}
	banner := out.String()
	for _, want := range []string{base, "user      demo", "password  " + password, filepath.Join(dir, "audit.log")} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if strings.Contains(errOut.String(), password) {
		t.Error("the password appears in the logs")
	}

	start := time.Now()
	call := func(method, path, body string, withAuth bool) (int, http.Header, []byte) {
		t.Helper()
		defer func(t0 time.Time) {
			t.Logf("%s /%s: %v (%v since serving)", method, path, time.Since(t0).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		}(time.Now())
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if withAuth {
			req.SetBasicAuth(user, password)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, b
	}
	if code, h, _ := call("GET", "", "", false); code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("page without credentials: %d %q", code, h.Get("WWW-Authenticate"))
	}
	code, h, page := call("GET", "", "", true)
	if code != 200 || !bytes.Contains(page, []byte("assets/app.js")) || !strings.HasPrefix(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("page: %d CSP %q", code, h.Get("Content-Security-Policy"))
	}
	code, _, body := call("POST", "api/infer", `{"text":"#EMOTION#这个产品很好用"}`, true)
	var inf infer.Response
	if code != 200 || json.Unmarshal(body, &inf) != nil || inf.EmotionLabel == nil ||
		(*inf.EmotionLabel != infer.LabelPositive && *inf.EmotionLabel != infer.LabelNegative) {
		t.Errorf("emotion: %d %s", code, body)
	}
	code, _, body = call("POST", "api/infer", `{"text":"#CHAT#hello"}`, true)
	if code != 200 || json.Unmarshal(body, &inf) != nil || inf.ChatResponse == nil || *inf.ChatResponse == "" {
		t.Errorf("infer chat: %d %s", code, body)
	}
	code, _, body = call("POST", "v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}`, true)
	if code != 200 || !bytes.Contains(body, []byte(`"choices"`)) {
		t.Errorf("chat completions: %d %s", code, body)
	}

	cancel()
	stopping := time.Now()
	defer func() { t.Logf("shutdown took %v", time.Since(stopping).Round(time.Millisecond)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("demo did not shut down")
	}
	for name, mode := range map[string]os.FileMode{"demo.key": 0o600, "htpasswd": 0o600, "demo.pub": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v mode %v, want %v", name, err, st.Mode().Perm(), mode)
		}
	}
	for _, f := range []string{"model.tar.zst", "model.tar.zst.minisig", "model/config.json", "model/.airlock/manifest.json", "model/.airlock/manifest.json.minisig"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	rep, err := audit.Verify([]string{filepath.Join(dir, "audit.log")}, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	logText, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
	if !bytes.Contains(logText, []byte(`"route":"/api/infer"`)) || bytes.Contains(logText, []byte(password)) {
		t.Errorf("audit log (%+v) lacks /api/infer records or holds the password", rep)
	}
}

func TestDemoRefusals(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", "192.0.2.1:80", ":8080", "nonsense"} {
		if err := requireLoopback(addr); err == nil {
			t.Errorf("listen %q accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:8080", "[::1]:9000"} {
		if err := requireLoopback(addr); err != nil {
			t.Errorf("listen %q refused: %v", addr, err)
		}
	}
	if _, err := findDemoModel(t.TempDir()); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("empty --model accepted: %v", err)
	}
	m, err := findDemoModel("")
	if err != nil || !strings.HasSuffix(filepath.ToSlash(m), demoModelDir) {
		t.Errorf("built-in model: %q %v", m, err)
	}
	if got := run([]string{"airlock", "demo", "--listen", "0.0.0.0:8080"}); got != exitUsage {
		t.Errorf("non-loopback --listen exit %d, want %d", got, exitUsage)
	}
	if got := run([]string{"airlock", "demo", "extra"}); got != exitUsage {
		t.Errorf("extra argument exit %d, want %d", got, exitUsage)
	}
	p1, _ := randomPassword()
	p2, _ := randomPassword()
	if len(p1) != 22 || p1 == p2 {
		t.Errorf("passwords %q %q", p1, p2)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
