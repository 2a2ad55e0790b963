//go:build !unix

package safetensors

import "os"

// mapFile falls back to reading the file where mmap is unavailable.
func mapFile(f *os.File, size int64, progress func(int64)) ([]byte, func() error, error) {
	data, err := readFile(f, size, progress)
	return data, nil, err
}
