// Package fastmath holds the float32 transcendental functions of the nn
// layers: scalar exp and tanh that are faster than going through float64,
// and AVX2+FMA assembly for the two hot loops (GELU's forward and softmax's
// exponentials) with a pure-Go fallback. It is a separate package because Go
// forbids assembly files in a package that uses cgo, as nn does with the
// OpenBLAS backend.
package fastmath

import "math"

// Expf returns e**x in float32 with a relative error of a few ulp (Cephes'
// expf: range reduction by powers of two and a degree-6 polynomial). It is
// several times faster than converting to float64 for math.Exp, and softmax
// calls it for every attention score and logit. x at or below -87.3 gives 0,
// x above 88 gives +Inf (softmax only calls it with x <= 0); NaN gives NaN.
func Expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
		magic = 12582912 // 1.5 * 2**23: adding it rounds to an integer
	)
	if !(x > -87.3) {
		if x != x {
			return x
		}
		return 0
	}
	if x > 88 {
		return float32(math.Inf(1))
	}
	// n = round(x / ln 2) in [-126, 127], r = x - n ln 2 in [-ln2/2, ln2/2].
	fn := x*log2e + magic
	n := int32(math.Float32bits(fn)) - 0x4B400000
	f := fn - magic
	r := x - f*c1 - f*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(n+127)<<23)
}

// Tanhf returns tanh(x) in float32 with an absolute error below 1e-6 (a
// 13/6 rational approximation on (-7.9, 7.9) as used by Eigen; beyond that
// it returns ±1, tanh to float32 precision). GELU calls it for every activation.
func Tanhf(x float32) float32 {
	const clamp = 7.90531110763549805
	if x != x {
		return x
	}
	if x >= clamp {
		return 1
	} else if x <= -clamp {
		return -1
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
