package main

import (
	"bufio"
	"context"
	"github.com/airlock-dev/airlock/internal/signing/signingtest"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/bundle"
	"github.com/airlock-dev/airlock/source/local"
	"github.com/airlock-dev/airlock/verify"
)

func TestListenPolicy(t *testing.T) {
	for _, tc := range []struct {
		listen                       string
		auth, tls, noAuth, plainHTTP bool
		ok                           bool
	}{
		{"127.0.0.1:8080", false, false, false, false, true},
		{"[::1]:8080", true, false, false, false, true},
		{"localhost:8080", false, false, false, false, true},
		{"0.0.0.0:8080", false, false, false, false, false},
		{"0.0.0.0:8080", false, false, true, false, true},
		{"10.0.0.5:8080", true, false, false, false, false},
		{"10.0.0.5:8080", true, true, false, false, true},
		{"10.0.0.5:8080", true, false, false, true, true},
		{":8080", true, true, false, false, true},
		{":8080", false, true, false, false, false},
		{"nonsense", true, true, false, false, false},
	} {
		_, err := listenPolicy(tc.listen, tc.auth, tc.tls, tc.noAuth, tc.plainHTTP)
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

// installTiny bundles testdata/tiny-qwen2 with a fresh key and installs it
// the way `airlock verify` does. It returns the directory and the public
// key file.
func installTiny(t *testing.T) (dir, pubPath string) {
	t.Helper()
	k := signingtest.NewKeyPair(t)
	tmp := t.TempDir()
	pubPath = filepath.Join(tmp, "airlock.pub")
	if err := os.WriteFile(pubPath, k.PubText, 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := local.Dir{Root: filepath.Join("..", "..", "testdata", "tiny-qwen2"), Name: "tiny-qwen2"}.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(tmp, "tiny.tar.zst")
	if _, err := bundle.WriteFile(context.Background(), bundlePath, snap, bundle.Options{Signer: k.Priv, Name: "tiny-qwen2", ToolVersion: "test"}); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(tmp, "installed")
	if _, err := verify.Extract(context.Background(), bundlePath, k.Pub, dir, verify.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir, pubPath
}

// buildAirlock compiles this command into a temporary directory.
func buildAirlock(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "airlock")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the airlock binary")
	}
	dir, pub := installTiny(t)
	bin := buildAirlock(t)
	work := t.TempDir()
	htpasswd := filepath.Join(work, "htpasswd")
	add := exec.Command(bin, "user", "add", "--htpasswd", htpasswd, "alice")
	add.Env = append(os.Environ(), "AIRLOCK_PASSWORD=correct horse")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	auditLog := filepath.Join(work, "audit.log")
	addr := freePort(t)
	args := []string{"serve", "--pubkey", pub, "--htpasswd", htpasswd, "--audit-log", auditLog, "--listen", addr, dir}

	// A modified file is refused, by name.
	cfg := filepath.Join(dir, "generation_config.json")
	orig, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(orig, ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if code := exitCode(err); code != exitFailure || !strings.Contains(string(out), "generation_config.json") {
		t.Fatalf("modified directory: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(cfg, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	// Without auth on a public address: usage error.
	out, err = exec.Command(bin, "serve", "--pubkey", pub, "--audit-log", auditLog, "--listen", "0.0.0.0:0", dir).CombinedOutput()
	if code := exitCode(err); code != exitUsage || !strings.Contains(string(out), "without authentication") {
		t.Fatalf("no auth on 0.0.0.0: exit %d\n%s", code, out)
	}

	cmd := exec.Command(bin, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"msg":"serving"`) {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start")
	}
	for range 2 {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions",
			strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"seed":1}`))
		req.SetBasicAuth("alice", "correct horse")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"model":"tiny-qwen2"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exit after SIGTERM: %v", err)
	}
	out, err = exec.Command(bin, "audit", "verify", auditLog).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: 2 records") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	// An edited record is reported.
	data, _ := os.ReadFile(auditLog)
	edited := strings.Replace(string(data), `"user":"alice"`, `"user":"bob"`, 1)
	if err := os.WriteFile(auditLog, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "audit", "verify", auditLog).CombinedOutput()
	if exitCode(err) != exitFailure || !strings.Contains(string(out), "edited") {
		t.Fatalf("tampered log: %v\n%s", err, out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
