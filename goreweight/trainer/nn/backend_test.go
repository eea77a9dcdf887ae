package nn

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestBackendName checks that Backend names the implementation the build
// tags selected (wantBackend comes from the tag-specific test file).
func TestBackendName(t *testing.T) {
	if b := Backend(); !strings.HasPrefix(b, wantBackend) {
		t.Fatalf("Backend() = %q, want it to start with %q", b, wantBackend)
	}
	t.Logf("backend %s, %d threads", Backend(), Threads())
}

// naiveGemm is the textbook triple loop in float64, the oracle for gemm.
func naiveGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float32 {
	out := append([]float32(nil), c...)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				ai, bi := i*lda+p, p*ldb+j
				if transA {
					ai = p*lda + i
				}
				if transB {
					bi = j*ldb + p
				}
				av, bv := a[ai], b[bi]
				s += float64(av) * float64(bv)
			}
			out[i*ldc+j] = float32(float64(alpha)*s + float64(beta)*float64(c[i*ldc+j]))
		}
	}
	return out
}

// TestGemmMatchesNaive checks gemm, matmul and colSums against the triple
// loop for every transpose combination, with leading dimensions wider than
// the operands (as attention uses them) and entries past them left alone.
func TestGemmMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	m, n, k := 37, 29, 45
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			ar, ac := m, k
			if tA {
				ar, ac = k, m
			}
			br, bc := k, n
			if tB {
				br, bc = n, k
			}
			lda, ldb, ldc := ac+3, bc+5, n+7
			a, b, c := fill((ar-1)*lda+ac), fill((br-1)*ldb+bc), fill((m-1)*ldc+n)
			want := naiveGemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, c, ldc)
			for _, f := range []struct {
				name string
				fn   func(bool, bool, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)
			}{{"gemm", gemm}, {"matmul", matmul}} {
				got := append([]float32(nil), c...)
				f.fn(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, got, ldc)
				for i := range got {
					if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("%s transA=%v transB=%v: element %d (row %d, col %d) = %g, want %g",
							f.name, tA, tB, i, i/ldc, i%ldc, got[i], want[i])
					}
				}
			}
		}
	}
	// colSums: y += aᵀ·1 over an m×n block with leading dimension n+2.
	a := fill((m-1)*(n+2) + n)
	y := fill(n)
	want := append([]float32(nil), y...)
	for j := 0; j < n; j++ {
		var s float64
		for i := 0; i < m; i++ {
			s += float64(a[i*(n+2)+j])
		}
		want[j] = float32(float64(want[j]) + s)
	}
	colSums(y, a, m, n, n+2)
	for j := range y {
		if math.Abs(float64(y[j]-want[j])) > 1e-4*(1+math.Abs(float64(want[j]))) {
			t.Fatalf("colSums[%d] = %g, want %g", j, y[j], want[j])
		}
	}
}
