package goreweight

import "math"

// expTable[j] = 2^(j/64), j = 0..63, correctly rounded to float64.
var expTable = func() (t [64]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 64)
	}
	return t
}()

// ln2/64 split as hi + lo (the fdlibm split of ln2, divided by 64 exactly):
// hi has 21 trailing zero bits, so n·hi is exact for every |n| < 2^20, and
// hi + lo carries ln2/64 to about 2^-90 relative.
const (
	expLn2Hi = 6.93147180369123816490e-01 / 64
	expLn2Lo = 1.90821492927058770002e-10 / 64
)

const (
	expInvLn2x64 = 64 / math.Ln2
	expShift     = 0x1.8p52 // x + expShift rounds x to an integer
	// expMin is the smallest argument for which expNeg computes a result;
	// below it expNeg returns 0.
	expMin = -707.0
)

// expNeg returns e^x for x <= 0. It is the exponential of the pure-Go
// loops; on amd64 with AVX2 and FMA, pass 2's fast path uses the EXP4
// macro of kernels_amd64.s instead (no table, relative error below 1e-15,
// see expVecAVX2).
//
// Method: x = (64n + j)·ln2/64 + t with |t| <= ln2/128 ≈ 0.0054, then
// e^x = 2^n · 2^(j/64) · p(t) where p is the degree-5 Taylor polynomial of
// e^t. The truncation error is below t^6/720 < 4e-17 and the evaluation
// rounds a few times, so the relative error is below 2e-15 on [-707, 0];
// TestExpNegAccuracy checks that bound against math.Exp.
// For x < -707 it returns 0: such weights are far below the smallest float32
// (about e^-103.3) and could not be represented in the output anyway.
// Callers never pass NaN or +Inf.
func expNeg(x float64) float64 {
	if x < expMin {
		return 0
	}
	nf := (x*expInvLn2x64 + expShift) - expShift // round(x·64/ln2), exact integer
	t := (x - nf*expLn2Hi) - nf*expLn2Lo
	p := 1 + t*(1+t*(0.5+t*(1.0/6+t*(1.0/24+t*(1.0/120)))))
	n := int64(nf)
	j := n & 63
	e := n >> 6 // floor(n/64): n = 64e + j
	return math.Float64frombits(math.Float64bits(expTable[j]*p) + uint64(e)<<52)
}

// expBlock sets e[j] = expNeg(z[j]) for every j; it is expNeg's loop
// written out so that the compiler keeps everything in registers.
// len(e) must be >= len(z).
func expBlock(e, z []float64) {
	e = e[:len(z)]
	for j, x := range z {
		if x < expMin {
			e[j] = 0
			continue
		}
		nf := (x*expInvLn2x64 + expShift) - expShift
		t := (x - nf*expLn2Hi) - nf*expLn2Lo
		p := 1 + t*(1+t*(0.5+t*(1.0/6+t*(1.0/24+t*(1.0/120)))))
		n := int64(nf)
		e[j] = math.Float64frombits(math.Float64bits(expTable[n&63]*p) + uint64(n>>6)<<52)
	}
}
