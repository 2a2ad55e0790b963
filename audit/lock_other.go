//go:build !unix

package audit

import "os"

// lockLog is a no-op where flock is unavailable: running two servers on
// one log is then the operator's responsibility.
func lockLog(string) (*os.File, error) { return nil, nil }
