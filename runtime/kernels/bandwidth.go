package kernels

import (
	"slices"
	"sync/atomic"
	"time"
)

// bandwidthSink keeps the sums of MeasureBandwidth observable so the reads
// cannot be optimized away.
var bandwidthSink atomic.Uint64

func sumU64Generic(p []uint64) uint64 {
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+4 <= len(p); i += 4 {
		s0 += p[i]
		s1 += p[i+1]
		s2 += p[i+2]
		s3 += p[i+3]
	}
	for ; i < len(p); i++ {
		s0 += p[i]
	}
	return s0 + s1 + s2 + s3
}

// MeasureBandwidth measures streaming-read memory bandwidth in GB/s
// (10⁹ bytes per second): it maps a buffer of the given size (make it
// much larger than the caches, e.g. 256 MiB), writes it once, then sums
// all of it on Threads() goroutines of the kernels' pool, in chunks the
// way MatVecBF16 reads weights, repeats times, and returns the median.
// The buffer is unmapped before returning, but it does count towards the
// process's peak resident set while the measurement runs.
func MeasureBandwidth(bytes int, repeats int) (gbPerSec float64) {
	if bytes < 1<<20 {
		bytes = 1 << 20
	}
	repeats = max(repeats, 1)
	buf, free := allocScratch(bytes / 8)
	defer free()
	ParallelChunks(len(buf), bandwidthChunk, func(s, e int) {
		for i := s; i < e; i++ {
			buf[i] = uint64(i)
		}
	})
	rates := make([]float64, 0, repeats)
	for r := 0; r < repeats; r++ {
		rates = append(rates, readRate(buf))
	}
	slices.Sort(rates)
	return rates[len(rates)/2]
}

// bandwidthChunk is the uint64s per parallel chunk of a bandwidth pass
// (256 KiB).
const bandwidthChunk = 1 << 15

// readRate sums buf once on the pool and returns the rate in GB/s.
func readRate(buf []uint64) float64 {
	var total atomic.Uint64
	start := time.Now()
	ParallelChunks(len(buf), bandwidthChunk, func(s, e int) {
		total.Add(sumU64(buf[s:e]))
	})
	el := time.Since(start).Seconds()
	bandwidthSink.Add(total.Load())
	return float64(len(buf)*8) / el / 1e9
}
