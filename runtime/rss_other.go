//go:build !(linux || darwin)

package runtime

// peakRSS is unavailable on this platform.
func peakRSS() int64 { return 0 }

// cpuSeconds is unavailable on this platform.
func cpuSeconds() float64 { return 0 }
