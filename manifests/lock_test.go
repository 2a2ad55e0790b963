package manifests

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleLock() *Lock {
	return NewLock(Source{Kind: "modelscope", ID: "qwen/Qwen1.5-0.5B-Chat", Revision: "master"}, []File{
		{Path: "model.safetensors", Size: 10, SHA256: strings.Repeat("a", 64), UpstreamRevision: "r1"},
		{Path: "config.json", Size: 2, SHA256: strings.Repeat("b", 64), UpstreamRevision: "r1"},
	})
}

func TestLockRoundTripAndDiff(t *testing.T) {
	l := sampleLock()
	if l.Files[0].Path != "config.json" {
		t.Fatal("files not sorted")
	}
	p := filepath.Join(t.TempDir(), "x.lock.json")
	if _, err := LoadLock(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing lock: %v", err)
	}
	if err := l.Save(p); err != nil {
		t.Fatal(err)
	}
	got, err := LoadLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if d := l.Diff(got); d != nil {
		t.Fatalf("diff after round trip: %v", d)
	}
	changed := sampleLock()
	changed.Files[1].SHA256 = strings.Repeat("c", 64)
	changed.Files[1].UpstreamRevision = "r2"
	changed.Files = append(changed.Files, LockedFile{Path: "new.txt", Size: 1, SHA256: strings.Repeat("d", 64)})
	changed.Files = changed.Files[1:]
	changed.Source.Revision = "v2"
	d := strings.Join(l.Diff(changed), "\n")
	for _, w := range []string{"config.json: removed upstream", "model.safetensors: changed upstream", "new.txt: new upstream file", `revision: locked "master", now "v2"`} {
		if !strings.Contains(d, w) {
			t.Errorf("diff lacks %q:\n%s", w, d)
		}
	}
}

func TestParseLockRejects(t *testing.T) {
	good, _ := sampleLock().Encode()
	if _, err := ParseLock(good); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"unknown field": strings.Replace(string(good), `"files"`, `"filez"`, 1),
		"version":       strings.Replace(string(good), `"format_version": 1`, `"format_version": 9`, 1),
		"bad path":      strings.Replace(string(good), `"config.json"`, `"../config.json"`, 1),
		"bad sha":       strings.Replace(string(good), strings.Repeat("b", 64), "bb", 1),
		"duplicate":     strings.Replace(string(good), `"model.safetensors"`, `"config.json"`, 1),
		"trailing":      string(good) + "{}",
		"no source":     `{"format_version":1,"source":{},"files":[]}`,
	} {
		if _, err := ParseLock([]byte(s)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseLock(f *testing.F) {
	good, _ := sampleLock().Encode()
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLock(data)
		if err != nil {
			return
		}
		b, err := l.Encode()
		if err != nil {
			t.Fatal(err)
		}
		l2, err := ParseLock(b)
		if err != nil {
			t.Fatalf("re-encoded lock rejected: %v", err)
		}
		if d := l.Diff(l2); d != nil {
			t.Fatalf("round trip changed lock: %v", d)
		}
	})
}
