package nn

import "math"

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
// row's mean and reciprocal standard deviation (n each) for Backward.
// Row statistics are accumulated in float64.
func (l *LayerNorm) Forward(out, mean, rstd, in []float32, n int) {
	C := len(l.W.Data)
	w, b := l.W.Data, l.B.Data
	parallelFor(n, 16, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			x := in[i*C : (i+1)*C]
			o := out[i*C : (i+1)*C]
			var s float64
			for _, v := range x {
				s += float64(v)
			}
			m := s / float64(C)
			var ss float64
			for _, v := range x {
				d := float64(v) - m
				ss += d * d
			}
			rs := float32(1 / math.Sqrt(ss/float64(C)+LayerNormEps))
			mf := float32(m)
			for j := range o {
				o[j] = (x[j]-mf)*rs*w[j] + b[j]
			}
			mean[i], rstd[i] = mf, rs
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
			var sg, sgx float64
			for j, v := range x {
				g := d[j] * w[j]
				sg += float64(g)
				sgx += float64(g * (v - m) * rs)
			}
			mg := float32(sg / float64(C))
			mgx := float32(sgx / float64(C))
			for j, v := range x {
				xhat := (v - m) * rs
				dx[j] += (d[j]*w[j] - mg - xhat*mgx) * rs
			}
		}
	})
	// Parameter gradients sum over rows: split by columns, rows in order.
	dW, dB := l.W.Grad, l.B.Grad
	parallelFor(C, 8, func(_, lo, hi int) {
		gw, gb := dW[lo:hi], dB[lo:hi]
		for i := 0; i < n; i++ {
			x := in[i*C+lo : i*C+hi]
			d := dOut[i*C+lo : i*C+hi]
			m, rs := mean[i], rstd[i]
			for j, v := range x {
				gw[j] += d[j] * (v - m) * rs
				gb[j] += d[j]
			}
		}
	})
}
