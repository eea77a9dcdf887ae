package nn

// GELU is the tanh approximation of the Gaussian error linear unit used by
// GPT-2 (PyTorch's gelu(approximate="tanh")):
//
//	gelu(x) = x/2 * (1 + tanh(sqrt(2/π) * (x + 0.044715 x³))).
type GELU struct{}

const (
	geluS = 0.7978845608028654 // sqrt(2/π)
	geluK = 0.044715
)

// geluGrain is the fewest elements worth a goroutine of their own.
const geluGrain = 4096

// Forward writes gelu(in) into out (same length; out may alias in).
func (GELU) Forward(out, in []float32) {
	out = out[:len(in)]
	parallelFor(len(in), geluGrain, func(_, lo, hi int) {
		o, x := out[lo:hi], in[lo:hi]
		for i, v := range x {
			o[i] = 0.5 * v * (1 + tanhf(geluS*(v+geluK*v*v*v)))
		}
	})
}

// Backward adds dOut * gelu'(in) to dIn (same lengths). With
// u = sqrt(2/π)(x + 0.044715x³),
//
//	gelu'(x) = (1 + tanh u)/2 + x/2 * (1 - tanh² u) * sqrt(2/π)(1 + 3·0.044715x²).
func (GELU) Backward(dIn, dOut, in []float32) {
	dIn, dOut = dIn[:len(in)], dOut[:len(in)]
	parallelFor(len(in), geluGrain, func(_, lo, hi int) {
		dx, d, x := dIn[lo:hi], dOut[lo:hi], in[lo:hi]
		for i, v := range x {
			th := tanhf(geluS * (v + geluK*v*v*v))
			g := 0.5*(1+th) + 0.5*v*(1-th*th)*geluS*(1+3*geluK*v*v)
			dx[i] += d[i] * g
		}
	})
}
