// Package safetensors reads tensors stored in the safetensors format: an
// 8-byte little-endian header length, a JSON header naming every tensor's
// dtype, shape and byte range, then the raw little-endian data. Files are
// memory-mapped read-only (or read once into memory) and tensors are returned
// as views of that memory, so no tensor is copied or converted on load.
// Sharded checkpoints (model.safetensors.index.json) are opened as one set.
package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"unsafe"
)

// DType is a tensor element type as spelled in the header.
type DType string

// Element types this package understands.
const (
	BF16 DType = "BF16"
	F16  DType = "F16"
	F32  DType = "F32"
)

// Size returns the bytes per element of d, or 0 for an unsupported dtype.
func (d DType) Size() int {
	switch d {
	case BF16, F16:
		return 2
	case F32:
		return 4
	}
	return 0
}

// maxHeaderBytes bounds the JSON header so a corrupt length cannot make the
// reader allocate gigabytes.
const maxHeaderBytes = 100 << 20

// Tensor is a view of one tensor's bytes inside an open File or Set.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte // little-endian raw elements; valid until the owner is closed
}

// Elements returns the number of elements (the product of the shape).
func (t Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Uint16s returns the data of a BF16 or F16 tensor as raw 16-bit patterns
// without copying.
func (t Tensor) Uint16s() []uint16 {
	if len(t.Data) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&t.Data[0])), len(t.Data)/2)
}

// Float32s converts the tensor to float32 (a new slice): BF16 and F16
// exactly, F32 copied.
func (t Tensor) Float32s() []float32 {
	n := t.Elements()
	out := make([]float32, n)
	switch t.DType {
	case BF16:
		for i, b := range t.Uint16s()[:n] {
			out[i] = math.Float32frombits(uint32(b) << 16)
		}
	case F16:
		for i, b := range t.Uint16s()[:n] {
			out[i] = F16ToF32(b)
		}
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(uint32(t.Data[4*i]) | uint32(t.Data[4*i+1])<<8 |
				uint32(t.Data[4*i+2])<<16 | uint32(t.Data[4*i+3])<<24)
		}
	}
	return out
}

// F16ToF32 converts an IEEE 754 half-precision bit pattern to float32 exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalize
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Mode selects how file bytes reach memory.
type Mode int

// Loading modes.
const (
	// Mmap maps the file read-only and shares the page cache: fast to load,
	// no private copy of the weights.
	Mmap Mode = iota
	// Heap reads the whole file once into process memory.
	Heap
)

// Options controls how files are opened.
type Options struct {
	Mode Mode
	// Progress, if set, is called with the number of bytes made resident as
	// the file is read or pre-faulted.
	Progress func(n int64)
}

// File is one open safetensors file.
type File struct {
	path     string
	data     []byte // whole file
	unmap    func() error
	tensors  map[string]Tensor
	names    []string
	Metadata map[string]string // the header's __metadata__ (may be nil)
}

type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Open opens one safetensors file.
func Open(path string, opts Options) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: stat %s: %w", path, err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors: %s: file is %d bytes, too short for a header", path, size)
	}
	var data []byte
	var unmap func() error
	if opts.Mode == Mmap {
		data, unmap, err = mapFile(f, size, opts.Progress)
	} else {
		data, err = readFile(f, size, opts.Progress)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	sf, err := parse(data)
	if err != nil {
		if unmap != nil {
			_ = unmap()
		}
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	sf.path, sf.unmap = path, unmap
	return sf, nil
}

// readFile reads the file into an 8-byte-aligned heap buffer.
func readFile(f *os.File, size int64, progress func(int64)) ([]byte, error) {
	backing := make([]uint64, (size+7)/8)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&backing[0])), size)
	const chunk = 16 << 20
	for off := int64(0); off < size; {
		n := min(chunk, size-off)
		if _, err := io.ReadFull(f, buf[off:off+n]); err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		off += n
		if progress != nil {
			progress(n)
		}
	}
	return buf, nil
}

// Parse reads a safetensors image held in memory (used by tests and fuzzing).
// The returned File refers to data.
func Parse(data []byte) (*File, error) { return parse(data) }

func parse(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, errors.New("too short for a header")
	}
	var hlen uint64
	for i := 7; i >= 0; i-- {
		hlen = hlen<<8 | uint64(data[i])
	}
	if hlen > maxHeaderBytes || hlen > uint64(len(data)-8) {
		return nil, fmt.Errorf("header length %d exceeds the file (%d bytes)", hlen, len(data))
	}
	header := data[8 : 8+hlen]
	body := data[8+hlen:]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	sf := &File{data: data, tensors: make(map[string]Tensor, len(raw))}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &sf.Metadata); err != nil {
				return nil, fmt.Errorf("header __metadata__: %w", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		es := e.DType.Size()
		if es == 0 {
			return nil, fmt.Errorf("tensor %q: unsupported dtype %q", name, e.DType)
		}
		n := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && n > math.MaxInt32*int64(1024)/int64(d)) {
				return nil, fmt.Errorf("tensor %q: bad shape %v", name, e.Shape)
			}
			n *= int64(d)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > int64(len(body)) {
			return nil, fmt.Errorf("tensor %q: data offsets [%d, %d) outside the %d data bytes", name, begin, end, len(body))
		}
		if end-begin != n*int64(es) {
			return nil, fmt.Errorf("tensor %q: %d data bytes for shape %v of %s (want %d)", name, end-begin, e.Shape, e.DType, n*int64(es))
		}
		if (8+int64(hlen)+begin)%int64(es) != 0 {
			return nil, fmt.Errorf("tensor %q: data not aligned to its %d-byte elements", name, es)
		}
		sf.tensors[name] = Tensor{Name: name, DType: e.DType, Shape: e.Shape, Data: body[begin:end:end]}
		sf.names = append(sf.names, name)
	}
	sort.Strings(sf.names)
	return sf, nil
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string { return f.names }

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (Tensor, bool) {
	t, ok := f.tensors[name]
	return t, ok
}

// Bytes returns the size of the file image.
func (f *File) Bytes() int64 { return int64(len(f.data)) }

// Close releases the file's memory; tensors obtained from it become invalid.
func (f *File) Close() error {
	if f.unmap != nil {
		u := f.unmap
		f.unmap = nil
		return u()
	}
	return nil
}

// Set is a group of files opened together: one model.safetensors, or every
// shard listed by model.safetensors.index.json.
type Set struct {
	files  []*File
	byName map[string]*File
}

// IndexFile is the name of the shard index of a sharded checkpoint.
const IndexFile = "model.safetensors.index.json"

// SingleFile is the name of an unsharded checkpoint.
const SingleFile = "model.safetensors"

// Files lists the safetensors files of the checkpoint in dir: the shards
// named by the index if there is one, else model.safetensors.
func Files(dir string) ([]string, error) {
	idx, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if errors.Is(err, os.ErrNotExist) {
		p := filepath.Join(dir, SingleFile)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("safetensors: no %s or %s in %s", SingleFile, IndexFile, dir)
		}
		return []string{p}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(idx, &index); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", IndexFile, err)
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: empty weight_map", IndexFile)
	}
	seen := map[string]bool{}
	var files []string
	for _, shard := range index.WeightMap {
		if shard != filepath.Base(shard) || shard == "." || shard == ".." {
			return nil, fmt.Errorf("safetensors: %s: shard name %q is not a plain file name", IndexFile, shard)
		}
		if !seen[shard] {
			seen[shard] = true
			files = append(files, filepath.Join(dir, shard))
		}
	}
	sort.Strings(files)
	return files, nil
}

// OpenDir opens the checkpoint in dir (single file or sharded).
func OpenDir(dir string, opts Options) (*Set, error) {
	paths, err := Files(dir)
	if err != nil {
		return nil, err
	}
	s := &Set{byName: map[string]*File{}}
	for _, p := range paths {
		f, err := Open(p, opts)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.files = append(s.files, f)
		for _, n := range f.names {
			if prev, dup := s.byName[n]; dup {
				s.Close()
				return nil, fmt.Errorf("safetensors: tensor %q is in both %s and %s", n, filepath.Base(prev.path), filepath.Base(p))
			}
			s.byName[n] = f
		}
	}
	return s, nil
}

// TotalBytes returns the combined size of the files of a checkpoint in dir
// (for progress reporting before opening).
func TotalBytes(dir string) (int64, error) {
	paths, err := Files(dir)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return 0, fmt.Errorf("safetensors: %w", err)
		}
		total += st.Size()
	}
	return total, nil
}

// Tensor returns the named tensor from whichever file holds it.
func (s *Set) Tensor(name string) (Tensor, bool) {
	f, ok := s.byName[name]
	if !ok {
		return Tensor{}, false
	}
	return f.Tensor(name)
}

// Names returns every tensor name in sorted order.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Metadata returns the merged __metadata__ of every file.
func (s *Set) Metadata() map[string]string {
	m := map[string]string{}
	for _, f := range s.files {
		for k, v := range f.Metadata {
			m[k] = v
		}
	}
	return m
}

// Close releases every file.
func (s *Set) Close() error {
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.files = nil
	return first
}
