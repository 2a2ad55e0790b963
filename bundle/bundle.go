// Package bundle writes and reads airlock bundles: one zstd-compressed tar
// file whose first entry is the signed manifest, the second its minisign
// signature, then every file the manifest lists, in manifest order. The
// format is specified in docs/bundle-format.md.
//
// Writing streams: each source byte is read once, hashed (sha256) on one
// core while it is compressed on others, and memory stays bounded whatever
// the bundle size. The same inputs give a byte-identical bundle.
package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	sha256simd "github.com/minio/sha256-simd"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/internal/version"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
)

// Options configure Write and WriteFile.
type Options struct {
	// Signer signs the manifest (and, in WriteFile, the whole file). Required.
	Signer *signing.PrivateKey
	// Name is the bundle's name; the source id when empty.
	Name string
	// CreatedAt is recorded in the manifest, the tar headers and the
	// signatures' trusted comments; now when zero. Fix it for reproducible
	// bundles.
	CreatedAt time.Time
	// ToolVersion is recorded in the manifest; the running version when empty.
	ToolVersion string
	// Compression is the compression policy; CompressAuto when empty.
	Compression Compression
	// Progress, when set, receives a progress bar (terminal) or JSON
	// progress lines (otherwise).
	Progress io.Writer
	// TempDir holds the spool file Write needs when its writer cannot seek;
	// os.TempDir() when empty.
	TempDir string
}

// chunkSize is the unit read, hashed and compressed at a time.
const chunkSize = 1 << 20

// tarModTime is the modification time of every tar entry.
func (o *Options) createdAt() time.Time {
	if o.CreatedAt.IsZero() {
		return manifests.CreatedAtUTC(time.Now())
	}
	return manifests.CreatedAtUTC(o.CreatedAt)
}

// Write writes a signed bundle of snap to w and returns its manifest. When w
// is an io.WriteSeeker (a file) the bundle is written in place; otherwise it
// is spooled to a temporary file first, because the manifest, which holds
// every file's sha256, comes first in the bundle.
func Write(ctx context.Context, w io.Writer, snap *source.Snapshot, opts Options) (*manifests.Manifest, error) {
	if ws, ok := w.(io.WriteSeeker); ok && isSeekable(ws) {
		return writeSeekable(ctx, ws, snap, opts)
	}
	spool, err := os.CreateTemp(opts.TempDir, "airlock-bundle-spool-*")
	if err != nil {
		return nil, fmt.Errorf("bundle: spool: %w", err)
	}
	defer func() { _ = spool.Close(); _ = os.Remove(spool.Name()) }()
	m, err := writeSeekable(ctx, spool, snap, opts)
	if err != nil {
		return nil, err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("bundle: spool: %w", err)
	}
	if _, err := io.Copy(w, spool); err != nil {
		return nil, fmt.Errorf("bundle: write: %w", err)
	}
	return m, nil
}

func isSeekable(s io.Seeker) bool {
	_, err := s.Seek(0, io.SeekCurrent)
	return err == nil
}

// skeleton builds the manifest from the snapshot, with file hashes to be
// filled in, and checks it.
func skeleton(snap *source.Snapshot, opts *Options) (*manifests.Manifest, []source.File, error) {
	if snap == nil {
		return nil, nil, errors.New("bundle: no snapshot")
	}
	files := append([]source.File(nil), snap.Files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Entry.Path < files[j].Entry.Path })
	name := opts.Name
	if name == "" {
		name = snap.Source.ID
	}
	tool := opts.ToolVersion
	if tool == "" {
		tool = version.String()
	}
	m := &manifests.Manifest{
		FormatVersion: manifests.FormatVersion,
		Name:          name,
		CreatedAt:     opts.createdAt(),
		Source:        snap.Source,
		Tool:          manifests.Tool{Name: "airlock", Version: tool},
		Files:         make([]manifests.File, len(files)),
	}
	for i, f := range files {
		e := f.Entry
		if e.SHA256 != "" && len(e.SHA256) != 64 {
			return nil, nil, fmt.Errorf("bundle: %s: upstream sha256 %q is malformed", e.Path, e.SHA256)
		}
		e.SHA256 = strings.Repeat("0", 64) // placeholder of the final length
		m.Files[i] = e
		if f.Open == nil {
			return nil, nil, fmt.Errorf("bundle: %s: source gives no way to open it", e.Path)
		}
	}
	if err := m.Validate(); err != nil {
		return nil, nil, fmt.Errorf("bundle: %w", err)
	}
	return m, files, nil
}

// header returns the bundle's first frame: the tar entries of the manifest
// and its signature, as one raw zstd frame. Its length does not depend on
// the file hashes, so the writer can reserve space for it.
func header(m *manifests.Manifest, signer *signing.PrivateKey) ([]byte, []byte, error) {
	body, err := manifests.Encode(m)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle: %w", err)
	}
	sig, err := signing.Sign(*signer, body, ManifestTrustedComment(m), signing.UntrustedComment(signer.ID()))
	if err != nil {
		return nil, nil, fmt.Errorf("bundle: sign manifest: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct {
		name string
		data []byte
	}{{manifests.ManifestPath, body}, {manifests.SignaturePath, sig}} {
		if err := tw.WriteHeader(tarHeader(e.name, int64(len(e.data)), 0o644, m.CreatedAt)); err != nil {
			return nil, nil, fmt.Errorf("bundle: %w", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, nil, fmt.Errorf("bundle: %w", err)
		}
	}
	if err := tw.Flush(); err != nil { // pads; no end-of-archive marker
		return nil, nil, fmt.Errorf("bundle: %w", err)
	}
	return rawFrame(buf.Bytes()), body, nil
}

// ManifestTrustedComment is the signed comment on a manifest signature: the
// minisign timestamp, the file name, and the bundle's name and tool version.
func ManifestTrustedComment(m *manifests.Manifest) string {
	return fmt.Sprintf("%s\tfile:manifest.json\thashed\tairlock bundle %s\tairlock %s",
		signing.FormatTimestamp(m.CreatedAt.Unix()), m.Name, m.Tool.Version)
}

// tarHeader is the fixed header of every entry: regular file, owner 0:0, no
// user or group names, the bundle's creation time.
func tarHeader(name string, size int64, mode int64, mtime time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     mode,
		ModTime:  mtime,
		Format:   tar.FormatPAX,
	}
}

// fileMode is the mode recorded (and installed) for a file.
func fileMode(f *manifests.File) int64 {
	if f.Role == manifests.RoleRuntime {
		return 0o755
	}
	return 0o644
}

func writeSeekable(ctx context.Context, w io.WriteSeeker, snap *source.Snapshot, opts Options) (*manifests.Manifest, error) {
	if opts.Signer == nil {
		return nil, errors.New("bundle: no signing key")
	}
	policy, err := ParseCompression(string(opts.Compression))
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	m, files, err := skeleton(snap, &opts)
	if err != nil {
		return nil, err
	}
	placeholder, _, err := header(m, opts.Signer)
	if err != nil {
		return nil, err
	}
	base, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if _, err := w.Seek(base+int64(len(placeholder)), io.SeekStart); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}

	var bar *progress.Bar
	if opts.Progress != nil {
		bar = progress.New(opts.Progress, "bundle "+m.Name, m.TotalSize())
	}
	err = writeBody(ctx, w, m, files, policy, bar)
	if bar != nil {
		bar.Finish(err)
	}
	if err != nil {
		return nil, err
	}

	final, _, err := header(m, opts.Signer)
	if err != nil {
		return nil, err
	}
	if len(final) != len(placeholder) {
		return nil, fmt.Errorf("bundle: internal error: header length changed (%d, reserved %d)", len(final), len(placeholder))
	}
	end, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if _, err := w.Seek(base, io.SeekStart); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if _, err := w.Write(final); err != nil {
		return nil, fmt.Errorf("bundle: write header: %w", err)
	}
	if _, err := w.Seek(end, io.SeekStart); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return m, nil
}

// writeBody writes every file's tar entry, filling in m's hashes.
func writeBody(ctx context.Context, w io.Writer, m *manifests.Manifest, files []source.File, policy Compression, bar *progress.Bar) error {
	sink := newFrameSink(w, runtime.GOMAXPROCS(0))
	tw := tar.NewWriter(sink)
	bufs := [2][]byte{make([]byte, chunkSize), make([]byte, chunkSize)}
	for i := range files {
		entry := &m.Files[i]
		sum, err := writeFile(ctx, tw, sink, entry, files[i], policy, m.CreatedAt, bufs, bar)
		if err != nil {
			_ = sink.Close()
			return fmt.Errorf("bundle %s: %w", entry.Path, err)
		}
		if want := files[i].Entry.SHA256; want != "" && want != sum {
			_ = sink.Close()
			return fmt.Errorf("bundle %s: sha256 %s does not match the upstream checksum %s", entry.Path, sum, want)
		}
		entry.SHA256 = sum
	}
	if err := tw.Close(); err != nil {
		_ = sink.Close()
		return fmt.Errorf("bundle: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

// writeFile streams one file: while chunk k is hashed and compressed, chunk
// k+1 is read.
func writeFile(ctx context.Context, tw *tar.Writer, sink *frameSink, entry *manifests.File, f source.File,
	policy Compression, mtime time.Time, bufs [2][]byte, bar *progress.Bar) (string, error) {
	rc, err := f.Open(ctx)
	if err != nil {
		return "", fmt.Errorf("open: %w", err)
	}
	defer rc.Close()
	remaining := entry.Size
	read := func(buf []byte) ([]byte, error) {
		n := int(min(int64(len(buf)), remaining))
		k, err := io.ReadFull(rc, buf[:n])
		remaining -= int64(k)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("file is shorter than its declared %d bytes (changed while bundling?)", entry.Size)
			}
			return nil, fmt.Errorf("read: %w", err)
		}
		return buf[:n], nil
	}
	cur, err := read(bufs[0])
	if err != nil {
		return "", err
	}
	if err := sink.SetMode(chooseMode(policy, entry.Size, cur)); err != nil {
		return "", err
	}
	if err := tw.WriteHeader(tarHeader(entry.Path, entry.Size, fileMode(entry), mtime)); err != nil {
		return "", err
	}
	h := sha256simd.New()
	which := 0
	for len(cur) > 0 {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		var (
			wg      sync.WaitGroup
			next    []byte
			readErr error
		)
		wg.Add(2)
		go func(p []byte) { defer wg.Done(); h.Write(p) }(cur)
		go func() {
			defer wg.Done()
			if remaining > 0 {
				next, readErr = read(bufs[1-which])
			}
		}()
		_, werr := tw.Write(cur)
		wg.Wait()
		if werr != nil {
			return "", fmt.Errorf("write: %w", werr)
		}
		if readErr != nil {
			return "", readErr
		}
		if bar != nil {
			bar.Add(int64(len(cur)))
		}
		cur, which = next, 1-which
	}
	var probe [1]byte
	if n, _ := rc.Read(probe[:]); n > 0 {
		return "", fmt.Errorf("file is longer than its declared %d bytes (changed while bundling?)", entry.Size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteFile writes a signed bundle to path and a detached minisign signature
// over the whole file to path+".minisig", checkable with
// `minisign -Vm path -p KEY.pub`. Both are written to temporary files in the
// same directory and renamed into place only when complete, so an
// interrupted run leaves nothing at path.
func WriteFile(ctx context.Context, path string, snap *source.Snapshot, opts Options) (*manifests.Manifest, error) {
	if opts.Signer == nil {
		return nil, errors.New("bundle: no signing key")
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	ok := false
	sigTmp := tmp.Name() + ".minisig"
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
			_ = os.Remove(sigTmp)
		}
	}()
	m, err := writeSeekable(ctx, tmp, snap, opts)
	if err != nil {
		return nil, err
	}
	// The detached signature covers the finished file, header included, so
	// it is computed in one more sequential pass over the compressed bytes.
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	d := signing.NewDigest()
	if _, err := io.Copy(d, tmp); err != nil {
		return nil, fmt.Errorf("bundle %s: sign: %w", path, err)
	}
	trusted := fmt.Sprintf("%s\tfile:%s\thashed\tairlock bundle %s", signing.FormatTimestamp(m.CreatedAt.Unix()), base, m.Name)
	sig, err := signing.SignDigest(*opts.Signer, d.Sum(), trusted, signing.UntrustedComment(opts.Signer.ID()))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := writeFileSync(sigTmp, sig); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := os.Rename(sigTmp, path+".minisig"); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	ok = true
	return m, nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
