package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/airlock-dev/airlock/manifests"
)

// Limits applied while reading a bundle, before anything is verified.
const (
	// MaxWindow is the largest zstd window a bundle may require; it bounds
	// the decoder's memory.
	MaxWindow = 32 << 20
	// MaxSignatureSize bounds the signature entry.
	MaxSignatureSize = 4 << 10
	// maxTrailer bounds the zero padding accepted after the end-of-archive
	// marker (tar tools pad to 10 KiB records).
	maxTrailer = 64 << 10
)

// ErrCorrupt marks a bundle that is truncated or not a well-formed bundle.
var ErrCorrupt = errors.New("corrupt or truncated bundle")

// Reader reads a bundle's entries in order and enforces the format's
// structural rules: the manifest and its signature first, then regular
// files only, with safe names.
type Reader struct {
	dec    *zstd.Decoder
	tr     *tar.Reader
	header bool // manifest and signature consumed
}

// NewReader starts reading a bundle from r. Close releases the decoder.
func NewReader(r io.Reader) (*Reader, error) {
	dec, err := zstd.NewReader(r,
		zstd.WithDecoderMaxWindow(MaxWindow),
		zstd.WithDecoderConcurrency(min(4, runtime.GOMAXPROCS(0))),
		zstd.WithDecoderLowmem(false),
	)
	if err != nil {
		return nil, fmt.Errorf("bundle: zstd: %w", err)
	}
	return &Reader{dec: dec, tr: tar.NewReader(dec)}, nil
}

// Close releases the decoder's goroutines and buffers.
func (r *Reader) Close() { r.dec.Close() }

// corrupt wraps a read error, marking it ErrCorrupt.
func corrupt(what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
}

// ReadHeader reads the first two entries, the manifest and its signature,
// and returns their bytes. Nothing is verified yet: the caller must check
// the signature before trusting the manifest.
func (r *Reader) ReadHeader() (manifest, signature []byte, err error) {
	if r.header {
		return nil, nil, errors.New("bundle: header already read")
	}
	manifest, err = r.readSmall(manifests.ManifestPath, manifests.MaxManifestSize)
	if err != nil {
		return nil, nil, err
	}
	signature, err = r.readSmall(manifests.SignaturePath, MaxSignatureSize)
	if err != nil {
		return nil, nil, err
	}
	r.header = true
	return manifest, signature, nil
}

func (r *Reader) readSmall(name string, limit int64) ([]byte, error) {
	h, err := r.tr.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s missing (not an airlock bundle?)", ErrCorrupt, name)
		}
		return nil, corrupt("reading "+name, err)
	}
	if h.Name != name {
		return nil, fmt.Errorf("%w: first entries must be %s and %s, found %q", ErrCorrupt,
			manifests.ManifestPath, manifests.SignaturePath, h.Name)
	}
	if err := checkEntry(h); err != nil {
		return nil, err
	}
	if h.Size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, above the %d byte limit", ErrCorrupt, name, h.Size, limit)
	}
	b := make([]byte, h.Size)
	if _, err := io.ReadFull(r.tr, b); err != nil {
		return nil, corrupt("reading "+name, err)
	}
	return b, nil
}

// checkEntry refuses anything but a plain regular file with a safe name.
func checkEntry(h *tar.Header) error {
	switch h.Typeflag {
	case tar.TypeReg:
	case tar.TypeSymlink:
		return fmt.Errorf("entry %q: symlinks are not allowed (target %q)", h.Name, h.Linkname)
	case tar.TypeLink:
		return fmt.Errorf("entry %q: hard links are not allowed (target %q)", h.Name, h.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("entry %q: devices and FIFOs are not allowed", h.Name)
	case tar.TypeDir:
		return fmt.Errorf("entry %q: directory entries are not allowed", h.Name)
	default:
		return fmt.Errorf("entry %q: entry type %q is not allowed", h.Name, h.Typeflag)
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse") {
			return fmt.Errorf("entry %q: sparse files are not allowed", h.Name)
		}
	}
	if h.Name != manifests.ManifestPath && h.Name != manifests.SignaturePath {
		if err := manifests.CheckPath(h.Name); err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
	}
	if h.Size < 0 {
		return fmt.Errorf("entry %q: negative size", h.Name)
	}
	return nil
}

// Next advances to the next file entry and returns its header. It returns
// io.EOF at the end-of-archive marker. Entries that are not regular files
// or have unsafe names are errors naming the entry.
func (r *Reader) Next() (*tar.Header, error) {
	if !r.header {
		return nil, errors.New("bundle: ReadHeader must be called first")
	}
	h, err := r.tr.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, corrupt("reading the next entry", err)
	}
	if h.Name == manifests.ManifestPath || h.Name == manifests.SignaturePath {
		return nil, fmt.Errorf("entry %q: appears twice", h.Name)
	}
	if err := checkEntry(h); err != nil {
		return nil, err
	}
	return h, nil
}

// Read reads the current entry's data.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.tr.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, corrupt("reading entry data", err)
	}
	return n, err
}

// Finish checks what follows the end-of-archive marker: only zero padding
// (bounded) and a cleanly ended zstd stream. Call it after Next returned
// io.EOF; it catches appended data and truncation of the final frame.
func (r *Reader) Finish() error {
	var buf [4096]byte
	var total int
	for {
		n, err := r.dec.Read(buf[:])
		if n > 0 {
			total += n
			if total > maxTrailer || !bytes.Equal(buf[:n], make([]byte, n)) {
				return fmt.Errorf("%w: data after the end of the archive", ErrCorrupt)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return corrupt("end of the archive", err)
		}
	}
}
