package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/airlock-dev/airlock/internal/signing/signingtest"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/airlock-dev/airlock/bundle"
	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source/local"
)

var fixedTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type keys struct {
	pub  signing.PublicKey
	priv *signing.PrivateKey
}

func newKeys(t testing.TB) keys {
	t.Helper()
	k := signingtest.NewKeyPair(t)
	return keys{k.Pub, k.Priv}
}

// modelDir writes a small model directory and returns it.
func modelDir(t testing.TB) string {
	dir := t.TempDir()
	files := map[string]string{
		"config.json":             `{"hidden_size": 64}`,
		"tokenizer.json":          strings.Repeat(`{"vocab": "abc"}`, 100),
		"model.safetensors":       strings.Repeat("\x12\x3c\x99\xbb", 300000),
		"sub/extra.txt":           "extra",
		"bin/linux-amd64/airlock": "\x7fELF",
	}
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// makeBundle bundles modelDir into a file and returns its path and bytes.
func makeBundle(t testing.TB, k keys) (string, []byte) {
	t.Helper()
	src := modelDir(t)
	snap, err := local.Dir{Root: src, Name: "tiny"}.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range snap.Files {
		if snap.Files[i].Entry.Role == manifests.RoleRuntime {
			snap.Files[i].Entry.Platform = "linux/amd64"
		}
	}
	out := filepath.Join(t.TempDir(), "tiny.tar.zst")
	if _, err := bundle.WriteFile(context.Background(), out, snap, bundle.Options{
		Signer: k.priv, Name: "tiny", CreatedAt: fixedTime, ToolVersion: "test",
	}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, b
}

// entry is one raw tar entry of a crafted bundle.
type entry struct {
	name     string
	data     []byte
	typeflag byte
	size     int64 // header size when not len(data)
	linkname string
	cut      bool // stop the archive right after this entry's header
}

// craft builds a bundle from raw entries after the manifest, signing the
// given manifest bytes, so tests can produce validly signed but malformed
// archives.
func craft(t testing.TB, k keys, manifest []byte, sig []byte, entries []entry, trailer []byte) []byte {
	t.Helper()
	if sig == nil {
		var err error
		sig, err = signing.Sign(*k.priv, manifest, "timestamp:0", "test")
		if err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	enc, _ := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedFastest))
	tw := tar.NewWriter(enc)
	all := append([]entry{{name: manifests.ManifestPath, data: manifest}, {name: manifests.SignaturePath, data: sig}}, entries...)
	if sig != nil && len(sig) == 0 { // "no signature entry"
		all = append(all[:1], entries...)
	}
	for _, e := range all {
		tf := e.typeflag
		if tf == 0 {
			tf = tar.TypeReg
		}
		size := int64(len(e.data))
		if e.size != 0 {
			size = e.size
		}
		if tf != tar.TypeReg {
			size = 0
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tf, Size: size, Mode: 0o644, Linkname: e.linkname, ModTime: fixedTime}); err != nil {
			t.Fatal(err)
		}
		if e.cut {
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			return out.Bytes()
		}
		if tf == tar.TypeReg {
			data := e.data
			if int64(len(data)) > size {
				data = data[:size]
			}
			if _, err := tw.Write(data); err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
				t.Fatal(err)
			}
			if int64(len(data)) < size { // let tar pad with zeros: a lying header
				_, _ = tw.Write(make([]byte, size-int64(len(data))))
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(trailer); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// manifestFor returns a valid manifest (bytes) for the given files.
func manifestFor(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	m := &manifests.Manifest{
		FormatVersion: manifests.FormatVersion, Name: "crafted", CreatedAt: fixedTime,
		Source: manifests.Source{Kind: "local", ID: "x"}, Tool: manifests.Tool{Name: "airlock", Version: "test"},
	}
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		sum := sha256.Sum256(files[p])
		m.Files = append(m.Files, manifests.File{Path: p, Size: int64(len(files[p])), SHA256: hex.EncodeToString(sum[:]), Role: manifests.RoleExtra})
	}
	b, err := manifests.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// extractBytes runs Extract on data and checks that a failure leaves the
// parent directory exactly as it was.
func extractBytes(t *testing.T, k keys, data []byte, opts Options) (string, error) {
	t.Helper()
	work := t.TempDir()
	path := filepath.Join(work, "b.tar.zst")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "out", "model")
	_, err := extractPath(path, k.pub, out, opts)
	if err != nil {
		assertNoLeftovers(t, filepath.Join(work, "out"), nil)
	}
	return out, err
}

func extractPath(path string, pub signing.PublicKey, out string, opts Options) (*manifests.Manifest, error) {
	return Extract(context.Background(), path, pub, out, opts)
}

// assertNoLeftovers checks dir holds exactly want (names), no staging.
func assertNoLeftovers(t *testing.T, dir string, want []string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s holds %v after a failure, want %v", dir, got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	k := newKeys(t)
	path, _ := makeBundle(t, k)
	out := filepath.Join(t.TempDir(), "model")
	m, err := Extract(context.Background(), path, k.pub, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 5 {
		t.Fatalf("%d files", len(m.Files))
	}
	got, _ := os.ReadFile(filepath.Join(out, "sub/extra.txt"))
	if string(got) != "extra" {
		t.Fatalf("content %q", got)
	}
	if st, _ := os.Stat(filepath.Join(out, "bin/linux-amd64/airlock")); st.Mode().Perm() != 0o755 {
		t.Fatalf("runtime mode %v", st.Mode())
	}
	if st, _ := os.Stat(filepath.Join(out, "config.json")); st.Mode().Perm() != 0o644 {
		t.Fatalf("config mode %v", st.Mode())
	}
	rep, err := CheckDir(out, k.pub, DirOptions{FullHashes: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Files != 5 || rep.Name != "tiny" || rep.SignerKey != signing.KeyID(k.priv.ID()) {
		t.Fatalf("report %+v", rep)
	}
	assertNoLeftovers(t, filepath.Dir(out), []string{"model"})
}

func TestRefusesWrongKey(t *testing.T) {
	k := newKeys(t)
	_, data := makeBundle(t, k)
	other := newKeys(t)
	_, err := extractBytes(t, other, data, Options{})
	var wk *signing.WrongKeyError
	if !errors.As(err, &wk) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestRefusesBadSignatures(t *testing.T) {
	k := newKeys(t)
	files := map[string][]byte{"a.txt": []byte("hello")}
	man := manifestFor(t, files)
	otherMan := manifestFor(t, map[string][]byte{"a.txt": []byte("other")})
	otherSig, _ := signing.Sign(*k.priv, otherMan, "timestamp:0", "test")
	goodSig, _ := signing.Sign(*k.priv, man, "timestamp:0", "test")
	tampered := bytes.Replace(man, []byte(`"crafted"`), []byte(`"crafteD"`), 1)
	body := []entry{{name: "a.txt", data: files["a.txt"]}}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"missing signature":    {craft(t, k, man, []byte{}, body, nil), "first entries must be"},
		"malformed signature":  {craft(t, k, man, []byte("untrusted comment: x\nnot base64!\n"), body, nil), "malformed signature"},
		"mismatched signature": {craft(t, k, man, otherSig, body, nil), "signature does not match"},
		"tampered manifest":    {craft(t, k, tampered, goodSig, body, nil), "signature does not match"},
		"forged comment":       {craft(t, k, man, bytes.Replace(goodSig, []byte("timestamp:0"), []byte("timestamp:9"), 1), body, nil), "trusted comment"},
		"empty file":           {nil, "corrupt or truncated"},
		"not zstd":             {[]byte("hello world, not a bundle"), "corrupt or truncated"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := extractBytes(t, k, c.data, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestRefusesMalformedArchives(t *testing.T) {
	k := newKeys(t)
	files := map[string][]byte{"a.txt": []byte("hello"), "b.txt": []byte("world")}
	man := manifestFor(t, files)
	a := entry{name: "a.txt", data: files["a.txt"]}
	b := entry{name: "b.txt", data: files["b.txt"]}
	flipped := entry{name: "b.txt", data: []byte("worle")}
	bigZeros := manifestFor(t, map[string][]byte{"a.txt": make([]byte, 10)})
	cases := map[string]struct {
		data []byte
		want string
	}{
		"ok control":       {craft(t, k, man, nil, []entry{a, b}, nil), ""},
		"missing entry":    {craft(t, k, man, nil, []entry{a}, nil), "b.txt: missing from the bundle"},
		"duplicated entry": {craft(t, k, man, nil, []entry{a, a, b}, nil), "a.txt: entry appears twice"},
		"duplicate at end": {craft(t, k, man, nil, []entry{a, b, b}, nil), "b.txt: entry appears twice"},
		"reordered":        {craft(t, k, man, nil, []entry{b, a}, nil), "b.txt: entry out of order"},
		"not in manifest":  {craft(t, k, man, nil, []entry{a, {name: "c.txt", data: []byte("x")}, b}, nil), "c.txt: entry is not in the signed manifest"},
		"extra at end":     {craft(t, k, man, nil, []entry{a, b, {name: "c.txt", data: []byte("x")}}, nil), "c.txt: entry is not in the signed manifest"},
		"flipped byte":     {craft(t, k, man, nil, []entry{a, flipped}, nil), "b.txt: sha256"},
		"absolute path":    {craft(t, k, man, nil, []entry{{name: "/etc/passwd", data: []byte("x")}}, nil), "absolute path"},
		"dotdot":           {craft(t, k, man, nil, []entry{{name: "../../evil", data: []byte("x")}}, nil), `".." element`},
		"symlink":          {craft(t, k, man, nil, []entry{{name: "a.txt", typeflag: tar.TypeSymlink, linkname: "/etc/passwd"}}, nil), "symlinks are not allowed"},
		"hardlink":         {craft(t, k, man, nil, []entry{{name: "a.txt", typeflag: tar.TypeLink, linkname: "b.txt"}}, nil), "hard links are not allowed"},
		"char device":      {craft(t, k, man, nil, []entry{{name: "a.txt", typeflag: tar.TypeChar}}, nil), "devices"},
		"block device":     {craft(t, k, man, nil, []entry{{name: "a.txt", typeflag: tar.TypeBlock}}, nil), "devices"},
		"fifo":             {craft(t, k, man, nil, []entry{{name: "a.txt", typeflag: tar.TypeFifo}}, nil), "FIFOs"},
		"directory":        {craft(t, k, man, nil, []entry{{name: "a.txt", typeflag: tar.TypeDir}}, nil), "directory entries"},
		"size mismatch":    {craft(t, k, man, nil, []entry{{name: "a.txt", data: []byte("hello!"), size: 6}, b}, nil), "declares 6 bytes, the signed manifest says 5"},
		"bomb entry":       {craft(t, k, bigZeros, nil, []entry{{name: "a.txt", data: nil, size: 1 << 30, cut: true}}, nil), "declares 1073741824 bytes, the signed manifest says 10"},
		"bomb trailer":     {craft(t, k, man, nil, []entry{a, b}, make([]byte, 8<<20)), "data after the end"},
		"garbage trailer":  {craft(t, k, man, nil, []entry{a, b}, []byte("appended")), "data after the end"},
		"manifest twice":   {craft(t, k, man, nil, []entry{{name: manifests.ManifestPath, data: man}, a, b}, nil), "appears twice"},
		"huge manifest":    {craft(t, k, bytes.Repeat([]byte(" "), manifests.MaxManifestSize+1), nil, nil, nil), "above the"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := extractBytes(t, k, c.data, Options{})
			if c.want == "" {
				if err != nil {
					t.Fatalf("control bundle refused: %v", err)
				}
				if _, err := CheckDir(out, k.pub, DirOptions{FullHashes: true}); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestRefusesEveryFlippedByteAndTruncation(t *testing.T) {
	k := newKeys(t)
	_, data := makeBundle(t, k)
	goodDir, err := extractBytes(t, k, data, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	want := treeContents(t, goodDir)
	// A flip inside a compressed block can leave the decoded bytes
	// unchanged (another match offset into a periodic pattern); then every
	// installed byte is still the signed content, which is what matters.
	// Any flip that changes a decoded byte must be refused.
	step := max(1, len(data)/97)
	for off := 0; off < len(data); off += step {
		bad := append([]byte(nil), data...)
		bad[off] ^= 0x20
		out, err := extractBytes(t, k, bad, Options{NoSync: true})
		if err == nil && treeContents(t, out) != want {
			t.Fatalf("flipped byte at offset %d of %d installed different content", off, len(data))
		}
	}
	for _, n := range []int{0, 10, 100, len(data) / 3, len(data) / 2, len(data) - 100, len(data) - 1} {
		_, err := extractBytes(t, k, data[:n], Options{})
		if err == nil {
			t.Fatalf("bundle truncated to %d of %d bytes accepted", n, len(data))
		}
	}
}

func TestExistingDestination(t *testing.T) {
	k := newKeys(t)
	path, data := makeBundle(t, k)
	work := t.TempDir()
	out := filepath.Join(work, "model")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "old.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(context.Background(), path, k.pub, out, Options{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("existing dir: %v", err)
	}
	// --force with a bad bundle leaves the old content untouched.
	bad := append([]byte(nil), data...)
	bad[len(bad)-200] ^= 1
	badPath := filepath.Join(t.TempDir(), "bad.tar.zst")
	_ = os.WriteFile(badPath, bad, 0o644)
	if _, err := Extract(context.Background(), badPath, k.pub, out, Options{Force: true}); err == nil {
		t.Fatal("bad bundle accepted")
	}
	if b, _ := os.ReadFile(filepath.Join(out, "old.txt")); string(b) != "old" {
		t.Fatal("failed --force touched the destination")
	}
	assertNoLeftovers(t, work, []string{"model"})
	// --force with a good bundle replaces it completely.
	if _, err := Extract(context.Background(), path, k.pub, out, Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "old.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("old content survived --force")
	}
	if _, err := CheckDir(out, k.pub, DirOptions{FullHashes: true}); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, work, []string{"model"})
}

// failingWriter accepts limit bytes, then reports a full disk.
type failingWriter struct {
	f     *os.File
	limit *int64
}

func (w failingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > *w.limit {
		return 0, &os.PathError{Op: "write", Path: w.f.Name(), Err: syscall.ENOSPC}
	}
	*w.limit -= int64(len(p))
	return w.f.Write(p)
}
func (w failingWriter) Close() error { return w.f.Close() }

func TestFullDisk(t *testing.T) {
	k := newKeys(t)
	_, data := makeBundle(t, k)
	for _, budget := range []int64{0, 1000, 600000} {
		limit := budget
		opts := Options{create: func(name string, mode os.FileMode) (io.WriteCloser, error) {
			f, err := createFile(name, mode)
			if err != nil {
				return nil, err
			}
			return failingWriter{f.(*os.File), &limit}, nil
		}}
		_, err := extractBytes(t, k, data, opts)
		if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left") {
			t.Fatalf("budget %d: err = %v", budget, err)
		}
	}
	// The up-front space check refuses a bundle that cannot fit.
	if err := checkSpace(t.TempDir(), 1<<62); err == nil || !strings.Contains(err.Error(), "not enough space") {
		t.Fatalf("space check: %v", err)
	}
}

func TestCheckDirReportsByName(t *testing.T) {
	k := newKeys(t)
	path, _ := makeBundle(t, k)
	out := filepath.Join(t.TempDir(), "model")
	if _, err := Extract(context.Background(), path, k.pub, out, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	// Same-size modification: only a full hash finds it.
	cfg := filepath.Join(out, "config.json")
	b, _ := os.ReadFile(cfg)
	b[3] ^= 1
	_ = os.WriteFile(cfg, b, 0o644)
	if _, err := CheckDir(out, k.pub, DirOptions{}); err != nil {
		t.Fatalf("quick check should pass a same-size change: %v", err)
	}
	rep, err := CheckDir(out, k.pub, DirOptions{FullHashes: true})
	if err == nil || len(rep.Modified) != 1 || rep.Modified[0].Path != "config.json" {
		t.Fatalf("full check: %v %+v", err, rep)
	}
	// Size change, missing, unexpected file and directory, symlink.
	_ = os.WriteFile(filepath.Join(out, "tokenizer.json"), []byte("short"), 0o644)
	_ = os.Remove(filepath.Join(out, "sub/extra.txt"))
	_ = os.WriteFile(filepath.Join(out, "planted.py"), []byte("import os"), 0o644)
	_ = os.Mkdir(filepath.Join(out, "newdir"), 0o755)
	_ = os.Remove(filepath.Join(out, "model.safetensors"))
	_ = os.Symlink("/etc/passwd", filepath.Join(out, "model.safetensors"))
	_ = os.WriteFile(filepath.Join(out, ".airlock", "notes"), []byte("ignored"), 0o644)
	rep, err = CheckDir(out, k.pub, DirOptions{})
	if err == nil {
		t.Fatal("modified directory accepted")
	}
	for _, want := range []string{"sub/extra.txt: missing", "tokenizer.json: modified (size 5", "model.safetensors: modified (not a regular file",
		"planted.py: unexpected", "newdir/: unexpected"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "notes") {
		t.Error(".airlock contents were reported")
	}
	if fmt.Sprint(rep.Missing) != "[sub/extra.txt]" || fmt.Sprint(rep.Unexpected) != "[newdir/ planted.py]" {
		t.Fatalf("report %+v", rep)
	}

	// A tampered installed manifest, a wrong key, or no manifest at all.
	if _, err := CheckDir(out, newKeys(t).pub, DirOptions{}); err == nil || rep == nil {
		t.Fatal("wrong key accepted")
	}
	mp := filepath.Join(out, filepath.FromSlash(manifests.ManifestPath))
	mb, _ := os.ReadFile(mp)
	_ = os.WriteFile(mp, bytes.Replace(mb, []byte(`"tiny"`), []byte(`"tinY"`), 1), 0o644)
	if _, err := CheckDir(out, k.pub, DirOptions{}); err == nil || !strings.Contains(err.Error(), "signature does not match") {
		t.Fatalf("tampered manifest: %v", err)
	}
	if _, err := CheckDir(t.TempDir(), k.pub, DirOptions{}); err == nil || !strings.Contains(err.Error(), "not a verified airlock directory") {
		t.Fatalf("plain dir: %v", err)
	}
}

// treeContents returns every file under dir with its bytes, as one string.
func treeContents(t *testing.T, dir string) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&sb, "%s\x00%x\x00", rel, sha256.Sum256(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func TestDetachedSignature(t *testing.T) {
	k := newKeys(t)
	path, data := makeBundle(t, k)
	s, err := Detached(path, k.pub)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.TrustedComment, "file:tiny.tar.zst") {
		t.Fatalf("trusted comment %q", s.TrustedComment)
	}
	if _, err := Detached(path, newKeys(t).pub); err == nil {
		t.Fatal("wrong key accepted")
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Detached(path, k.pub); !errors.Is(err, signing.ErrBadSignature) {
		t.Fatalf("modified bundle: %v", err)
	}
	_ = os.Remove(path + ".minisig")
	if _, err := Detached(path, k.pub); err == nil {
		t.Fatal("missing detached signature accepted")
	}
}

func TestCancelledExtractLeavesNothing(t *testing.T) {
	k := newKeys(t)
	path, _ := makeBundle(t, k)
	work := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Extract(ctx, path, k.pub, filepath.Join(work, "model"), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled extract: %v", err)
	}
	assertNoLeftovers(t, work, nil)
}
