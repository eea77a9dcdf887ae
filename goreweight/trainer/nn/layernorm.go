package nn

import (
	"math"

	"github.com/goreweight/goreweight/goreweight/trainer/nn/internal/fastmath"
)

// LayerNormEps is the variance floor of LayerNorm, PyTorch's default.
const LayerNormEps = 1e-5

// LayerNorm normalises each row of C channels to zero mean and unit variance,
// then applies a per-channel scale and shift:
//
//	out[i,j] = (in[i,j] - mean_i) * rstd_i * W[j] + B[j],
//	rstd_i = 1 / sqrt(var_i + LayerNormEps)   (biased variance).
type LayerNorm struct {
	// W is the scale, shape [C].
	W *Param
	// B is the shift, shape [C].
	B *Param
}

// Forward normalises the n rows of in (n×C) into out (n×C) and stores each
// row's mean and reciprocal standard deviation (n each) for Backward. The
// variance is computed in a second pass around the mean.
func (l *LayerNorm) Forward(out, mean, rstd, in []float32, n int) {
	C := len(l.W.Data)
	w, b := l.W.Data, l.B.Data
	parallelFor(n, 16, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			x := in[i*C : (i+1)*C]
			m := fastmath.Sum(x) / float32(C)
			ss := fastmath.SumSqDev(x, m) // two passes: no cancellation when |mean| >> std
			rs := float32(1 / math.Sqrt(float64(ss)/float64(C)+LayerNormEps))
			fastmath.LNNormalize(out[i*C:(i+1)*C], x, w, b, m, rs)
			mean[i], rstd[i] = m, rs
		}
	})
}

// Backward adds the gradient with respect to in (n×C) to dIn and the
// gradients of W and B to their Grad, given dOut (n×C) and the in, mean and
// rstd of the forward pass. With xhat = (x - mean) * rstd and g = dOut * W,
//
//	dIn  += rstd * (g - mean_j(g) - xhat * mean_j(g * xhat))
//	dW   += sum_i dOut * xhat,   dB += sum_i dOut.
func (l *LayerNorm) Backward(dIn, dOut, in, mean, rstd []float32, n int) {
	C := len(l.W.Data)
	w := l.W.Data
	parallelFor(n, 16, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			x := in[i*C : (i+1)*C]
			d := dOut[i*C : (i+1)*C]
			dx := dIn[i*C : (i+1)*C]
			m, rs := mean[i], rstd[i]
			sg, sgx := fastmath.LNBackwardSums(d, w, x, m) // Σ g, Σ g·(x-m)
			mg := sg / float32(C)
			mgx := sgx * rs / float32(C) // mean_j(g·xhat)
			// dx += (g - mg - xhat·mgx)·rs with xhat·mgx = (x-m)·(rs·mgx)
			fastmath.LNBackwardInput(dx, d, w, x, m, rs, mg, rs*mgx)
		}
	})
	// Parameter gradients sum over rows: split by columns, rows in order.
	dW, dB := l.W.Grad, l.B.Grad
	parallelFor(C, 8, func(_, lo, hi int) {
		gw, gb := dW[lo:hi], dB[lo:hi]
		for i := 0; i < n; i++ {
			fastmath.LNParamGrads(gw, gb, dOut[i*C+lo:i*C+hi], in[i*C+lo:i*C+hi], mean[i], rstd[i])
		}
	})
}
