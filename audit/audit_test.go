package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeN(t *testing.T, w *Writer, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := &Record{Time: time.Unix(1700000000, 0).UTC(), RequestID: fmt.Sprintf("r%d", i), User: "alice",
				AuthMethod: "basic", Client: "127.0.0.1:1", Method: "POST", Route: "/v1/chat/completions", Status: 200}
			rec.SetContent(ContentFull, "hello", "world")
			errs <- w.Append(rec)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func newLog(t *testing.T, n int, opts Options) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, w, n)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func verifyPath(t *testing.T, path string, opts VerifyOptions) (Report, error) {
	t.Helper()
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	return Verify(files, opts)
}

func TestWriteVerifyConcurrent(t *testing.T) {
	path := newLog(t, 200, Options{})
	rep, err := verifyPath(t, path, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 200 || rep.FirstSeq != 0 || rep.LastSeq != 199 {
		t.Fatalf("report %+v", rep)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := newLog(t, 10, Options{})
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, head := w.Head()
	if seq != 9 || head == "" {
		t.Fatalf("head %d %q", seq, head)
	}
	writeN(t, w, 5)
	_, head = w.Head()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyPath(t, path, VerifyOptions{Head: head})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 15 {
		t.Fatalf("records %d", rep.Records)
	}
	if err := w.Append(&Record{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func TestRotationKeepsChain(t *testing.T) {
	path := newLog(t, 100, Options{MaxBytes: 2000})
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("expected rotation, got files %v", files)
	}
	for _, f := range files {
		st, _ := os.Stat(f)
		if st.Size() > 2000 {
			t.Errorf("%s is %d bytes, over the limit", f, st.Size())
		}
	}
	if rep, err := Verify(files, VerifyOptions{}); err != nil || rep.Records != 100 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// Reopen after rotation continues from the active file.
	w, err := Open(path, Options{MaxBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, w, 30)
	w.Close()
	if rep, err := verifyPath(t, path, VerifyOptions{}); err != nil || rep.Records != 130 {
		t.Fatalf("verify after reopen: %+v %v", rep, err)
	}
	// Dropping the oldest file is reported as a deletion.
	files, _ = Files(path)
	_, err = Verify(files[1:], VerifyOptions{})
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Kind != KindDeleted {
		t.Fatalf("missing first file: %v", err)
	}
	if _, err := Verify(files[1:], VerifyOptions{AllowPartialStart: true}); err != nil {
		t.Fatalf("partial start: %v", err)
	}
	// Dropping a middle file is a deletion too.
	mid := append(append([]string{}, files[:2]...), files[3:]...)
	if _, err := Verify(mid, VerifyOptions{}); !errors.As(err, &ce) || ce.Kind != KindDeleted || ce.File != files[3] {
		t.Fatalf("missing middle file: %v", err)
	}
}

func readLines(t *testing.T, path string) [][]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTamperDetection(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(lines [][]byte) [][]byte
		kind   string
		line   int
	}{
		{"edited", func(l [][]byte) [][]byte {
			l[4] = bytes.Replace(l[4], []byte(`"alice"`), []byte(`"mallory"`), 1)
			return l
		}, KindEdited, 5},
		{"edited last link", func(l [][]byte) [][]byte {
			l[9] = bytes.Replace(l[9], []byte(`"prev":"`), []byte(`"prev":"0`), 1)
			l[9] = append(bytes.Replace(l[9], []byte(`"}`+"\n"), []byte(`}`), 1), '\n')
			return l
		}, KindMalformed, 10},
		{"deleted", func(l [][]byte) [][]byte { return append(l[:3], l[4:]...) }, KindDeleted, 4},
		{"deleted two", func(l [][]byte) [][]byte { return append(l[:3], l[5:]...) }, KindDeleted, 4},
		{"reordered", func(l [][]byte) [][]byte { l[5], l[6] = l[6], l[5]; return l }, KindReordered, 6},
		{"inserted duplicate", func(l [][]byte) [][]byte {
			return append(l[:7], append([][]byte{l[2]}, l[7:]...)...)
		}, KindInserted, 8},
		{"truncated mid-record", func(l [][]byte) [][]byte { l[9] = l[9][:len(l[9])/2]; return l }, KindTruncated, 10},
		{"garbage line", func(l [][]byte) [][]byte {
			return append(l[:2], append([][]byte{[]byte("{not json\n")}, l[2:]...)...)
		}, KindMalformed, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := newLog(t, 10, Options{})
			writeLines(t, path, tc.tamper(readLines(t, path)))
			_, err := verifyPath(t, path, VerifyOptions{})
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("want ChainError, got %v", err)
			}
			if ce.Kind != tc.kind || ce.Line != tc.line {
				t.Fatalf("got %s at line %d (%v), want %s at line %d", ce.Kind, ce.Line, ce, tc.kind, tc.line)
			}
		})
	}
}

func TestTruncationAtBoundaryNeedsAnchor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, w, 10)
	_, head := w.Head()
	w.Close()
	lines := readLines(t, path)
	writeLines(t, path, lines[:8])
	if _, err := verifyPath(t, path, VerifyOptions{}); err != nil {
		t.Fatalf("without an anchor a boundary cut is a shorter valid log: %v", err)
	}
	_, err = verifyPath(t, path, VerifyOptions{Head: head})
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Kind != KindTruncated {
		t.Fatalf("anchor should catch the cut: %v", err)
	}
}

func TestOpenRefusesTornTail(t *testing.T) {
	path := newLog(t, 3, Options{})
	lines := readLines(t, path)
	lines[2] = lines[2][:10]
	writeLines(t, path, lines)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("want refusal, got %v", err)
	}
}

func TestContentModes(t *testing.T) {
	var r Record
	r.SetContent(ContentHash, "p", "q")
	if r.Prompt != nil || r.PromptSHA256 != LineHash([]byte("p")) {
		t.Fatalf("hash mode: %+v", r)
	}
	r.SetContent(ContentNone, "p", "q")
	if r.Prompt != nil || r.PromptSHA256 != "" || r.Response != nil {
		t.Fatalf("none mode: %+v", r)
	}
	if _, err := ParseContentMode("most"); err == nil {
		t.Fatal("bad mode accepted")
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := &Record{RequestID: "x", Route: "/v1/chat/completions", Status: 200}
			rec.SetContent(ContentFull, "hello", "world")
			if err := w.Append(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestSecondWriterRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second writer: %v", err)
	}
	w.Close()
	w2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	w2.Close()
}

// BenchmarkAppendSerial is the baseline for BenchmarkAppendParallel: one
// caller, so every record pays its own fsync.
func BenchmarkAppendSerial(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	for b.Loop() {
		rec := &Record{RequestID: "x", Route: "/v1/chat/completions", Status: 200}
		rec.SetContent(ContentFull, "hello", "world")
		if err := w.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
}
