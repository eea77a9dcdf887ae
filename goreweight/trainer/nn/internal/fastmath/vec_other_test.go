//go:build !amd64 || purego

package fastmath

import (
	"math/rand/v2"
	"testing"
)

// TestFallbackKernels checks the pure-Go stand-ins of the assembly kernels
// against the row operations' scalar loops (UseSIMD is false here, so vec.go
// takes those), element by element.
func TestFallbackKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 2))
	n := 37
	x, y, w, b := randn(r, n, 2), randn(r, n, 1), randn(r, n, 1), randn(r, n, 1)
	m, rs, mg, k := float32(0.3), float32(1.7), float32(0.2), float32(0.4)
	eq := func(what string, got, want float32) {
		t.Helper()
		if got != want {
			t.Errorf("%s: fallback %v, scalar %v", what, got, want)
		}
	}
	eq("sum", sumAVX2(&x[0], n), Sum(x))
	eq("sumsqdev", sumSqDevAVX2(&x[0], n, m), SumSqDev(x, m))
	eq("max", maxAVX2(&x[0], n), Max(x))
	eq("dot", dotAVX2(&x[0], &y[0], n), Dot(x, y))
	sg, sgx := lnBwdSumsAVX2(&y[0], &w[0], &x[0], n, m)
	wsg, wsgx := LNBackwardSums(y, w, x, m)
	eq("lnsums.sg", sg, wsg)
	eq("lnsums.sgx", sgx, wsgx)

	rows := func(f func(a []float32)) []float32 { a := append([]float32(nil), y...); f(a); return a }
	pairs := []struct {
		what      string
		got, want []float32
	}{
		{"scale", rows(func(a []float32) { scaleAVX2(&a[0], n, 1.5) }), rows(func(a []float32) { Scale(a, 1.5) })},
		{"softmaxbwd", rows(func(a []float32) { softmaxBwdAVX2(&a[0], &w[0], n, m) }), rows(func(a []float32) { SoftmaxBackward(a, w, m) })},
		{"lnnorm", rows(func(a []float32) { lnNormAVX2(&a[0], &x[0], &w[0], &b[0], n, m, rs) }), rows(func(a []float32) { LNNormalize(a, x, w, b, m, rs) })},
		{"lnbwdin", rows(func(a []float32) { lnBwdInAVX2(&a[0], &b[0], &w[0], &x[0], n, m, rs, mg, k) }), rows(func(a []float32) { LNBackwardInput(a, b, w, x, m, rs, mg, k) })},
		{"lnparam.gw", rows(func(a []float32) { gb := make([]float32, n); lnParamAVX2(&a[0], &gb[0], &b[0], &x[0], n, m, rs) }), rows(func(a []float32) { LNParamGrads(a, make([]float32, n), b, x, m, rs) })},
	}
	for _, p := range pairs {
		for i := range p.got {
			if p.got[i] != p.want[i] {
				t.Fatalf("%s[%d]: fallback %v, scalar %v", p.what, i, p.got[i], p.want[i])
			}
		}
	}
}
