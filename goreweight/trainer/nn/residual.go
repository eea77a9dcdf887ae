package nn

// Residual is the skip connection out = a + b.
type Residual struct{}

// residualGrain is the fewest elements worth a goroutine of their own.
const residualGrain = 8192

// Forward writes a + b into out (all the same length).
func (Residual) Forward(out, a, b []float32) {
	out, b = out[:len(a)], b[:len(a)]
	parallelFor(len(a), residualGrain, func(_, lo, hi int) {
		o, x, y := out[lo:hi], a[lo:hi], b[lo:hi]
		for i := range o {
			o[i] = x[i] + y[i]
		}
	})
}

// Backward adds dOut to both dA and dB (all the same length; dA and dB must be
// distinct buffers).
func (Residual) Backward(dA, dB, dOut []float32) {
	dA, dB = dA[:len(dOut)], dB[:len(dOut)]
	parallelFor(len(dOut), residualGrain, func(_, lo, hi int) {
		a, b, d := dA[lo:hi], dB[lo:hi], dOut[lo:hi]
		for i, v := range d {
			a[i] += v
			b[i] += v
		}
	})
}
