package fastmath

// GELU's constants: gelu(x) = x/2 * (1 + tanh(GELUS * (x + GELUK*x³))).
const (
	GELUS = 0.7978845608028654 // sqrt(2/π)
	GELUK = 0.044715
)

// The two transcendental loops of the layers: each uses the AVX2 kernels for
// the bulk when UseSIMD and the scalar Expf/Tanhf otherwise and for the tail.
// Either way a given machine computes the same bits every run.

// GELUForward writes gelu(in) to out and the tanh inside it to th (same
// lengths; th may be nil).
func GELUForward(out, th, in []float32) {
	var buf [512]float32
	for len(in) > 0 {
		n := len(in)
		t := th
		if th == nil {
			n = min(n, len(buf))
			t = buf[:n]
		}
		bulk := 0
		if UseSIMD {
			bulk = n &^ 7
			if bulk > 0 {
				geluFwdAVX2(&out[0], &t[0], &in[0], bulk)
			}
		}
		for i := bulk; i < n; i++ {
			v := in[i]
			u := Tanhf(GELUS * (v + GELUK*v*v*v))
			t[i] = u
			out[i] = 0.5 * v * (1 + u)
		}
		out, in = out[n:], in[n:]
		if th != nil {
			th = th[n:]
		}
	}
}

// GELUBackward adds dOut * gelu'(in) to dIn (same lengths), given the th
// that GELUForward stored. With t = tanh(u),
//
//	gelu'(x) = (1 + t)/2 + x/2 * (1 - t²) * GELUS * (1 + 3·GELUK·x²).
func GELUBackward(dIn, dOut, in, th []float32) {
	n := len(in)
	dIn, dOut, th = dIn[:n], dOut[:n], th[:n]
	bulk := 0
	if UseSIMD {
		bulk = n &^ 7
		if bulk > 0 {
			geluBwdAVX2(&dIn[0], &dOut[0], &in[0], &th[0], bulk)
		}
	}
	for i := bulk; i < n; i++ {
		dIn[i] += dOut[i] * GELUGrad(in[i], th[i])
	}
}

// GELUGrad returns gelu'(x) given t = tanh(GELUS*(x + GELUK*x³)).
func GELUGrad(x, t float32) float32 {
	return 0.5*(1+t) + 0.5*x*(1-t*t)*GELUS*(1+3*GELUK*x*x)
}

// ExpSum replaces x[i] by exp(x[i]-shift), which must be <= 88, and returns
// the float32 sum of the results.
func ExpSum(x []float32, shift float32) float32 {
	var sum float32
	bulk := 0
	if UseSIMD {
		bulk = len(x) &^ 7
		if bulk > 0 {
			sum = expSumAVX2(&x[0], bulk, shift)
		}
	}
	for i := bulk; i < len(x); i++ {
		e := Expf(x[i] - shift)
		x[i] = e
		sum += e
	}
	return sum
}
