//go:build !linux

package verify

import (
	"io"
	"os"
)

// openOutput creates a staging file for an entry; size is unused here.
func openOutput(name string, mode os.FileMode, _ int64) (io.WriteCloser, error) {
	return createFile(name, mode)
}

// alignedBuf returns an n-byte buffer.
func alignedBuf(n int) []byte { return make([]byte, n) }
