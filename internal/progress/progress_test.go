package progress

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestNonTerminalLogsJSON(t *testing.T) {
	var logBuf bytes.Buffer
	SetLogger(slog.New(slog.NewJSONHandler(&logBuf, nil)))
	defer SetLogger(slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
	Interval = 0

	var out bytes.Buffer
	b := New(&out, "copy", 10)
	_, _ = b.Write(make([]byte, 4))
	b.Add(6)
	b.Finish(errors.New("boom"))
	b.Finish(nil)
	if out.Len() != 0 {
		t.Fatalf("non-terminal writer got bar output %q", out.String())
	}
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want start, 2 updates, finish; got %d lines:\n%s", len(lines), logBuf.String())
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil {
		t.Fatal(err)
	}
	if last["event"] != "finish" || last["done"] != float64(10) || last["error"] != "boom" {
		t.Fatalf("bad finish line: %v", last)
	}
	if b.Done() != 10 {
		t.Fatalf("Done = %d", b.Done())
	}
}
