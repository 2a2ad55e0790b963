package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spinFor is how long an idle worker keeps polling for the next job before
// it parks. A decode step issues a few hundred small jobs back to back, so
// workers that stay awake between them save the wake-up latency of a
// parked goroutine (tens of microseconds) on every call.
const spinFor = 200 * time.Microsecond

// task is the body of a parallel loop. Pointer receivers keep the
// conversion to the interface free of allocation.
type task interface{ run(start, end int) }

// funcTask adapts a function to task.
type funcTask func(start, end int)

func (f funcTask) run(start, end int) { f(start, end) }

// genShift places the loop generation above the chunk index in job.next.
const genShift = 32

// job is the pool's one parallel loop: t over [0, n) in chunks of chunk.
// The pool reuses it for every loop, so dispatch allocates nothing. next
// and lim hold the generation of the loop in their high bits, and in
// their low bits the next chunk to hand out and the number of chunks. A
// worker whose claim or limit belongs to another generation leaves
// without touching the plain fields; a valid claim means the loop is not
// finished, so those fields are stable (written before next is published).
type job struct {
	t      task
	n      int
	chunk  int
	chunks int64 // the dispatcher's copy of lim's low bits
	next   atomic.Int64
	lim    atomic.Int64
	done   atomic.Int64 // chunks finished in the current generation
}

// run executes chunks of generation gen until none are left.
func (j *job) run(gen int64) {
	for {
		// Compare-and-swap rather than add, so a worker of an older
		// generation never consumes a chunk of the current one.
		c := j.next.Load()
		if c>>genShift != gen {
			return
		}
		if !j.next.CompareAndSwap(c, c+1) {
			continue
		}
		l := j.lim.Load()
		if l>>genShift != gen {
			return
		}
		c &= 1<<genShift - 1
		if c >= l&(1<<genShift-1) {
			return
		}
		start := int(c) * j.chunk
		end := min(start+j.chunk, j.n)
		j.t.run(start, end)
		j.done.Add(1)
	}
}

// pool is a set of persistent worker goroutines that help the calling
// goroutine through parallel loops. One loop runs at a time; a caller that
// finds the pool busy (another model, or a nested call from inside a
// loop) runs its loop on its own goroutine instead of waiting.
type pool struct {
	threads int // workers + the caller
	busy    sync.Mutex
	job     job
	gen     atomic.Int64 // generation of the latest loop; 0 before any
	workers []*worker
	quit    atomic.Bool
}

type worker struct {
	sleeping atomic.Bool
	wake     chan struct{}
}

func newPool(threads int) *pool {
	p := &pool{threads: threads}
	for i := 0; i < threads-1; i++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.loop(w)
	}
	return p
}

// loop is a worker's life: poll for a new job, run it, and park after
// spinFor without work.
func (p *pool) loop(w *worker) {
	var last int64
	idleSince := time.Now()
	for spins := 0; ; spins++ {
		if g := p.gen.Load(); g != last {
			last = g
			p.job.run(g)
			idleSince = time.Now()
			spins = 0
			continue
		}
		spinPause()
		if spins&63 != 63 {
			continue
		}
		if p.quit.Load() {
			return
		}
		if time.Since(idleSince) < spinFor {
			if spins&1023 == 1023 {
				runtime.Gosched() // let other goroutines of this P run
			}
			continue
		}
		// Park. The dispatcher wakes us only if it flips sleeping back
		// to false, so every send on wake matches one park.
		w.sleeping.Store(true)
		if p.gen.Load() != last || p.quit.Load() {
			if w.sleeping.CompareAndSwap(true, false) {
				idleSince = time.Now()
				continue
			}
		}
		<-w.wake
		idleSince = time.Now()
	}
}

// wakeAll unparks every parked worker.
func (p *pool) wakeAll() {
	for _, w := range p.workers {
		if w.sleeping.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
}

// close stops the workers; the pool must not be used afterwards.
func (p *pool) close() {
	p.busy.Lock()
	defer p.busy.Unlock()
	p.quit.Store(true)
	p.wakeAll()
}

// parallel runs t over [0, n) in chunks of chunk, on the caller and the
// workers, and returns when every chunk is done.
func (p *pool) parallel(n, chunk int, t task) {
	if n <= 0 {
		return
	}
	if chunk < 1 {
		chunk = 1
	}
	if len(p.workers) == 0 || n <= chunk || !p.busy.TryLock() {
		for s := 0; s < n; s += chunk {
			t.run(s, min(s+chunk, n))
		}
		return
	}
	defer p.busy.Unlock()
	gen := (p.gen.Load() + 1) & (1<<(63-genShift) - 1)
	if gen == 0 {
		gen = 1
	}
	j := &p.job
	j.chunks = int64((n + chunk - 1) / chunk)
	j.lim.Store(gen<<genShift | j.chunks)
	j.t, j.n, j.chunk = t, n, chunk
	j.done.Store(0)
	j.next.Store(gen << genShift)
	p.gen.Store(gen)
	p.wakeAll()
	j.run(gen)
	for spins := 0; j.done.Load() < j.chunks; spins++ {
		spinPause()
		if spins&255 == 255 {
			runtime.Gosched()
		}
	}
	j.t = nil
}

var (
	poolMu     sync.Mutex
	sharedPool atomic.Pointer[pool]
)

func init() {
	sharedPool.Store(newPool(runtime.GOMAXPROCS(0)))
}

// Threads reports how many goroutines (the caller included) the kernels
// spread work over. The default is runtime.GOMAXPROCS(0) at start-up.
func Threads() int { return sharedPool.Load().threads }

// SetThreads sets the number of goroutines the kernels use, the caller
// included; n < 1 means runtime.GOMAXPROCS(0). It must not be called while
// kernels are running on other goroutines.
func SetThreads(n int) {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	poolMu.Lock()
	defer poolMu.Unlock()
	old := sharedPool.Load()
	if old.threads == n {
		return
	}
	sharedPool.Store(newPool(n))
	old.close()
}

// Parallel calls fn on disjoint ranges [start, end) that together cover
// [0, n), concurrently on up to Threads() goroutines, and returns when all
// calls have returned. Ranges are handed out dynamically, a few per
// thread, so uneven work balances. fn may itself call kernels; nested
// calls run on the calling goroutine.
func Parallel(n int, fn func(start, end int)) {
	t := Threads()
	ParallelChunks(n, max(1, n/(4*t)), fn)
}

// ParallelChunks is Parallel with a chosen grain: ranges have chunk
// elements (the last may be shorter).
func ParallelChunks(n, chunk int, fn func(start, end int)) {
	sharedPool.Load().parallel(n, chunk, funcTask(fn))
}

// parallelTask is ParallelChunks for a task, which lets hot callers keep
// their loop state in a reused struct instead of a fresh closure.
func parallelTask(n, chunk int, t task) {
	sharedPool.Load().parallel(n, chunk, t)
}
