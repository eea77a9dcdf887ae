package goreweight

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// chunkSize is the number of samples one worker handles at a time. The
// partition, and so every float64 sum, depends only on M: results are
// identical whatever the number of threads.
const chunkSize = 16384

// chunkTask is work split into numbered chunks.
type chunkTask interface{ runChunk(c int) }

// parJob is one parallel loop; each Weigher owns one, so starting a loop
// allocates nothing.
type parJob struct {
	task chunkTask
	n    int
	next atomic.Int64
	wg   sync.WaitGroup
}

func (j *parJob) work() {
	for {
		c := int(j.next.Add(1) - 1)
		if c >= j.n {
			return
		}
		j.task.runChunk(c)
	}
}

var (
	poolOnce sync.Once
	poolCh   chan *parJob
	poolSize int
)

// startPool starts GOMAXPROCS-1 helper goroutines shared by all Weighers;
// the calling goroutine is the last worker.
func startPool() {
	poolSize = runtime.GOMAXPROCS(0) - 1
	poolCh = make(chan *parJob)
	for i := 0; i < poolSize; i++ {
		go func() {
			for j := range poolCh {
				j.work()
				j.wg.Done()
			}
		}()
	}
}

// parallelFor runs t.runChunk(c) for c in [0, n), spreading the chunks over
// the idle helpers and the calling goroutine, and returns when all are done.
func (j *parJob) parallelFor(n int, t chunkTask) {
	if n <= 1 {
		for c := 0; c < n; c++ {
			t.runChunk(c)
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
		default: // every helper is busy (another Weigher): do the work here
			j.wg.Done()
		}
	}
	j.work()
	j.wg.Wait()
	j.task = nil
}
