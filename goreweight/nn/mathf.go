package nn

import "math"

// expf returns e**x in float32 with a relative error of a few ulp (Cephes'
// expf: range reduction by powers of two and a degree-6 polynomial). It is
// several times faster than converting to float64 for math.Exp, and softmax
// calls it for every attention score and logit. x below about -87.3 gives 0,
// x above about 88.7 gives +Inf; NaN gives NaN.
func expf(x float32) float32 {
	const (
		hi    = 88.72283905206835
		lo    = -87.33654475055310
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	if x != x {
		return x
	}
	if x > hi {
		return float32(math.Inf(1))
	}
	if x < lo {
		return 0
	}
	// n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2].
	fn := x * log2e
	var n int32
	if fn < 0 {
		n = int32(fn - 0.5)
	} else {
		n = int32(fn + 0.5)
	}
	f := float32(n)
	r := x - f*c1 - f*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	// Scale by 2**n in two steps so that n = 128 (x near hi) and n = -126
	// (x near lo) stay representable.
	h := n / 2
	return p * math.Float32frombits(uint32(h+127)<<23) * math.Float32frombits(uint32(n-h+127)<<23)
}

// tanhf returns tanh(x) in float32 with an absolute error below 1e-6 (a
// 13/6 rational approximation on [-7.9, 7.9] as used by Eigen; beyond that
// tanh is ±1 to float32 precision). GELU calls it for every activation.
func tanhf(x float32) float32 {
	const clamp = 7.90531110763549805
	if x != x {
		return x
	}
	if x > clamp {
		x = clamp
	} else if x < -clamp {
		x = -clamp
	}
	if x < 0.0004 && x > -0.0004 {
		return x
	}
	x2 := x * x
	p := float32(-2.76076847742355e-16)
	p = p*x2 + 2.00018790482477e-13
	p = p*x2 + -8.60467152213735e-11
	p = p*x2 + 5.12229709037114e-08
	p = p*x2 + 1.48572235717979e-05
	p = p*x2 + 6.37261928875436e-04
	p = p*x2 + 4.89352455891786e-03
	p *= x
	q := float32(1.19825839466702e-06)
	q = q*x2 + 1.18534705686654e-04
	q = q*x2 + 2.26843463243900e-03
	q = q*x2 + 4.89352518554385e-03
	return p / q
}
