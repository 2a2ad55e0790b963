package runtime

import (
	goruntime "runtime"
	"sync"
)

// workers is a fixed pool of goroutines that run the row blocks of the
// matrix kernels, so a decode step does not spawn goroutines.
type workers struct {
	n    int
	jobs chan func()
}

var (
	poolOnce sync.Once
	pool     *workers
)

// threads is the number of goroutines a kernel splits its work over.
func threads() int {
	poolOnce.Do(func() {
		n := goruntime.GOMAXPROCS(0)
		pool = &workers{n: n, jobs: make(chan func(), 4*n)}
		for i := 0; i < n; i++ {
			go func() {
				for f := range pool.jobs {
					f()
				}
			}()
		}
	})
	return pool.n
}

// parallelFor splits [0, n) into about parts contiguous ranges, aligned to
// align, and runs fn on each, the last one on the calling goroutine.
func parallelFor(n, align int, fn func(lo, hi int)) {
	t := threads()
	if t <= 1 || n <= align {
		fn(0, n)
		return
	}
	chunk := (n + t - 1) / t
	chunk = (chunk + align - 1) / align * align
	var wg sync.WaitGroup
	lo := 0
	for ; lo+chunk < n; lo += chunk {
		wg.Add(1)
		a, b := lo, lo+chunk
		pool.jobs <- func() { fn(a, b); wg.Done() }
	}
	fn(lo, n)
	wg.Wait()
}
