package fetch

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/source/fakehub"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTerminalBoard(t *testing.T) {
	r := newRig(t, 300_000)
	var out lockedBuffer
	r.client.report = func(_ io.Writer, label string, total int64, _ int) reporter {
		return newBoard(&out, label, total, time.Millisecond)
	}
	r.hub.Inject(model, "model.safetensors", fakehub.Fault{Kind: fakehub.Stall, Bytes: 100_000, Delay: 50 * time.Millisecond},
		fakehub.Fault{Kind: fakehub.Status, Code: 503})
	items := []Item{r.item("config.json"), r.item("model.safetensors")}
	if _, err := r.client.FetchAll(context.Background(), "download qwen", items); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"done   config.json", "done   model.safetensors", "download qwen finished", "\x1b[J",
		"warn: retrying download file=model.safetensors attempt=2"} {
		if !strings.Contains(s, want) {
			t.Fatalf("board output lacks %q:\n%q", want, s)
		}
	}
	// The live block had a per-file line with percent and ETA.
	if !strings.Contains(s, "  model.safetensors") || !strings.Contains(s, "ETA") {
		t.Fatalf("no live per-file line:\n%q", s)
	}
}

func TestLineFor(t *testing.T) {
	got := lineFor("model.safetensors", 512<<20, 1<<30, 4*time.Second)
	for _, want := range []string{"[============>           ]", " 50%", "512.0 MiB / 1.0 GiB", "128.0 MiB/s", "ETA 4s"} {
		if !strings.Contains(got, want) {
			t.Fatalf("%q lacks %q", got, want)
		}
	}
	if got := lineFor("x", 10, -1, time.Second); !strings.Contains(got, "10 B") {
		t.Fatal(got)
	}
}
