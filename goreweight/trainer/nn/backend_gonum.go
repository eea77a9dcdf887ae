//go:build !openblas && !scipyopenblas

package nn

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// backendName is reported by Backend.
const backendName = "gonum"

// impl is gonum's pure-Go BLAS. Its Sgemm spreads large products over
// GOMAXPROCS goroutines itself, in a fixed block order, so its results do not
// depend on scheduling.
var impl gonum.Implementation

func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	impl.Sgemm(trans(transA), trans(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func sgemvT(m, n int, alpha float32, a []float32, lda int, x []float32, beta float32, y []float32) {
	impl.Sgemv(blas.Trans, m, n, alpha, a, lda, x, 1, beta, y, 1)
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}
