//go:build linux

package verify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// setHooks replaces the O_DIRECT threshold and hooks for one test.
func setHooks(t *testing.T, min int64, enable func(*os.File) error, write func(*os.File, []byte) (int, error)) {
	t.Helper()
	oldMin, oldEnable, oldWrite := directMin, enableDirect, writeDirect
	t.Cleanup(func() { directMin, enableDirect, writeDirect = oldMin, oldEnable, oldWrite })
	directMin = min
	if enable != nil {
		enableDirect = enable
	}
	if write != nil {
		writeDirect = write
	}
}

// pattern returns n deterministic, non-repeating-per-block bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func fileFlags(t *testing.T, f *os.File) int {
	t.Helper()
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

// TestDirectWriteSizes writes sizes around block and chunk boundaries the
// way extractOne does (whole chunks from aligned buffers, then the tail)
// and checks content, mode, and that O_DIRECT was in effect.
func TestDirectWriteSizes(t *testing.T) {
	setHooks(t, 0, nil, nil)
	const mib64 = 64 << 20
	big := pattern(mib64 + 1)
	buf := alignedBuf(extractChunk)
	if !aligned(buf) {
		t.Fatal("alignedBuf is not aligned")
	}
	dir := t.TempDir()
	for _, size := range []int{0, 1, 4095, 4096, 4097, extractChunk - 1, extractChunk, extractChunk + 1, mib64 - 1, mib64, mib64 + 1} {
		name := filepath.Join(dir, fmt.Sprint(size))
		w, err := openOutput(name, 0o644, int64(size))
		if err != nil {
			t.Fatal(err)
		}
		d, ok := w.(*directFile)
		if !ok {
			t.Fatalf("size %d: got %T, want *directFile", size, w)
		}
		if fileFlags(t, d.f)&unix.O_DIRECT == 0 {
			t.Fatalf("size %d: O_DIRECT not set", size)
		}
		directWrites := 0
		for off := 0; off < size; {
			n := copy(buf, big[off:size])
			if d.direct {
				directWrites++
			}
			if k, err := w.Write(buf[:n]); err != nil || k != n {
				t.Fatalf("size %d: write at %d: %d, %v", size, off, k, err)
			}
			off += n
		}
		if want := size / extractChunk; size%extractChunk == 0 && directWrites != want || size%extractChunk != 0 && directWrites != want+1 {
			t.Fatalf("size %d: %d writes started direct", size, directWrites)
		}
		if size%directAlign != 0 && (d.direct || fileFlags(t, d.f)&unix.O_DIRECT != 0) {
			t.Fatalf("size %d: O_DIRECT still set after an unaligned tail", size)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, big[:size]) {
			t.Fatalf("size %d: content differs (%d bytes read)", size, len(got))
		}
		if st, _ := os.Stat(name); st.Mode().Perm() != 0o644 {
			t.Fatalf("size %d: mode %v", size, st.Mode())
		}
	}
	// An unaligned buffer or offset falls back to buffered writes.
	name := filepath.Join(dir, "unaligned")
	w, err := openOutput(name, 0o644, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(buf[1 : 1+8192]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(buf[:4096]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); !bytes.Equal(got, append(append([]byte(nil), buf[1:1+8192]...), buf[:4096]...)) {
		t.Fatal("unaligned writes: content differs")
	}
	// Existing names are refused, as with createFile.
	if _, err := openOutput(name, 0o644, 1<<20); !errors.Is(err, os.ErrExist) {
		t.Fatalf("existing file: %v", err)
	}
	if err := os.Symlink(name, name+".link"); err != nil {
		t.Fatal(err)
	}
	if _, err := openOutput(name+".link", 0o644, 1<<20); err == nil {
		t.Fatal("symlink followed")
	}
}

// directBundle crafts a signed bundle whose files straddle block and chunk
// boundaries.
func directBundle(t *testing.T, k keys) []byte {
	files := map[string][]byte{}
	var entries []entry
	for _, size := range []int{0, 1, 4095, 4096, 4097, extractChunk - 1, extractChunk + 1, 2*extractChunk + 4096} {
		files[fmt.Sprintf("f%08d", size)] = pattern(size)
	}
	manifest := manifestFor(t, files)
	for _, name := range sortedKeys(files) {
		entries = append(entries, entry{name: name, data: files[name]})
	}
	return craft(t, k, manifest, nil, entries, nil)
}

func sortedKeys(m map[string][]byte) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func checkExtracted(t *testing.T, k keys, out string) {
	t.Helper()
	rep, err := CheckDir(out, k.pub, DirOptions{FullHashes: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Files != 8 {
		t.Fatalf("report %+v", rep)
	}
}

// TestExtractDirect extracts through the O_DIRECT path, with and without
// sync, and through both fallbacks: a file system that refuses O_DIRECT on
// the open file, and one that accepts it but rejects the writes.
func TestExtractDirect(t *testing.T) {
	k := newKeys(t)
	data := directBundle(t, k)
	refuse := func(*os.File) error { return &os.PathError{Op: "fcntl", Err: syscall.EINVAL} }
	for _, tc := range []struct {
		name   string
		enable func(*os.File) error
		write  bool // direct writes fail with EINVAL
		noSync bool
	}{
		{name: "direct"},
		{name: "direct-nosync", noSync: true},
		{name: "refused-at-open", enable: refuse},
		{name: "refused-at-write", write: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var direct, refused int
			setHooks(t, 1, tc.enable, func(f *os.File, p []byte) (int, error) {
				if fileFlags(t, f)&unix.O_DIRECT == 0 {
					t.Error("direct write without O_DIRECT")
				}
				if tc.write {
					refused++
					return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.EINVAL}
				}
				direct++
				return f.Write(p)
			})
			out, err := extractBytes(t, k, data, Options{NoSync: tc.noSync})
			if err != nil {
				t.Fatal(err)
			}
			checkExtracted(t, k, out)
			switch {
			case tc.enable != nil && direct+refused != 0:
				t.Fatalf("%d direct writes although O_DIRECT was refused", direct+refused)
			case tc.write && (direct != 0 || refused == 0):
				t.Fatalf("%d direct, %d refused writes", direct, refused)
			case tc.enable == nil && !tc.write && direct == 0:
				t.Fatal("no direct writes")
			}
		})
	}
}

// TestExtractDirectFailures checks that errors from direct writes fail the
// extraction cleanly, and that tampered content is still refused.
func TestExtractDirectFailures(t *testing.T) {
	k := newKeys(t)
	data := directBundle(t, k)
	setHooks(t, 1, nil, func(f *os.File, p []byte) (int, error) {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	})
	if _, err := extractBytes(t, k, data, Options{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("full disk: %v", err)
	}

	setHooks(t, 1, nil, nil)
	i := bytes.Index(data, pattern(2*extractChunk + 4096)[:64])
	if i < 0 {
		t.Skip("content not stored verbatim")
	}
	bad := bytes.Clone(data)
	bad[i+extractChunk+7] ^= 1
	if _, err := extractBytes(t, k, bad, Options{}); err == nil {
		t.Fatalf("tampered content: %v", err)
	}
	if _, err := extractBytes(t, k, bad[:i+extractChunk], Options{}); err == nil {
		t.Fatal("truncated bundle accepted")
	}
}

// TestDirectUsedAboveThreshold checks that Extract only switches to
// O_DIRECT from directMin bytes up.
func TestDirectUsedAboveThreshold(t *testing.T) {
	k := newKeys(t)
	data := directBundle(t, k)
	var sizes []int
	setHooks(t, extractChunk, nil, func(f *os.File, p []byte) (int, error) {
		st, _ := f.Stat()
		if st != nil && st.Size() == 0 {
			sizes = append(sizes, len(p))
		}
		return f.Write(p)
	})
	out, err := extractBytes(t, k, data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkExtracted(t, k, out)
	// Two files reach the threshold; each starts with a whole chunk.
	if len(sizes) != 2 || sizes[0] != extractChunk || sizes[1] != extractChunk {
		t.Fatalf("first direct writes %v", sizes)
	}
}
