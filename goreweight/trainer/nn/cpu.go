package nn

import "github.com/goreweight/goreweight/goreweight/trainer/nn/internal/fastmath"

// SIMD reports whether the layers' AVX2+FMA assembly kernels run: amd64 with
// AVX2, FMA and OS support for the YMM registers, and not built with -tags
// purego. Other trainer packages (optim) gate their own AVX kernels on it.
func SIMD() bool { return fastmath.UseSIMD }
