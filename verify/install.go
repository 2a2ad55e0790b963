package verify

import (
	"errors"
	"fmt"
	"os"
)

// installPortable moves staging to outDir with plain renames: an existing
// outDir is first moved aside, and moved back if the second rename fails.
func installPortable(staging, outDir string, force bool) error {
	if _, err := os.Lstat(outDir); err == nil {
		if !force {
			return fmt.Errorf("destination %s already exists (use --force to replace it)", outDir)
		}
		old := staging + ".previous"
		if err := os.Rename(outDir, old); err != nil {
			return fmt.Errorf("install %s: %w", outDir, err)
		}
		if err := os.Rename(staging, outDir); err != nil {
			return errors.Join(fmt.Errorf("install %s: %w", outDir, err), os.Rename(old, outDir))
		}
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("install %s: remove previous content: %w", outDir, err)
		}
		return nil
	}
	if err := os.Rename(staging, outDir); err != nil {
		return fmt.Errorf("install %s: %w", outDir, err)
	}
	return nil
}
