//go:build !(linux || darwin)

package runtime

// peakRSS is unavailable on this platform.
func peakRSS() int64 { return 0 }
