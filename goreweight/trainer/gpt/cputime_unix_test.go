//go:build unix

package gpt

import (
	"syscall"
	"time"
)

// processCPUTime returns the user+system CPU time of the process so far, so
// that benchmarks on a shared machine can report CPU cost next to wall time.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
