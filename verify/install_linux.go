//go:build linux

package verify

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

const noFollow = syscall.O_NOFOLLOW

// install moves the verified staging directory to outDir. A new outDir
// appears with RENAME_NOREPLACE (never clobbering one created meanwhile);
// with force an existing one is swapped atomically with RENAME_EXCHANGE and
// the old content removed afterwards.
func install(staging, outDir string, force bool) error {
	err := unix.Renameat2(unix.AT_FDCWD, staging, unix.AT_FDCWD, outDir, unix.RENAME_NOREPLACE)
	if err == nil {
		return syncDir(filepath.Dir(outDir))
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return installPortable(staging, outDir, force)
	}
	if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("install %s: %w", outDir, err)
	}
	if !force {
		return fmt.Errorf("destination %s already exists (use --force to replace it)", outDir)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, staging, unix.AT_FDCWD, outDir, unix.RENAME_EXCHANGE); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			return installPortable(staging, outDir, force)
		}
		return fmt.Errorf("install %s: %w", outDir, err)
	}
	// staging now holds the previous content.
	if err := syncDir(filepath.Dir(outDir)); err != nil {
		return err
	}
	if err := os.RemoveAll(staging); err != nil {
		return fmt.Errorf("install %s: remove previous content: %w", outDir, err)
	}
	return nil
}

// checkSpace refuses to start when the file system cannot hold need bytes.
func checkSpace(dir string, need int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // unknown: the writes themselves will report a full disk
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free >= 0 && need > free {
		return fmt.Errorf("not enough space in %s: the bundle needs %d bytes, %d are free", dir, need, free)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
