//go:build unix

package kernels

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// allocScratch returns n uint64s of memory outside the Go heap and a
// function that returns it to the operating system at once, so a large
// probe buffer does not linger in the process's resident set.
func allocScratch(n int) ([]uint64, func()) {
	b, err := unix.Mmap(-1, 0, n*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]uint64, n), func() {}
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n), func() { _ = unix.Munmap(b) }
}
