//go:build !unix

package gpt

import "time"

// processCPUTime is unavailable here; benchmarks then omit the CPU metric.
func processCPUTime() time.Duration { return 0 }
