//go:build !amd64 || purego

package fastmath

// UseSIMD is false: no assembly kernels on this platform or with -tags purego.
var UseSIMD = false

func geluFwdAVX2(out, th, in *float32, n int) { panic("nn: no SIMD kernels") }

func geluBwdAVX2(dIn, dOut, in, th *float32, n int) { panic("nn: no SIMD kernels") }

func expSumAVX2(x *float32, n int, shift float32) float32 { panic("nn: no SIMD kernels") }
