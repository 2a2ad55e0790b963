package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenAINodeClient runs e2e/openai/check.mjs (the official openai npm
// package) against a live server on loopback with an API key. It needs
// node and `npm ci --prefix e2e`; without them it skips, except under
// CI=true where it fails.
func TestOpenAINodeClient(t *testing.T) {
	e2e, _ := filepath.Abs(filepath.Join("..", "e2e"))
	node, err := exec.LookPath("node")
	missing := ""
	if err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(e2e, "node_modules", "openai", "package.json")); err != nil {
		missing = "the openai npm package is not installed (run: npm ci --prefix e2e)"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(missing)
		}
		t.Skip(missing)
	}
	ts := startServer(t, loadTiny(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(e2e, "openai", "check.mjs"))
	cmd.Env = append(os.Environ(), "AIRLOCK_URL="+ts.url, "AIRLOCK_API_KEY="+ts.key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openai SDK check failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("unexpected output: %s", out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
	recs := ts.auditRecords()
	bearer := 0
	for _, r := range recs {
		if r.AuthMethod == "bearer" {
			bearer++
		}
	}
	// models, completion, stream, bad request; plus the failed login.
	if bearer != 4 || len(recs) != 5 {
		t.Fatalf("%d records, %d by bearer key", len(recs), bearer)
	}
}
