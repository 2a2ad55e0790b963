// Package browser drives the chat page in headless Chromium against a real
// airlock server (package server, which mounts the page and /api/infer)
// serving the tiny test model (testdata/tiny-qwen2).
//
// Requirements: node, /usr/bin/chromium (Debian's chromium package, or
// CHROMIUM=path) and e2e/node_modules (npm ci --prefix e2e). Without them
// the test skips, except under CI=true, where it fails.
package browser

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/auth"
	"github.com/airlock-dev/airlock/infer"
	"github.com/airlock-dev/airlock/runtime"
	"github.com/airlock-dev/airlock/server"
)

// Markers the browser script puts in its messages to ask the test engine
// for a scripted (Markdown) or slowed-down reply.
const (
	markdownMarker = "[[markdown]]"
	slowMarker     = "[[slow]]"
)

// markdownReply is streamed token by token for markdownMarker. It mixes the
// Markdown the page must render with HTML it must neutralize.
var markdownReply = []string{
	"## Deploy", " steps\n\n", "1. Copy", " the bundle\n", "2. Run `airlock", " verify`\n\n",
	"| file | size |\n", "|---|---|\n", "| model | 1 GB |\n\n",
	"```go\n", "fmt.Println(\"hi\")\n", "```\n\n",
	"<img src=x onerror=\"window.__xss=1\">", "<script>window.__xss=2</script>",
	"[link](javascript:window.__xss=3) ", "![remote](http://192.0.2.1/pixel.png)\n",
}

// testEngine is the real model with two test hooks: a prompt containing
// markdownMarker gets markdownReply instead of model output, and every
// generated token is delayed (long for slowMarker) so that streaming and
// stopping can be observed in the browser. Everything else, including
// /api/infer's label scoring, is the model's own work.
type testEngine struct {
	runtime.Engine
	cancelled atomic.Int32 // generations ended by a cancelled context
}

func (e *testEngine) Generate(ctx context.Context, ids []int, p runtime.SampleParams, emit func(runtime.TokenEvent) error) (runtime.Result, error) {
	// Only the newest user turn counts: earlier turns are history.
	prompt := e.Decode(ids)
	if i := strings.LastIndex(prompt, "<|im_start|>user"); i >= 0 {
		prompt = prompt[i:]
	}
	delay := 25 * time.Millisecond
	if strings.Contains(prompt, slowMarker) {
		delay = 250 * time.Millisecond
	}
	if strings.Contains(prompt, markdownMarker) {
		res := runtime.Result{PromptTokens: len(ids), FinishReason: runtime.FinishStop}
		for _, piece := range markdownReply {
			if err := sleep(ctx, delay); err != nil {
				e.cancelled.Add(1)
				res.FinishReason = runtime.FinishCancelled
				return res, err
			}
			if err := emit(runtime.TokenEvent{Text: piece}); err != nil {
				return res, err
			}
			res.Text += piece
			res.CompletionTokens++
		}
		return res, nil
	}
	res, err := e.Engine.Generate(ctx, ids, p, func(ev runtime.TokenEvent) error {
		if err := sleep(ctx, delay); err != nil {
			return err
		}
		return emit(ev)
	})
	if ctx.Err() != nil {
		e.cancelled.Add(1)
	}
	return res, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// requirements returns node's path, Chromium's path and the e2e directory,
// or skips (fails under CI=true) naming what is missing.
func requirements(t *testing.T) (node, chromium, e2eDir string) {
	t.Helper()
	e2eDir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	node, err = exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node (apt-get install nodejs)")
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (apt-get install chromium)")
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "e2e/node_modules/playwright-core (npm ci --prefix e2e)")
	}
	if len(missing) > 0 {
		msg := "browser test needs " + strings.Join(missing, ", ")
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, chromium, e2eDir
}

func TestChatPageInChromium(t *testing.T) {
	node, chromium, e2eDir := requirements(t)
	repo := filepath.Dir(e2eDir)
	artifacts := filepath.Join(repo, "test-artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	model, err := runtime.Load(filepath.Join(repo, "testdata", "tiny-qwen2"), runtime.LoadOptions{Heap: true, Name: "tiny-qwen2"})
	if err != nil {
		t.Fatal(err)
	}
	eng := &testEngine{Engine: model}

	// bcrypt at the production cost takes seconds under -race; the cost is
	// not under test here.
	defer func(c int) { auth.BcryptCost = c }(auth.BcryptCost)
	auth.BcryptCost = bcrypt.MinCost
	dir := t.TempDir()
	const user, password = "tester", "correct horse battery staple"
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := auth.SetUser(htpasswd, user, password); err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	srv, err := server.New(server.Config{
		Engine:        eng,
		HtpasswdPath:  htpasswd,
		AuditLogPath:  auditPath,
		Limits:        server.Limits{MaxTokens: 40},
		Concurrency:   1,
		ShutdownGrace: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			stop()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	defer shutdown()

	// Generous: CI runs every package's tests at once on two cores.
	runCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, node, filepath.Join(e2eDir, "browser", "chat.mjs"))
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(),
		"AIRLOCK_URL=http://"+ln.Addr().String()+"/",
		"AIRLOCK_USER="+user,
		"AIRLOCK_PASSWORD="+password,
		"CHROMIUM="+chromium,
		"ARTIFACTS="+artifacts,
		"USER_DATA_DIR="+filepath.Join(dir, "chromium-profile"),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var steps []string
	var result struct {
		OK         bool     `json:"ok"`
		Violations []string `json:"violations"`
		Error      string   `json:"error"`
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		var step struct {
			Step string `json:"step"`
		}
		if json.Unmarshal([]byte(line), &step) == nil && step.Step != "" {
			steps = append(steps, step.Step)
		}
		if strings.Contains(line, `"ok":`) {
			_ = json.Unmarshal([]byte(line), &result)
		}
	}
	if err != nil || !result.OK {
		t.Fatalf("browser script failed: %v %s\nstderr:\n%s", err, result.Error, stderr.String())
	}
	if len(result.Violations) > 0 {
		t.Fatalf("the page requested non-loopback addresses: %q", result.Violations)
	}
	want := []string{"login", "stream", "markdown", "stop", "emotion", "errors", "persist", "narrow"}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	if eng.cancelled.Load() < 1 {
		t.Error("stopping in the page did not cancel the generation on the server")
	}
	shutdown() // flushes and closes the audit log
	checkAudit(t, auditPath, user)
}

// checkAudit reads the audit log the server wrote during the browser run
// and checks the chain and the /api/infer record.
func checkAudit(t *testing.T, path, user string) {
	t.Helper()
	if _, err := audit.Verify([]string{path}, audit.VerifyOptions{}); err != nil {
		t.Fatalf("audit log does not verify: %v", err)
	}
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var inferRecords, chatRecords int
	for _, line := range bytes.Split(bytes.TrimSpace(f), []byte("\n")) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		switch {
		case r.Route == "/api/infer" && r.Status == 200:
			inferRecords++
			if r.User != user || r.Response == nil || (*r.Response != infer.LabelPositive && *r.Response != infer.LabelNegative) ||
				r.Prompt == nil || !strings.Contains(*r.Prompt, "这个产品") || r.PromptTokens == 0 || r.Params["mode"] != "emotion" {
				t.Errorf("infer audit record %s", line)
			}
		case r.Route == "/v1/chat/completions" && r.Status == 200:
			chatRecords++
		}
	}
	if inferRecords != 1 || chatRecords < 3 {
		t.Errorf("audit log has %d infer and %d chat records, want 1 and at least 3", inferRecords, chatRecords)
	}
}
