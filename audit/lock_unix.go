//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockLog takes an exclusive advisory lock on PATH.lock for the Writer's
// lifetime, so two servers cannot fork one chain.
func lockLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock audit log: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("audit log %s is in use by another process", path)
		}
		return nil, fmt.Errorf("lock audit log: %w", err)
	}
	return f, nil
}
