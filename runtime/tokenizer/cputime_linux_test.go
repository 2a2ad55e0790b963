//go:build linux

package tokenizer

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time consumed by the calling OS thread.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reports throughput per second of CPU time used by the benchmark
// goroutine's thread ("cpu-MB/s"). On a shared, loaded machine wall-clock
// MB/s mostly measures how often the scheduler runs us; CPU time does not.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPUMeter(b *testing.B) *cpuMeter {
	runtime.LockOSThread()
	return &cpuMeter{b: b, start: threadCPU()}
}

func (m *cpuMeter) stop(bytesPerOp int64) {
	used := threadCPU() - m.start
	runtime.UnlockOSThread()
	if used > 0 {
		m.b.ReportMetric(float64(bytesPerOp)*float64(m.b.N)/used.Seconds()/1e6, "cpu-MB/s")
	}
}
