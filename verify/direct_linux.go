//go:build linux

package verify

import (
	"errors"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directMin is the file size from which extracted files are written with
// O_DIRECT. Large weight files then go from the extraction buffers straight
// to the device instead of first filling the page cache with gigabytes of
// new dirty pages, which on some machines (fresh-memory first touch, dirty
// page throttling) is slower than the disk itself. Small files keep the
// page cache. A variable so tests can lower it.
var directMin int64 = 64 << 20

// Test hooks: how O_DIRECT is switched on for an open file, and how one
// direct write is issued. Tests replace them to simulate a file system
// that refuses O_DIRECT.
var (
	enableDirect = func(f *os.File) error { return setDirect(f, true) }
	writeDirect  = func(f *os.File, p []byte) (int, error) { return f.Write(p) }
)

// openOutput creates a staging file for an entry of size bytes, with the
// same flags and mode as createFile. From directMin bytes up the file is
// switched to O_DIRECT where the file system allows it (see directFile).
func openOutput(name string, mode os.FileMode, size int64) (io.WriteCloser, error) {
	w, err := createFile(name, mode)
	if err != nil || size < directMin {
		return w, err
	}
	f := w.(*os.File)
	// O_DIRECT is set after the exclusive create rather than passed to
	// open: a file system that refuses it at open may already have created
	// the file, and a retry with O_EXCL would then fail.
	if err := enableDirect(f); err != nil {
		return f, nil // unsupported here: buffered writes
	}
	return &directFile{f: f, direct: true}, nil
}

// directFile writes a file opened with O_DIRECT. Writes whose buffer
// address, length and file offset are all multiples of directAlign go to
// the device directly; the first write that is not aligned (normally the
// file's final partial chunk) clears O_DIRECT and it and everything after
// it are written through the page cache. A direct write that the file
// system rejects with EINVAL is retried the same way.
type directFile struct {
	f      *os.File
	direct bool
	off    int64
}

// directAlign is the alignment used for O_DIRECT: a page, which is a
// multiple of the logical block size of common devices.
const directAlign = 4096

func aligned(p []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0 && len(p)%directAlign == 0
}

func (d *directFile) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if d.direct && (d.off%directAlign != 0 || !aligned(p)) {
		if err := d.buffered(); err != nil {
			return 0, err
		}
	}
	var (
		n   int
		err error
	)
	if d.direct {
		n, err = writeDirect(d.f, p)
		if n == 0 && errors.Is(err, unix.EINVAL) {
			if err = d.buffered(); err == nil {
				n, err = d.f.Write(p)
			}
		}
	} else {
		n, err = d.f.Write(p)
	}
	d.off += int64(n)
	return n, err
}

// buffered clears O_DIRECT for the rest of the file.
func (d *directFile) buffered() error {
	if err := setDirect(d.f, false); err != nil {
		return err
	}
	d.direct = false
	return nil
}

func (d *directFile) Close() error { return d.f.Close() }

// setDirect sets or clears O_DIRECT on f.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			ferr = err
			return
		}
		if on {
			flags |= unix.O_DIRECT
		} else {
			flags &^= unix.O_DIRECT
		}
		_, ferr = unix.FcntlInt(fd, unix.F_SETFL, flags)
	}); err != nil {
		return err
	}
	if ferr != nil {
		return &os.PathError{Op: "fcntl", Path: f.Name(), Err: ferr}
	}
	return nil
}

// alignedBuf returns an n-byte buffer whose start is directAlign-aligned.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (directAlign - 1))
	return b[off : off+n : off+n]
}
