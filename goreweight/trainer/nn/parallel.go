package nn

import (
	"runtime"
	"sync/atomic"

	"github.com/goreweight/goreweight/goreweight/internal/parallel"
)

var threads atomic.Int64

func init() { threads.Store(int64(runtime.GOMAXPROCS(0))) }

// Threads returns the number of goroutines the layers split their work over.
// It defaults to runtime.GOMAXPROCS(0) at start-up.
func Threads() int { return int(threads.Load()) }

// SetThreads sets the number of goroutines the layers split their work over
// and returns the previous value; n < 1 means runtime.GOMAXPROCS(0). Results
// are bitwise reproducible for a fixed thread count; set it before a run, not
// while a layer is executing.
func SetThreads(n int) int {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	return int(threads.Swap(int64(n)))
}

// parallelFor splits [0, n) into at most Threads() contiguous chunks of at
// least grain items and runs fn(worker, lo, hi) on each, the first on the
// calling goroutine (parallel.Split: worker is in [0, Threads()) and
// distinct per chunk, so it can index per-worker scratch space). Chunk
// bounds depend on the thread count: fn must compute each item
// independently of how the range was cut.
func parallelFor(n, grain int, fn func(worker, lo, hi int)) {
	parallel.Split(n, grain, Threads(), fn)
}

// Zero sets every element of x to 0, split over Threads() goroutines. Callers
// use it to reset gradient buffers before a backward pass.
func Zero(x []float32) {
	parallelFor(len(x), 1<<15, func(_, lo, hi int) { clear(x[lo:hi]) })
}
