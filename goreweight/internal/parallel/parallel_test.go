package parallel

import (
	"sync/atomic"
	"testing"
)

type countTask struct{ hits []atomic.Int32 }

func (t *countTask) RunChunk(c int) { t.hits[c].Add(1) }

// TestForRunsEachChunkOnce: every chunk exactly once, for any n, also with
// two Jobs running at the same time, and without allocating.
func TestForRunsEachChunkOnce(t *testing.T) {
	var j, k Job
	for _, n := range []int{0, 1, 2, 7, 100} {
		a, b := &countTask{hits: make([]atomic.Int32, n)}, &countTask{hits: make([]atomic.Int32, n)}
		done := make(chan struct{})
		go func() { k.For(n, b); close(done) }()
		j.For(n, a)
		<-done
		for c := range n {
			if a.hits[c].Load() != 1 || b.hits[c].Load() != 1 {
				t.Fatalf("n=%d: chunk %d ran %d and %d times", n, c, a.hits[c].Load(), b.hits[c].Load())
			}
		}
	}
	task := &countTask{hits: make([]atomic.Int32, 64)}
	if a := testing.AllocsPerRun(10, func() { j.For(64, task) }); a != 0 {
		t.Fatalf("For allocates %v times", a)
	}
}

// TestSplitCoversTheRange: the ranges tile [0, n) in order, with distinct
// workers, at most workers of them, each at least grain long.
func TestSplitCoversTheRange(t *testing.T) {
	for _, c := range []struct{ n, grain, workers int }{{0, 1, 4}, {1, 1, 4}, {10, 3, 4}, {100, 1, 7}, {100, 200, 8}, {5, 0, 2}} {
		got := make([][2]int, c.workers+1)
		var calls atomic.Int32
		Split(c.n, c.grain, c.workers, func(w, lo, hi int) {
			calls.Add(1)
			got[w] = [2]int{lo, hi}
		})
		k := int(calls.Load())
		if c.n == 0 {
			if k != 0 {
				t.Fatalf("%+v: %d calls for an empty range", c, k)
			}
			continue
		}
		if k < 1 || k > max(c.workers, 1) {
			t.Fatalf("%+v: %d ranges", c, k)
		}
		next := 0
		for w := 0; w < k; w++ {
			lo, hi := got[w][0], got[w][1]
			if lo != next || hi <= lo || (k > 1 && hi-lo < max(c.grain, 1)) {
				t.Fatalf("%+v: range %d = [%d, %d)", c, w, lo, hi)
			}
			next = hi
		}
		if next != c.n {
			t.Fatalf("%+v: ranges end at %d", c, next)
		}
	}
}
