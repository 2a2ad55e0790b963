package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// vectorDir holds the format's test vector (see docs/audit-log.md). Set
// AIRLOCK_WRITE_AUDIT_VECTORS=1 to regenerate it after a deliberate format
// change.
var vectorDir = filepath.Join("..", "testdata", "audit-vectors")

// vectorRecords are the records of testdata/audit-vectors/audit.log.
func vectorRecords() []*Record {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	prompt := "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
	full := &Record{Time: t0, RequestID: "000000000000000000000001", User: "alice", AuthMethod: "basic",
		Client: "127.0.0.1:50000", Method: "POST", Route: "/v1/chat/completions", Status: 200, LatencyMS: 812.5,
		Model: "Qwen1.5-0.5B-Chat", ManifestSHA256: "5f2c3a0e0d1d7c6b9a8f7e6d5c4b3a29181716151413121110f0e0d0c0b0a090",
		Params:       map[string]any{"max_tokens": 16, "seed": 7, "stream": false, "temperature": 0.7, "top_p": 1},
		PromptTokens: 9, CompTokens: 3, FinishReason: "stop"}
	full.SetContent(ContentFull, prompt, "Hi there!")
	failed := &Record{Time: t0.Add(time.Second), RequestID: "000000000000000000000002", User: "mallory", AuthMethod: "failed",
		Client: "10.1.2.3:40000", Method: "GET", Route: "/v1/models", Status: 401, LatencyMS: 1.25, Error: "invalid credentials"}
	hashed := &Record{Time: t0.Add(2 * time.Second), RequestID: "000000000000000000000003", User: "key:0123456789abcdef", AuthMethod: "bearer",
		Client: "127.0.0.1:50001", Method: "POST", Route: "/v1/chat/completions", Status: 200, LatencyMS: 402,
		Model: "Qwen1.5-0.5B-Chat", Params: map[string]any{"stream": true}, PromptTokens: 9, CompTokens: 2, FinishReason: "length"}
	hashed.SetContent(ContentHash, prompt, "Hi!")
	return []*Record{full, failed, hashed}
}

type vectorExpect struct {
	Heads   []string `json:"line_sha256"` // hash of each line of audit.log
	Tampers []struct {
		File string `json:"file"`
		Kind string `json:"kind"`
		Line int    `json:"line"`
	} `json:"tampered"`
}

func TestAuditVector(t *testing.T) {
	// The writer's output for the vector records, byte for byte.
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range vectorRecords() {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	got, _ := os.ReadFile(path)
	if os.Getenv("AIRLOCK_WRITE_AUDIT_VECTORS") == "1" {
		writeVectors(t, got)
	}
	want, err := os.ReadFile(filepath.Join(vectorDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the writer's encoding changed:\n got %s\nwant %s", got, want)
	}
	var exp vectorExpect
	data, err := os.ReadFile(filepath.Join(vectorDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &exp); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(want, []byte("\n")), []byte("\n"))
	for i, line := range lines {
		if h := LineHash(line); h != exp.Heads[i] {
			t.Fatalf("line %d hash %s, documented %s", i+1, h, exp.Heads[i])
		}
	}
	if _, err := Verify([]string{filepath.Join(vectorDir, "audit.log")}, VerifyOptions{Head: exp.Heads[len(exp.Heads)-1]}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range exp.Tampers {
		_, err := Verify([]string{filepath.Join(vectorDir, tc.File)}, VerifyOptions{Head: exp.Heads[len(exp.Heads)-1]})
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Kind != tc.Kind || ce.Line != tc.Line {
			t.Errorf("%s: got %v, want %s at line %d", tc.File, err, tc.Kind, tc.Line)
		}
	}
}

func writeVectors(t *testing.T, log []byte) {
	if err := os.MkdirAll(vectorDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(log, []byte("\n"))[:3]
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	edited := bytes.Replace(lines[1], []byte(`"status":401`), []byte(`"status":200`), 1)
	files := map[string][]byte{
		"audit.log":     log,
		"edited.log":    join(lines[0], edited, lines[2]),
		"deleted.log":   join(lines[0], lines[2]),
		"reordered.log": join(lines[0], lines[2], lines[1]),
		"truncated.log": join(lines[0], lines[1], lines[2][:len(lines[2])/2]),
		"cut-tail.log":  join(lines[0], lines[1]),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(vectorDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exp := map[string]any{"line_sha256": []string{
		LineHash(bytes.TrimSuffix(lines[0], []byte("\n"))),
		LineHash(bytes.TrimSuffix(lines[1], []byte("\n"))),
		LineHash(bytes.TrimSuffix(lines[2], []byte("\n"))),
	}, "tampered": []map[string]any{
		{"file": "edited.log", "kind": KindEdited, "line": 2},
		{"file": "deleted.log", "kind": KindDeleted, "line": 2},
		{"file": "reordered.log", "kind": KindReordered, "line": 2},
		{"file": "truncated.log", "kind": KindTruncated, "line": 3},
		{"file": "cut-tail.log", "kind": KindTruncated, "line": 3},
	}}
	b, _ := json.MarshalIndent(exp, "", "  ")
	if err := os.WriteFile(filepath.Join(vectorDir, "expected.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
