// Package cpu is the one place that decides which vector instructions the
// assembly kernels of goreweight may use: the core's (goreweight/kernels_amd64.s)
// and the trainer's (trainer/nn/internal/fastmath).
//
// It reads golang.org/x/sys/cpu rather than issuing CPUID itself: that
// package is maintained with the Go toolchain, already in the module graph
// (arrow-go and gonum's dependencies use it), checks the OS side (XCR0: the
// OS saves the YMM registers) as well as the CPU's, and replaces two
// hand-written copies of cpuid/xgetbv in assembly.
package cpu

import "golang.org/x/sys/cpu"

// AVX2FMA reports whether the CPU has AVX2 and FMA and the OS saves the
// YMM registers, which every amd64 kernel of goreweight requires. It is
// false on other architectures.
var AVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasAVX
