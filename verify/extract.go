// Package verify checks airlock bundles and installed model directories
// against a trusted minisign public key.
//
// Extract verifies the manifest's signature before anything else, then
// streams the bundle, checking every file's size and sha256 against the
// signed manifest while writing into a staging directory beside the
// destination; the destination appears (or is replaced) in one rename only
// when everything verified. CheckDir re-checks an installed directory.
package verify

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	sha256simd "github.com/minio/sha256-simd"

	"github.com/airlock-dev/airlock/bundle"
	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/manifests"
)

// Options configure Extract.
type Options struct {
	// Force replaces an existing destination. The swap is atomic where the
	// OS allows (Linux renameat2); a failed verification never touches it.
	Force bool
	// Progress, when set, receives a progress bar or JSON progress lines.
	Progress io.Writer
	// NoSync skips flushing the extracted files to disk before the final
	// rename. Faster; a power loss right after may leave damaged files that
	// CheckDir with FullHashes then reports.
	NoSync bool

	// create, when set, opens every staging file for writing instead of
	// openOutput (tests inject failures).
	create func(name string, mode os.FileMode) (io.WriteCloser, error)
}

// chunkSize is the unit read and hashed at a time by CheckDir.
const chunkSize = 1 << 20

// extractChunk is the unit decompressed, hashed and written at a time by
// Extract: a multiple of directAlign, so that every chunk but a file's last
// is a whole number of blocks for O_DIRECT.
const extractChunk = 4 << 20

// extractBufs is the number of chunks in flight between decompression,
// hashing and writing.
const extractBufs = 4

// Extract verifies the bundle at bundlePath with pub and installs its files
// into outDir, with the signed manifest and its signature under
// outDir/.airlock/. On any error nothing is left behind: no staging
// directory, and outDir is as it was. Errors name the file and the reason.
func Extract(ctx context.Context, bundlePath string, pub signing.PublicKey, outDir string, opts Options) (*manifests.Manifest, error) {
	f, err := os.Open(bundlePath)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	m, err := extract(ctx, f, pub, outDir, opts)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", bundlePath, err)
	}
	return m, nil
}

// ReadVerifiedHeader reads a bundle's manifest and signature and checks the
// signature against pub before parsing the manifest.
func ReadVerifiedHeader(r *bundle.Reader, pub signing.PublicKey) (*manifests.Manifest, []byte, []byte, error) {
	body, sig, err := r.ReadHeader()
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := signing.Verify(pub, body, sig); err != nil {
		return nil, nil, nil, fmt.Errorf("manifest signature: %w", err)
	}
	m, err := manifests.Parse(body)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("signed manifest: %w", err)
	}
	return m, body, sig, nil
}

func extract(ctx context.Context, src io.Reader, pub signing.PublicKey, outDir string, opts Options) (*manifests.Manifest, error) {
	outDir = filepath.Clean(outDir)
	if _, err := os.Lstat(outDir); err == nil && !opts.Force {
		return nil, fmt.Errorf("destination %s already exists (use --force to replace it)", outDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("destination: %w", err)
	}

	r, err := bundle.NewReader(src)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m, body, sig, err := ReadVerifiedHeader(r, pub)
	if err != nil {
		return nil, err
	}

	parent := filepath.Dir(outDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	if err := checkSpace(parent, m.TotalSize()); err != nil {
		return nil, err
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(outDir)+".staging-")
	if err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	installed := false
	defer func() {
		if !installed {
			_ = os.RemoveAll(staging)
		}
	}()
	if err := os.Chmod(staging, 0o755); err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}

	var bar *progress.Bar
	if opts.Progress != nil {
		bar = progress.New(opts.Progress, "verify "+m.Name, m.TotalSize())
	}
	err = extractFiles(ctx, r, m, staging, opts, bar)
	if err == nil {
		err = r.Finish()
	}
	if err == nil {
		err = writeMeta(staging, body, sig, opts)
	}
	if err == nil && !opts.NoSync {
		err = syncTree(staging)
	}
	if bar != nil {
		bar.Finish(err)
	}
	if err != nil {
		return nil, err
	}
	if err := install(staging, outDir, opts.Force); err != nil {
		return nil, err
	}
	installed = true
	return m, nil
}

// extractFiles reads the entries in manifest order, refusing anything
// missing, extra, duplicated or reordered.
func extractFiles(ctx context.Context, r *bundle.Reader, m *manifests.Manifest, staging string, opts Options, bar *progress.Bar) error {
	index := make(map[string]int, len(m.Files))
	for i, f := range m.Files {
		index[f.Path] = i
	}
	bufs := make([][]byte, extractBufs)
	for i := range bufs {
		bufs[i] = alignedBuf(extractChunk)
	}
	made := map[string]bool{}
	for i := range m.Files {
		want := &m.Files[i]
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: missing from the bundle (archive ends after %d of %d files)", want.Path, i, len(m.Files))
		}
		if err != nil {
			return err
		}
		if h.Name != want.Path {
			j, listed := index[h.Name]
			switch {
			case !listed:
				return fmt.Errorf("%s: entry is not in the signed manifest", h.Name)
			case j < i:
				return fmt.Errorf("%s: entry appears twice", h.Name)
			default:
				return fmt.Errorf("%s: entry out of order (expected %s first)", h.Name, want.Path)
			}
		}
		if h.Size != want.Size {
			return fmt.Errorf("%s: entry declares %d bytes, the signed manifest says %d", want.Path, h.Size, want.Size)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if dir := path.Dir(want.Path); dir != "." && !made[dir] {
			if err := os.MkdirAll(filepath.Join(staging, filepath.FromSlash(dir)), 0o755); err != nil {
				return fmt.Errorf("%s: %w", want.Path, err)
			}
			made[dir] = true
		}
		if err := extractOne(ctx, r, want, staging, opts, bufs, bar); err != nil {
			return fmt.Errorf("%s: %w", want.Path, err)
		}
	}
	h, err := r.Next()
	if err == nil {
		if _, listed := index[h.Name]; listed {
			return fmt.Errorf("%s: entry appears twice", h.Name)
		}
		return fmt.Errorf("%s: entry is not in the signed manifest", h.Name)
	}
	if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// extractOne copies one entry into the staging directory. The calling
// goroutine decompresses into a ring of buffers while one goroutine hashes
// and another writes them, each in order, so that decompression, hashing
// and the (possibly direct, synchronous) writes overlap; a buffer is reused
// only once it has been both hashed and written.
func extractOne(ctx context.Context, r io.Reader, want *manifests.File, staging string, opts Options, bufs [][]byte, bar *progress.Bar) error {
	mode := os.FileMode(0o644)
	if want.Role == manifests.RoleRuntime {
		mode = 0o755
	}
	name := filepath.Join(staging, filepath.FromSlash(want.Path))
	var (
		w   io.WriteCloser
		err error
	)
	if opts.create != nil {
		w, err = opts.create(name, mode)
	} else {
		w, err = openOutput(name, mode, want.Size)
	}
	if err != nil {
		return err
	}
	h := sha256simd.New()
	toHash := make(chan []byte, len(bufs))
	toWrite := make(chan []byte, len(bufs))
	hashed := make(chan struct{}, len(bufs))
	written := make(chan error, len(bufs))
	go func() {
		for p := range toHash {
			h.Write(p)
			hashed <- struct{}{}
		}
	}()
	go func() {
		var werr error
		for p := range toWrite {
			if werr == nil {
				if _, werr = w.Write(p); werr != nil {
					werr = fmt.Errorf("write: %w", werr)
					written <- werr
					continue
				}
			}
			written <- nil
		}
	}()
	// wait reclaims the oldest buffer in flight.
	inFlight := 0
	wait := func() error {
		<-hashed
		err := <-written
		inFlight--
		return err
	}
	remaining := want.Size
	for n := 0; remaining > 0 && err == nil; n++ {
		if inFlight == len(bufs) {
			if err = wait(); err != nil {
				break
			}
		}
		if err = ctx.Err(); err != nil {
			break
		}
		buf := bufs[n%len(bufs)]
		buf = buf[:min(int64(len(buf)), remaining)]
		k, rerr := io.ReadFull(r, buf)
		remaining -= int64(k)
		if rerr != nil {
			if errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF) {
				rerr = fmt.Errorf("%w: entry data ends early", bundle.ErrCorrupt)
			}
			err = rerr
			break
		}
		toHash <- buf
		toWrite <- buf
		inFlight++
		if bar != nil {
			bar.Add(int64(len(buf)))
		}
	}
	close(toHash)
	close(toWrite)
	for inFlight > 0 {
		if werr := wait(); err == nil {
			err = werr
		}
	}
	if cerr := w.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write: %w", cerr)
	}
	if err != nil {
		return err
	}
	got := h.Sum(nil)
	want256, _ := hex.DecodeString(want.SHA256)
	if subtle.ConstantTimeCompare(got, want256) != 1 {
		return fmt.Errorf("sha256 %s does not match the signed manifest's %s (file modified or corrupt)", hex.EncodeToString(got), want.SHA256)
	}
	return nil
}

func createFile(name string, mode os.FileMode) (io.WriteCloser, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, mode)
	if err != nil {
		return nil, err
	}
	// The umask must not change what the manifest's role implies.
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// writeMeta stores the signed manifest and its signature as they came in
// the bundle.
func writeMeta(staging string, body, sig []byte, opts Options) error {
	dir := filepath.Join(staging, manifests.MetaDir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", manifests.MetaDir, err)
	}
	create := opts.create
	if create == nil {
		create = createFile
	}
	for name, data := range map[string][]byte{manifests.ManifestPath: body, manifests.SignaturePath: sig} {
		w, err := create(filepath.Join(staging, filepath.FromSlash(name)), 0o644)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		_, err = w.Write(data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: write: %w", name, err)
		}
	}
	return nil
}

// syncTree flushes every file and directory under root to stable storage,
// so that the rename that follows publishes complete files.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("sync %s: %w", strings.TrimPrefix(p, root), err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", strings.TrimPrefix(p, root), err)
		}
		return nil
	})
}
