//go:build !linux

package verify

const noFollow = 0

func install(staging, outDir string, force bool) error {
	return installPortable(staging, outDir, force)
}

func checkSpace(string, int64) error { return nil }
