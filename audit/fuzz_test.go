package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify feeds arbitrary bytes to Verify: it must never panic, must
// accept only logs whose every line links to the one before, and must
// name a line inside the input when it rejects one.
func FuzzVerify(f *testing.F) {
	for _, name := range []string{"audit.log", "edited.log", "deleted.log", "reordered.log", "truncated.log"} {
		if b, err := os.ReadFile(filepath.Join(vectorDir, name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"v":1,"seq":0,"prev":"` + GenesisPrev + `"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := verifyBytes(data)
		var ce *ChainError
		if errors.As(err, &ce) {
			if ce.Line < 1 || ce.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("reported line %d of a %d-line input", ce.Line, bytes.Count(data, []byte("\n"))+1)
			}
			return
		}
		if err != nil {
			return
		}
		lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		if uint64(len(lines)) != rep.Records || LineHash(lines[len(lines)-1]) != rep.Head {
			t.Fatalf("accepted %d lines as %d records, head %s", len(lines), rep.Records, rep.Head)
		}
		prev := GenesisPrev
		for _, l := range lines {
			if !bytes.Contains(l, []byte(prev)) {
				t.Fatalf("accepted a line that does not carry the previous hash: %q", l)
			}
			prev = LineHash(l)
		}
	})
}

// verifyBytes runs Verify's checks over one in-memory file.
func verifyBytes(data []byte) (Report, error) {
	rep := Report{Files: []string{"log"}}
	v := verifier{rep: &rep, prev: GenesisPrev}
	if err := v.reader("log", bytes.NewReader(data)); err != nil {
		return rep, err
	}
	return v.finish(rep.Files)
}
