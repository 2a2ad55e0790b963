package verify

import (
	"fmt"
	"os"

	"github.com/airlock-dev/airlock/internal/signing"
)

// Detached checks the detached signature bundlePath+".minisig" over the
// whole bundle file (the one `minisign -Vm FILE -p KEY.pub` checks) and
// returns it. It reads the file once more, so it is optional: Extract's
// manifest signature and per-file hashes already cover every installed
// byte.
func Detached(bundlePath string, pub signing.PublicKey) (signing.Signature, error) {
	sig, err := readLimited(bundlePath+".minisig", 4<<10)
	if err != nil {
		return signing.Signature{}, fmt.Errorf("detached signature: %w", err)
	}
	f, err := os.Open(bundlePath)
	if err != nil {
		return signing.Signature{}, fmt.Errorf("detached signature: %w", err)
	}
	defer f.Close()
	s, err := signing.VerifyReader(pub, f, sig)
	if err != nil {
		return signing.Signature{}, fmt.Errorf("detached signature %s.minisig: %w", bundlePath, err)
	}
	return s, nil
}
