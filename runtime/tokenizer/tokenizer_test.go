package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// qwenDir is the shared Qwen tokenizer fixture.
var qwenDir = filepath.Join("..", "..", "testdata", "qwen-tokenizer")

var (
	qwenOnce sync.Once
	qwenTok  *Tokenizer
	qwenErr  error
)

// qwen loads the 7 MB Qwen tokenizer once per test binary.
func qwen(tb testing.TB) *Tokenizer {
	tb.Helper()
	qwenOnce.Do(func() { qwenTok, qwenErr = LoadDir(qwenDir) })
	if qwenErr != nil {
		tb.Fatalf("load Qwen tokenizer: %v", qwenErr)
	}
	return qwenTok
}

type golden struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	Text     string `json:"text"`
	IDs      []int  `json:"ids"`
	Decoded  string `json:"decoded"`
}

func readGoldens(tb testing.TB) []golden {
	tb.Helper()
	f, err := os.Open(filepath.Join(qwenDir, "goldens.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []golden
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var g golden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			tb.Fatalf("goldens line %d: %v", len(out)+1, err)
		}
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(out) != 273 {
		tb.Fatalf("read %d goldens, want 273", len(out))
	}
	return out
}

func equalIDs(a, b []int) bool {
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

func TestQwenGoldens(t *testing.T) {
	tok := qwen(t)
	fails := 0
	for _, g := range readGoldens(t) {
		got := tok.Encode(g.Text)
		if !equalIDs(got, g.IDs) {
			fails++
			t.Errorf("%s (%s) Encode(%q)\n got %v\nwant %v", g.ID, g.Category, g.Text, got, g.IDs)
		}
		if dec := tok.Decode(g.IDs); dec != g.Decoded {
			fails++
			t.Errorf("%s (%s) Decode = %q, want %q", g.ID, g.Category, dec, g.Decoded)
		}
	}
	if fails > 0 {
		t.Logf("%d of %d goldens failed", fails, 273)
	}
}
