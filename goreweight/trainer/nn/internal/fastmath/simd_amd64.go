//go:build amd64 && !purego

package fastmath

import "github.com/goreweight/goreweight/goreweight/internal/cpu"

// UseSIMD reports whether the AVX2+FMA kernels of simd_amd64.s run: true
// when the CPU has AVX2 and FMA and the OS saves the YMM registers
// (goreweight/internal/cpu decides, for the core's kernels too). Tests
// turn it off to compare against the scalar code; build with -tags purego
// to never use the assembly.
var UseSIMD = cpu.AVX2FMA

// geluFwdAVX2 is GELU's forward over n elements (n a multiple of 8), storing
// tanh(u) in th.
//
//go:noescape
func geluFwdAVX2(out, th, in *float32, n int)

// geluBwdAVX2 adds dOut * gelu'(in) to dIn for n elements (n a multiple of
// 8), given th = tanh(u) from the forward pass.
//
//go:noescape
func geluBwdAVX2(dIn, dOut, in, th *float32, n int)

// expSumAVX2 replaces x[i] by exp(x[i]-shift) for n elements (n a multiple
// of 8) and returns their sum.
//
//go:noescape
func expSumAVX2(x *float32, n int, shift float32) float32
