//go:build !amd64 || purego

package fastmath

import "unsafe"

// UseSIMD is false: no assembly kernels on this platform or with -tags
// purego. The functions below are the kernels' pure-Go fallbacks, with the
// contracts of simd_amd64.go (the gonum internal/asm habit: same names,
// chosen by build tag), so every call site builds and is correct anywhere.
var UseSIMD = false

// geluFwdAVX2 is GELU's forward over n elements, storing tanh(u) in th.
func geluFwdAVX2(out, th, in *float32, n int) {
	o, t, x := unsafe.Slice(out, n), unsafe.Slice(th, n), unsafe.Slice(in, n)
	for i, v := range x {
		u := Tanhf(GELUS * (v + GELUK*v*v*v))
		t[i] = u
		o[i] = 0.5 * v * (1 + u)
	}
}

// geluBwdAVX2 adds dOut * gelu'(in) to dIn for n elements, given th =
// tanh(u) from the forward pass.
func geluBwdAVX2(dIn, dOut, in, th *float32, n int) {
	d, g, x, t := unsafe.Slice(dIn, n), unsafe.Slice(dOut, n), unsafe.Slice(in, n), unsafe.Slice(th, n)
	for i := range d {
		d[i] += g[i] * GELUGrad(x[i], t[i])
	}
}

// expSumAVX2 replaces x[i] by exp(x[i]-shift) for n elements and returns
// their sum.
func expSumAVX2(x *float32, n int, shift float32) float32 {
	var sum float32
	v := unsafe.Slice(x, n)
	for i := range v {
		v[i] = Expf(v[i] - shift)
		sum += v[i]
	}
	return sum
}
