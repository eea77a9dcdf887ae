package nn

import "sync"

// Backend names the BLAS implementation behind the matrix products: "gonum"
// (pure Go, the default build), or, for a cgo build with -tags scipyopenblas
// or -tags openblas, "scipy-openblas (K)" or "openblas (K)" where K is the
// CPU kernel set OpenBLAS chose at load time (e.g. Haswell, SkylakeX).
func Backend() string { return backendName }

// gemm computes C = alpha*op(A)*op(B) + beta*C on the calling goroutine, where
// op(A) is m×k, op(B) is k×n and C is m×n, all row-major with leading
// dimensions lda, ldb, ldc. Together with colSums it is the only place that calls BLAS.
func gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// colSums adds the column sums of the m×n row-major matrix a (leading
// dimension lda) to y (length n), as the matrix-vector product y += aᵀ·1.
func colSums(y []float32, a []float32, m, n, lda int) {
	if m == 0 || n == 0 {
		return
	}
	sgemvT(m, n, 1, a, lda, onesOf(m), 1, y)
}

// ones is a read-only vector of ones shared by colSums; it only ever grows,
// by replacement, so a slice handed out stays valid.
var (
	onesMu sync.Mutex
	ones   []float32
)

func onesOf(n int) []float32 {
	onesMu.Lock()
	defer onesMu.Unlock()
	if len(ones) < n {
		o := make([]float32, max(n, 2*len(ones)))
		for i := range o {
			o[i] = 1
		}
		ones = o
	}
	return ones[:n]
}

// matmul is gemm with the m rows of C split into contiguous blocks, one per
// goroutine. Every element of C is computed by one sgemm call over the full k,
// so the split never changes a reduction order inside the call.
func matmul(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	parallelFor(m, gemmRowGrain, func(_, lo, hi int) {
		aOff := lo * lda // rows of A
		if transA {
			aOff = lo // columns of A
		}
		gemm(transA, transB, hi-lo, n, k, alpha, a[aOff:], lda, b, ldb, beta, c[lo*ldc:], ldc)
	})
}

// gemmRowGrain is the fewest rows of C worth a goroutine of their own.
const gemmRowGrain = 16
