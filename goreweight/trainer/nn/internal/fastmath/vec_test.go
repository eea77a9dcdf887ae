package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestVecKernelsMatchScalar runs every row operation with and without the
// SIMD kernels on rows of awkward lengths and compares with float64 sums.
func TestVecKernelsMatchScalar(t *testing.T) {
	if !UseSIMD {
		t.Skip("no SIMD kernels on this machine/build")
	}
	restoreSIMD(t)
	r := rand.New(rand.NewPCG(13, 1))
	close := func(what string, n int, got, want float64, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol*(1+math.Abs(want)) {
			t.Fatalf("n=%d %s: got %.9g want %.9g", n, what, got, want)
		}
	}
	for _, n := range []int{1, 5, 8, 9, 16, 31, 128, 385} {
		x, y, w, b := randn(r, n, 2), randn(r, n, 1), randn(r, n, 1), randn(r, n, 1)
		x[n/2] = 7 // a clear maximum
		var s, sxy, ssd, sg, sgx float64
		m := float32(0.3)
		for i := range x {
			s += float64(x[i])
			sxy += float64(x[i]) * float64(y[i])
			ssd += float64(x[i]-m) * float64(x[i]-m)
			g := float64(y[i]) * float64(w[i])
			sg += g
			sgx += g * float64(x[i]-m)
		}
		for _, simd := range []bool{false, true} {
			UseSIMD = simd
			close("Sum", n, float64(Sum(x)), s, 1e-5)
			close("Dot", n, float64(Dot(x, y)), sxy, 1e-5)
			close("SumSqDev", n, float64(SumSqDev(x, m)), ssd, 1e-5)
			if Max(x) != 7 {
				t.Fatalf("n=%d simd=%v: Max = %g", n, simd, Max(x))
			}
			g1, g2 := LNBackwardSums(y, w, x, m)
			close("LNBackwardSums sg", n, float64(g1), sg, 1e-5)
			close("LNBackwardSums sgx", n, float64(g2), sgx, 1e-5)

			sc := append([]float32(nil), x...)
			Scale(sc, 0.5)
			out := make([]float32, n)
			LNNormalize(out, x, w, b, m, 1.7)
			dp := append([]float32(nil), y...)
			SoftmaxBackward(dp, w, 0.25)
			dx := append([]float32(nil), b...)
			LNBackwardInput(dx, y, w, x, m, 1.7, 0.1, 0.3)
			gw, gb := append([]float32(nil), w...), append([]float32(nil), b...)
			LNParamGrads(gw, gb, y, x, m, 1.7)
			for i := range x {
				close("Scale", n, float64(sc[i]), 0.5*float64(x[i]), 1e-7)
				close("LNNormalize", n, float64(out[i]), (float64(x[i])-0.3)*1.7*float64(w[i])+float64(b[i]), 1e-6)
				close("SoftmaxBackward", n, float64(dp[i]), float64(w[i])*(float64(y[i])-0.25), 1e-6)
				wantDx := float64(b[i]) + (float64(y[i])*float64(w[i])-0.1-(float64(x[i])-0.3)*0.3)*1.7
				close("LNBackwardInput", n, float64(dx[i]), wantDx, 1e-6)
				close("LNParamGrads gw", n, float64(gw[i]), float64(w[i])+float64(y[i])*(float64(x[i])-0.3)*1.7, 1e-6)
				close("LNParamGrads gb", n, float64(gb[i]), float64(b[i])+float64(y[i]), 1e-6)
			}
		}
	}
}
