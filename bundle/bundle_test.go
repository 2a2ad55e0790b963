package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"github.com/airlock-dev/airlock/internal/signing/signingtest"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
	"github.com/airlock-dev/airlock/source/local"
)

var fixedTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func testKey(t testing.TB) (signing.PublicKey, *signing.PrivateKey) {
	t.Helper()
	k := signingtest.NewKeyPair(t)
	return k.Pub, k.Priv
}

// memSnapshot is a snapshot of in-memory files.
func memSnapshot(files map[string][]byte) *source.Snapshot {
	s := &source.Snapshot{Source: manifests.Source{Kind: "local", ID: "mem"}}
	for p, b := range files {
		b := b
		e := manifests.File{Path: p, Size: int64(len(b)), Role: local.RoleOf(p)}
		if e.Role == manifests.RoleRuntime {
			e.Platform = "linux/amd64"
		}
		s.Files = append(s.Files, source.File{Entry: e, Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		}})
	}
	return s
}

// weightLike returns n bytes shaped like bf16 weights: normal values with
// a small scale, truncated to their top 16 bits.
func weightLike(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n&^7)
	for i := 0; i+7 < len(b); i += 8 {
		x := r.Uint64()
		for k := 0; k < 8; k += 2 {
			v := normalTable[uint16(x>>(8*k))]
			b[i+k], b[i+k+1] = byte(v), byte(v>>8)
		}
	}
	return b
}

func testFiles() map[string][]byte {
	rnd := make([]byte, 3<<19)
	fillRandom(rnd, 7, 7)
	return map[string][]byte{
		"config.json":             []byte(`{"hidden_size": 64}`),
		"tokenizer.json":          bytes.Repeat([]byte(`{"vocab": "abc"}`), 1000),
		"model.safetensors":       weightLike(2<<20+6, 1),
		"sub/dir/random.bin":      rnd,
		"empty.txt":               {},
		"bin/linux-amd64/airlock": []byte("\x7fELF fake"),
	}
}

func TestWriteDeterministicAndReadable(t *testing.T) {
	_, priv := testKey(t)
	files := testFiles()
	opts := Options{Signer: priv, Name: "tiny", CreatedAt: fixedTime, ToolVersion: "test"}
	var a, b bytes.Buffer
	ma, err := Write(context.Background(), &a, memSnapshot(files), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), &b, memSnapshot(files), opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same inputs gave different bundles")
	}
	// Written to a file (seekable path) the bytes are identical too.
	f, err := os.Create(filepath.Join(t.TempDir(), "x.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), f, memSnapshot(files), opts); err != nil {
		t.Fatal(err)
	}
	fb, _ := os.ReadFile(f.Name())
	if !bytes.Equal(fb, a.Bytes()) {
		t.Fatal("seekable and spooled writes differ")
	}

	// The stream is a plain zstd-compressed tar with the manifest first.
	dec, err := zstd.NewReader(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || !h.ModTime.Equal(fixedTime) || h.Typeflag != tar.TypeReg {
			t.Fatalf("%s: non-canonical header %+v", h.Name, h)
		}
		body, _ := io.ReadAll(tr)
		if want, ok := files[h.Name]; ok && !bytes.Equal(body, want) {
			t.Fatalf("%s: content differs", h.Name)
		}
		names = append(names, h.Name)
	}
	want := []string{manifests.ManifestPath, manifests.SignaturePath, "bin/linux-amd64/airlock", "config.json",
		"empty.txt", "model.safetensors", "sub/dir/random.bin", "tokenizer.json"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("entries %v, want %v", names, want)
	}
	if len(ma.Files) != 6 || ma.Lookup("model.safetensors").SHA256 == strings.Repeat("0", 64) {
		t.Fatalf("manifest not filled in: %+v", ma.Files)
	}
}

func TestDeterministicAcrossWorkerCounts(t *testing.T) {
	_, priv := testKey(t)
	files := map[string][]byte{"model.safetensors": weightLike(18<<20, 3)}
	opts := Options{Signer: priv, Name: "w", CreatedAt: fixedTime, ToolVersion: "test", Compression: CompressFast}
	var outs [][]byte
	for _, procs := range []int{1, 4} {
		var buf bytes.Buffer
		sink := newFrameSink(&buf, procs)
		_ = sink.SetMode(modeFast)
		_, _ = sink.Write(files["model.safetensors"])
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, buf.Bytes())
	}
	for i := 1; i < len(outs); i++ {
		if !bytes.Equal(outs[0], outs[i]) {
			t.Fatalf("compressed output depends on worker count (%d vs %d bytes)", len(outs[0]), len(outs[i]))
		}
	}
	_ = opts
}

func TestChooseMode(t *testing.T) {
	rnd := make([]byte, chunkSize)
	fillRandom(rnd, 1, 2)
	cases := []struct {
		name string
		size int64
		data []byte
		want frameMode
	}{
		{"small text", 100, []byte("hello"), modeDefault},
		{"random weights", 1 << 30, rnd, modeStore},
		{"bf16 weights", 1 << 30, weightLike(chunkSize, 9), modeStore},
		{"zeros", 1 << 30, make([]byte, chunkSize), modeDefault},
		{"large text", 1 << 30, bytes.Repeat([]byte(`{"vocab": {"hello": 1, "world": 2}}`), chunkSize/36), modeDefault},
	}
	for _, c := range cases {
		if got := chooseMode(CompressAuto, c.size, c.data); got != c.want {
			t.Errorf("%s: mode %d, want %d (entropy ratio %.3f)", c.name, got, c.want, entropyRatio(c.data))
		}
	}
	if chooseMode(CompressStore, 10, nil) != modeStore || chooseMode(CompressBetter, 1<<30, rnd) != modeBetter {
		t.Error("explicit policy ignored")
	}
	if _, err := ParseCompression("fastest"); err == nil {
		t.Error("unknown policy accepted")
	}
}

func TestRawFrameDecodes(t *testing.T) {
	for _, n := range []int{0, 1, maxRawBlock - 1, maxRawBlock, maxRawBlock + 1, 3*maxRawBlock + 5} {
		data := make([]byte, n)
		fillRandom(data, uint64(n), 0)
		frame := rawFrame(data)
		dec, _ := zstd.NewReader(nil)
		got, err := dec.DecodeAll(frame, nil)
		dec.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("n=%d: raw frame does not round-trip: %v", n, err)
		}
		if zstdCLI, err := exec.LookPath("zstd"); err == nil {
			cmd := exec.Command(zstdCLI, "-dc")
			cmd.Stdin = bytes.NewReader(frame)
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("n=%d: zstd CLI rejects the raw frame: %v", n, err)
			}
		}
	}
}

func TestWriteRefusesBadSources(t *testing.T) {
	_, priv := testKey(t)
	opts := Options{Signer: priv, Name: "x", CreatedAt: fixedTime}
	ctx := context.Background()

	// A file that changed size while bundling.
	s := memSnapshot(map[string][]byte{"config.json": []byte("12345")})
	s.Files[0].Entry.Size = 10
	if _, err := Write(ctx, io.Discard, s, opts); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("short file: %v", err)
	}
	s = memSnapshot(map[string][]byte{"config.json": []byte("12345")})
	s.Files[0].Entry.Size = 2
	if _, err := Write(ctx, io.Discard, s, opts); err == nil || !strings.Contains(err.Error(), "longer") {
		t.Fatalf("long file: %v", err)
	}
	// Upstream checksum mismatch.
	s = memSnapshot(map[string][]byte{"config.json": []byte("12345")})
	s.Files[0].Entry.SHA256 = strings.Repeat("ab", 32)
	if _, err := Write(ctx, io.Discard, s, opts); err == nil || !strings.Contains(err.Error(), "upstream checksum") {
		t.Fatalf("upstream mismatch: %v", err)
	}
	// Unsafe path.
	s = memSnapshot(map[string][]byte{"../evil": []byte("x")})
	if _, err := Write(ctx, io.Discard, s, opts); err == nil || !strings.Contains(err.Error(), `".." element`) {
		t.Fatalf("unsafe path: %v", err)
	}
	// Open failure names the file.
	s = memSnapshot(map[string][]byte{"config.json": []byte("x")})
	s.Files[0].Open = func(context.Context) (io.ReadCloser, error) { return nil, errors.New("boom") }
	if _, err := Write(ctx, io.Discard, s, opts); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("open failure: %v", err)
	}
	// No key.
	if _, err := Write(ctx, io.Discard, memSnapshot(nil), Options{Name: "x"}); err == nil {
		t.Fatal("unsigned bundle written")
	}
	// Cancelled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Write(cctx, io.Discard, memSnapshot(map[string][]byte{"model.safetensors": weightLike(4<<20, 1)}), opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestWriteFileLeavesNothingOnFailure(t *testing.T) {
	_, priv := testKey(t)
	dir := t.TempDir()
	s := memSnapshot(map[string][]byte{"config.json": []byte("12345")})
	s.Files[0].Entry.Size = 10
	if _, err := WriteFile(context.Background(), filepath.Join(dir, "b.tar.zst"), s, Options{Signer: priv, Name: "x"}); err == nil {
		t.Fatal("expected failure")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("failed write left %v", ents)
	}
}
