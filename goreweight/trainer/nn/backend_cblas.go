//go:build (openblas || scipyopenblas) && cgo

package nn

// The CBLAS backend: cgo calls straight into an OpenBLAS, two entry points
// (sgemm and sgemv) plus its thread-count setter. Which OpenBLAS is decided
// by the build tag, in one small file each:
//
//   - scipyopenblas (backend_scipyopenblas.go): the scipy-openblas32 wheel
//     from PyPI, whose symbols carry the prefix scipy_ (scipy_cblas_sgemm);
//     `pip install .` builds with it, passing -I, -L and an rpath in
//     CGO_CFLAGS / CGO_LDFLAGS.
//   - openblas (backend_openblas.go): a system libopenblas, unprefixed
//     (Debian/Ubuntu: apt-get install libopenblas-dev).
//
// The prefix is the C macro BLAS_SYMBOL_PREFIX, the same macro
// scipy-openblas.pc puts in its Cflags; unset, it is empty.
//
// Threads: OpenBLAS is pinned to ONE thread per call with
// openblas_set_num_threads(1), which also overrides OPENBLAS_NUM_THREADS. The
// layers already split every product over Threads() goroutines (the
// trainer's --threads: by rows of the output, or by batch-head pairs in
// attention), each calling a single-threaded sgemm, so results are bitwise
// reproducible for a given thread count. Giving OpenBLAS --threads threads as
// well would run threads x threads workers on --threads cores, leave its
// workers spinning while the goroutines run LayerNorm, GELU and softmax, and
// serialise the concurrent calls from attention's goroutines on its lock.

/*
#include <stddef.h>

#ifndef BLAS_SYMBOL_PREFIX
#define BLAS_SYMBOL_PREFIX
#endif
#define GRW_CAT_(a, b) a##b
#define GRW_CAT(a, b) GRW_CAT_(a, b)
#define GRW_SYM(name) GRW_CAT(BLAS_SYMBOL_PREFIX, name)

enum { GRW_ROW_MAJOR = 101, GRW_NO_TRANS = 111, GRW_TRANS = 112 };

void GRW_SYM(cblas_sgemm)(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
void GRW_SYM(cblas_sgemv)(int order, int trans, int m, int n,
	float alpha, const float *a, int lda, const float *x, int incx,
	float beta, float *y, int incy);
void GRW_SYM(openblas_set_num_threads)(int n);
char *GRW_SYM(openblas_get_corename)(void);

static void grw_sgemm(int tA, int tB, int m, int n, int k, float alpha,
	const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
	GRW_SYM(cblas_sgemm)(GRW_ROW_MAJOR, tA ? GRW_TRANS : GRW_NO_TRANS, tB ? GRW_TRANS : GRW_NO_TRANS,
		m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void grw_sgemv_t(int m, int n, float alpha, const float *a, int lda,
	const float *x, float beta, float *y) {
	GRW_SYM(cblas_sgemv)(GRW_ROW_MAJOR, GRW_TRANS, m, n, alpha, a, lda, x, 1, beta, y, 1);
}

static void grw_set_threads(int n) { GRW_SYM(openblas_set_num_threads)(n); }
static const char *grw_corename(void) { return GRW_SYM(openblas_get_corename)(); }
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// backendName is reported by Backend: the library and the CPU kernel set its
// runtime dispatch chose (e.g. "scipy-openblas (Haswell)").
var backendName = fmt.Sprintf("%s (%s)", blasLibrary, C.GoString(C.grw_corename()))

// init pins OpenBLAS to one thread per call (see the file comment).
func init() { C.grw_set_threads(1) }

// cint converts a dimension, which the caller has bounded by a slice length,
// to C's int; a dimension over 2^31-1 cannot be handed to a 32-bit-int BLAS.
func cint(x int) C.int {
	if x > math.MaxInt32 {
		panic(fmt.Sprintf("nn: BLAS dimension %d exceeds the 32-bit integer range", x))
	}
	return C.int(x)
}

func fptr(x []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(x))) }

func bint(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// sgemm checks that every operand slice covers the elements the call reads or
// writes (cblas itself cannot), then calls cblas_sgemm.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	need("A", a, ar, ac, lda)
	need("B", b, br, bc, ldb)
	need("C", c, m, n, ldc)
	C.grw_sgemm(bint(transA), bint(transB), cint(m), cint(n), cint(k), C.float(alpha),
		fptr(a), cint(lda), fptr(b), cint(ldb), C.float(beta), fptr(c), cint(ldc))
}

// sgemvT computes y = alpha*aᵀ·x + beta*y for the m×n row-major a.
func sgemvT(m, n int, alpha float32, a []float32, lda int, x []float32, beta float32, y []float32) {
	need("A", a, m, n, lda)
	if len(x) < m || len(y) < n {
		panic(fmt.Sprintf("nn: sgemv vectors of length %d, %d, need %d, %d", len(x), len(y), m, n))
	}
	C.grw_sgemv_t(cint(m), cint(n), C.float(alpha), fptr(a), cint(lda), fptr(x), C.float(beta), fptr(y))
}

// need panics unless x holds a rows×cols row-major matrix of leading
// dimension ld, as gonum's BLAS does for a short slice.
func need(name string, x []float32, rows, cols, ld int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols || len(x) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("nn: sgemm operand %s: %d elements for %d×%d with leading dimension %d", name, len(x), rows, cols, ld))
	}
}
