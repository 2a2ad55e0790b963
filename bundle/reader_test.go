package bundle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/airlock-dev/airlock/manifests"
)

func smallBundle(t testing.TB) []byte {
	t.Helper()
	_, priv := testKey(t)
	var buf bytes.Buffer
	files := map[string][]byte{"config.json": []byte(`{"a":1}`), "model.safetensors": weightLike(4096, 2), "sub/x.txt": []byte("x")}
	if _, err := Write(context.Background(), &buf, memSnapshot(files), Options{Signer: priv, Name: "fuzz", CreatedAt: fixedTime}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReaderWalksBundle(t *testing.T) {
	data := smallBundle(t)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); err == nil {
		t.Fatal("Next before ReadHeader accepted")
	}
	body, sig, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifests.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) == 0 {
		t.Fatal("no signature")
	}
	for _, f := range m.Files {
		h, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, r)
		if h.Name != f.Path || n != f.Size {
			t.Fatalf("entry %s (%d bytes), manifest %s (%d)", h.Name, n, f.Path, f.Size)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after last entry: %v", err)
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
}

// FuzzReader feeds arbitrary bytes to the bundle reader: it must never
// panic, hang or read past its limits, and must not hand out an entry with
// an unsafe name.
func FuzzReader(f *testing.F) {
	data := smallBundle(f)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(data[:100])
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		defer r.Close()
		body, _, err := r.ReadHeader()
		if err != nil {
			return
		}
		if len(body) > manifests.MaxManifestSize {
			t.Fatalf("manifest of %d bytes accepted", len(body))
		}
		var total int64
		for i := 0; i < 1000; i++ {
			h, err := r.Next()
			if err != nil {
				return
			}
			if manifests.CheckPath(h.Name) != nil {
				t.Fatalf("unsafe entry name %q handed out", h.Name)
			}
			n, err := io.Copy(io.Discard, io.LimitReader(r, 64<<20))
			total += n
			if err != nil || total >= 64<<20 {
				return
			}
		}
		_ = r.Finish()
	})
}
