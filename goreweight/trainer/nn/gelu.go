package nn

import "github.com/goreweight/goreweight/goreweight/trainer/nn/internal/fastmath"

// GELU is the tanh approximation of the Gaussian error linear unit used by
// GPT-2 (PyTorch's gelu(approximate="tanh")):
//
//	gelu(x) = x/2 * (1 + tanh(sqrt(2/π) * (x + 0.044715 x³))).
type GELU struct{}

const (
	geluS = fastmath.GELUS
	geluK = fastmath.GELUK
)

// geluGrain is the fewest elements worth a goroutine of their own.
const geluGrain = 4096

// Forward writes gelu(in) into out (same length; out may alias in). If
// tanhU is not nil it receives tanh(u) for every element, which spares
// Backward the most expensive part of the derivative.
func (GELU) Forward(out, tanhU, in []float32) {
	out = out[:len(in)]
	parallelFor(len(in), geluGrain, func(_, lo, hi int) {
		var th []float32
		if tanhU != nil {
			th = tanhU[lo:hi]
		}
		fastmath.GELUForward(out[lo:hi], th, in[lo:hi])
	})
}

// Backward adds dOut * gelu'(in) to dIn (same lengths), given the forward
// input and, if not nil, the tanhU that Forward stored. With
// u = sqrt(2/π)(x + 0.044715x³),
//
//	gelu'(x) = (1 + tanh u)/2 + x/2 * (1 - tanh² u) * sqrt(2/π)(1 + 3·0.044715x²).
func (GELU) Backward(dIn, dOut, in, tanhU []float32) {
	dIn, dOut = dIn[:len(in)], dOut[:len(in)]
	parallelFor(len(in), geluGrain, func(_, lo, hi int) {
		if tanhU != nil {
			fastmath.GELUBackward(dIn[lo:hi], dOut[lo:hi], in[lo:hi], tanhU[lo:hi])
			return
		}
		dx, d, x := dIn[lo:hi], dOut[lo:hi], in[lo:hi]
		for i, v := range x {
			th := fastmath.Tanhf(geluS * (v + geluK*v*v*v))
			dx[i] += d[i] * fastmath.GELUGrad(v, th)
		}
	})
}
