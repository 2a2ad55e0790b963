//go:build unix

package safetensors

import (
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// prefaultChunk is how much of a mapping is pre-faulted per progress step.
const prefaultChunk = 64 << 20

// mapFile maps the file read-only and asks the kernel to read it ahead, then
// touches every page so the first forward pass does not stall on faults.
func mapFile(f *os.File, size int64, progress func(int64)) ([]byte, func() error, error) {
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	_ = unix.Madvise(data, unix.MADV_WILLNEED)
	_ = unix.Madvise(data, unix.MADV_HUGEPAGE)
	var sink byte
	for off := int64(0); off < size; off += prefaultChunk {
		end := min(off+prefaultChunk, size)
		for i := off; i < end; i += 4096 {
			sink ^= data[i]
		}
		if progress != nil {
			progress(end - off)
		}
	}
	sinkByte.Store(uint32(sink))
	return data, func() error { return unix.Munmap(data) }, nil
}

// sinkByte keeps the pre-fault reads from being optimized away.
var sinkByte atomic.Uint32
