package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/auth"
)

// TestMain doubles as a server process: with AIRLOCK_TEST_CHILD=1 the test
// binary serves the tiny model until SIGTERM (or SIGKILL), so tests can
// signal a real process.
func TestMain(m *testing.M) {
	if os.Getenv("AIRLOCK_TEST_CHILD") == "1" {
		os.Exit(childServer())
	}
	os.Exit(m.Run())
}

func childServer() int {
	dir := os.Getenv("AIRLOCK_TEST_DIR")
	delay, _ := time.ParseDuration(os.Getenv("AIRLOCK_TEST_DELAY"))
	concurrency, queue := 2, 64
	fmt.Sscan(os.Getenv("AIRLOCK_TEST_CONCURRENCY"), &concurrency)
	fmt.Sscan(os.Getenv("AIRLOCK_TEST_QUEUE"), &queue)
	model := loadTiny(childTB{})
	srv, err := New(Config{
		Engine:       slowEngine{model, delay},
		HtpasswdPath: filepath.Join(dir, "htpasswd"),
		AuditLogPath: filepath.Join(dir, "audit.log"),
		Concurrency:  concurrency, Queue: queue,
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childTB lets loadTiny report failure in the child process.
type childTB struct{ testing.TB }

func (childTB) Helper() {}
func (childTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

type child struct {
	cmd  *exec.Cmd
	url  string
	dir  string
	done chan error
}

func startChild(t *testing.T, delay time.Duration, env ...string) *child {
	t.Helper()
	dir := t.TempDir()
	if err := auth.SetUser(filepath.Join(dir, "htpasswd"), testUser, testPass); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AIRLOCK_TEST_CHILD=1", "AIRLOCK_TEST_DIR="+dir, "AIRLOCK_TEST_DELAY="+delay.String())
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = io.Discard
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, dir: dir, done: make(chan error, 1)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() { c.done <- cmd.Wait() }()
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		t.Fatalf("child server did not start: %q %v", line, err)
	}
	c.url = "http://" + strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
	return c
}

func (c *child) chat(ctx context.Context, stream bool, maxTokens int) (*http.Response, error) {
	j, _ := json.Marshal(tinyChat(stream, map[string]any{"max_tokens": maxTokens}))
	req, _ := http.NewRequestWithContext(ctx, "POST", c.url+"/v1/chat/completions", bytes.NewReader(j))
	req.SetBasicAuth(testUser, testPass)
	return http.DefaultClient.Do(req)
}

func (c *child) wait(t *testing.T) error {
	select {
	case err := <-c.done:
		c.done <- err // for Cleanup
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("child server did not exit")
		return nil
	}
}

func TestSIGKILLDuringStreamingLeavesVerifiableLog(t *testing.T) {
	c := startChild(t, 5*time.Millisecond)
	// Keep the server busy: completed requests, and streams in flight at
	// the moment of the kill.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	completed := 0
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := c.chat(ctx, false, 3)
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				completed++
				mu.Unlock()
			}
		}()
	}
	resp, err := c.chat(ctx, true, 500)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for range 6 { // the role chunk and a few tokens
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := completed
		mu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.wait(t)
	cancel()
	wg.Wait()
	if rest, _ := io.ReadAll(br); bytes.Contains(rest, []byte("[DONE]")) {
		t.Fatal("the stream completed; the kill did not land mid-stream")
	}
	path := filepath.Join(c.dir, "audit.log")
	files, err := audit.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(files, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("audit log after SIGKILL: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Every response a client saw complete has a durable record.
	if int(rep.Records) < completed {
		t.Fatalf("%d records for %d completed responses", rep.Records, completed)
	}
	t.Logf("after SIGKILL: %d records verify; %d responses had completed", rep.Records, completed)
	// A restarted server continues the chain.
	w, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(&audit.Record{RequestID: "after-restart"}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if rep2, err := audit.Verify(files, audit.VerifyOptions{}); err != nil || rep2.Records != rep.Records+1 {
		t.Fatalf("after restart: %+v %v", rep2, err)
	}
}

func TestSIGTERMFinishesInFlightStream(t *testing.T) {
	c := startChild(t, 5*time.Millisecond)
	resp, err := c.chat(context.Background(), true, 60)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(rest, []byte("data: [DONE]\n\n")) {
		t.Fatalf("stream cut by SIGTERM: %q", rest)
	}
	if err := c.wait(t); err != nil {
		t.Fatalf("child exit: %v", err)
	}
	files, _ := audit.Files(filepath.Join(c.dir, "audit.log"))
	rep, err := audit.Verify(files, audit.VerifyOptions{})
	if err != nil || rep.Records != 1 {
		t.Fatalf("audit after SIGTERM: %+v %v", rep, err)
	}
}

// sigterm is the signal for a graceful stop.
var sigterm = syscall.SIGTERM
