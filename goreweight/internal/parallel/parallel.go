// Package parallel holds goreweight's two parallel-for loops, one per
// kind of work; both are deterministic, in different senses.
//
// Job.For (the core's Weigher) runs numbered chunks whose partition the
// caller fixes (the core: 16384 samples per chunk), on a process-wide pool
// of GOMAXPROCS-1 helper goroutines plus the caller, taking chunks in any
// order. Results that are combined in chunk order are therefore identical
// for any number of threads, and starting a loop allocates nothing: the
// Job lives in the caller's long-lived object.
//
// Split (the trainer's layers and optimiser) cuts [0, n) into at most
// `workers` contiguous ranges of at least `grain` items, one goroutine
// each. The ranges depend on the worker count, so the function must treat
// every item independently of how the range was cut; it suits large
// elementwise loops, where one goroutine start per range is negligible.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A Task is work split into numbered chunks.
type Task interface {
	// RunChunk does chunk c. Chunks run concurrently, each exactly once.
	RunChunk(c int)
}

// A Job runs one parallel loop at a time; keep one per long-lived object
// (its zero value is ready), so that starting a loop allocates nothing. A
// Job is not safe for concurrent use.
type Job struct {
	task Task
	n    int
	next atomic.Int64
	wg   sync.WaitGroup
}

func (j *Job) work() {
	for {
		c := int(j.next.Add(1) - 1)
		if c >= j.n {
			return
		}
		j.task.RunChunk(c)
	}
}

var (
	poolOnce sync.Once
	poolCh   chan *Job
	poolSize int
)

// startPool starts GOMAXPROCS-1 helper goroutines shared by all Jobs; the
// calling goroutine is the last worker.
func startPool() {
	poolSize = runtime.GOMAXPROCS(0) - 1
	poolCh = make(chan *Job)
	for i := 0; i < poolSize; i++ {
		go func() {
			for j := range poolCh {
				j.work()
				j.wg.Done()
			}
		}()
	}
}

// For runs t.RunChunk(c) for c in [0, n), spreading the chunks over the
// idle helpers and the calling goroutine, and returns when all are done.
// Helpers busy with another Job are not waited for: the caller then does
// more of the work itself.
func (j *Job) For(n int, t Task) {
	if n <= 1 {
		for c := 0; c < n; c++ {
			t.RunChunk(c)
		}
		return
	}
	poolOnce.Do(startPool)
	j.task, j.n = t, n
	j.next.Store(0)
	for i := 0; i < min(poolSize, n-1); i++ {
		j.wg.Add(1)
		select {
		case poolCh <- j:
		default: // every helper is busy (another Job): do the work here
			j.wg.Done()
		}
	}
	j.work()
	j.wg.Wait()
	j.task = nil
}

// Split cuts [0, n) into at most workers contiguous ranges of at least
// grain items (grain < 1 means 1) and runs fn(worker, lo, hi) on each, the
// first on the calling goroutine; worker is in [0, workers) and distinct
// per range, so it can index per-worker scratch. The ranges depend on
// workers: fn must compute each item independently of how [0, n) was cut.
// n <= 0 does nothing.
func Split(n, grain, workers int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	w := min(workers, n/grain)
	if w <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	wg.Add(w - 1)
	for i := 1; i < w; i++ {
		go func(i int) {
			defer wg.Done()
			fn(i, i*n/w, (i+1)*n/w)
		}(i)
	}
	fn(0, 0, n/w)
	wg.Wait()
}
