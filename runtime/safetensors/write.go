package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// WriteTensor describes one tensor to write: its data is produced by Write,
// which must write exactly the tensor's byte size.
type WriteTensor struct {
	Name  string
	DType DType
	Shape []int
	Write func(w io.Writer) error
}

// ByteSize returns the tensor's size in bytes.
func (t WriteTensor) ByteSize() int64 {
	n := int64(t.DType.Size())
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// WriteFile writes tensors (in name order) to path in the safetensors
// format, with metadata as __metadata__. The header is padded with spaces to
// a multiple of 8 bytes so every tensor is aligned.
func WriteFile(path string, tensors []WriteTensor, metadata map[string]string) (err error) {
	sorted := append([]WriteTensor(nil), tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	header := map[string]any{}
	if metadata != nil {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range sorted {
		if t.DType.Size() == 0 {
			return fmt.Errorf("safetensors: tensor %s: unsupported dtype %q", t.Name, t.DType)
		}
		size := t.ByteSize()
		header[t.Name] = headerEntry{DType: t.DType, Shape: t.Shape, DataOffsets: [2]int64{off, off + size}}
		off += size
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("safetensors: %w", cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 4<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	if _, err := bw.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if _, err := bw.Write(hdr); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	for _, t := range sorted {
		cw := &countingWriter{w: bw}
		if err := t.Write(cw); err != nil {
			return fmt.Errorf("safetensors: tensor %s: %w", t.Name, err)
		}
		if cw.n != t.ByteSize() {
			return fmt.Errorf("safetensors: tensor %s: wrote %d bytes, want %d", t.Name, cw.n, t.ByteSize())
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// F32ToBF16 rounds a float32 to the nearest bfloat16 (ties to even).
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it a NaN
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// F32ToF16 rounds a float32 to the nearest IEEE half (ties to even),
// saturating to infinity and flushing tiny values through subnormals.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000:
		return sign | 0x7e00
	case exp >= 0x1f:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		half := uint32(1) << (shift - 1)
		r := mant >> shift
		rem := mant & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is still correct
	}
	return sign | uint16(r)
}
