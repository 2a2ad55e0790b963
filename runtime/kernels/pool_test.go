package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// checkCover runs Parallel over n and verifies each index is visited once.
func checkCover(t *testing.T, n int, run func(n int, fn func(s, e int))) {
	t.Helper()
	hits := make([]atomic.Int32, n)
	run(n, func(s, e int) {
		if s < 0 || e > n || s >= e {
			t.Errorf("bad range [%d,%d) for n=%d", s, e, n)
			return
		}
		for i := s; i < e; i++ {
			hits[i].Add(1)
		}
	})
	for i := range hits {
		if h := hits[i].Load(); h != 1 {
			t.Fatalf("n=%d: index %d visited %d times", n, i, h)
		}
	}
}

func TestParallelCoversEachIndexOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		SetThreads(threads)
		if Threads() != threads {
			t.Fatalf("Threads() = %d after SetThreads(%d)", Threads(), threads)
		}
		for _, n := range []int{0, 1, 2, 5, 16, 17, 1000} {
			checkCover(t, n, Parallel)
			for _, c := range []int{0, 1, 3, 64} {
				checkCover(t, n, func(n int, fn func(s, e int)) { ParallelChunks(n, c, fn) })
			}
		}
	}
	SetThreads(0)
	if Threads() != runtime.GOMAXPROCS(0) {
		t.Fatalf("SetThreads(0): Threads() = %d", Threads())
	}
}

func TestParallelNestedAndConcurrent(t *testing.T) {
	SetThreads(3)
	defer SetThreads(0)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := 0; it < 50; it++ {
				// Outer loop over "heads", each running an inner parallel
				// loop: nested calls must run inline, not deadlock.
				checkCover(t, 16, func(n int, fn func(s, e int)) {
					Parallel(n, func(s, e int) {
						checkCover(t, 100, Parallel)
						fn(s, e)
					})
				})
			}
		}()
	}
	wg.Wait()
}

func BenchmarkParallelDispatch(b *testing.B) {
	var sink atomic.Int64
	for b.Loop() {
		ParallelChunks(64, 16, func(s, e int) { sink.Add(int64(e - s)) })
	}
}

func BenchmarkMatVecSmallLatency(b *testing.B) {
	// 64×1024: the dispatch cost dominates; this bounds per-call overhead.
	rows, cols := 64, 1024
	w := make([]uint16, rows*cols)
	x := make([]float32, cols)
	y := make([]float32, rows)
	for b.Loop() {
		MatVecBF16(y, w, x, rows, cols)
	}
}
