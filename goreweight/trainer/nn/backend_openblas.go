//go:build openblas && cgo

package nn

// The OpenBLAS backend: gonum's netlib cblas bindings linked against
// libopenblas (Debian/Ubuntu: apt-get install libopenblas-dev).
//
// Threads: OpenBLAS is pinned to ONE thread per call with
// openblas_set_num_threads(1), which also overrides OPENBLAS_NUM_THREADS. The
// layers already split every product over Threads() goroutines (by rows of the
// output, or by batch-head pairs in attention), each calling a single-threaded
// sgemm. Letting OpenBLAS start its own pool as well would oversubscribe the
// cores and leave its workers spinning while the goroutines run LayerNorm,
// GELU, softmax and the rest; and nested sgemm calls from several goroutines
// into a threaded OpenBLAS serialise on its internal lock.

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int num_threads);
*/
import "C"

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/netlib/blas/netlib"
)

// backendName is reported by Backend.
const backendName = "openblas"

// init routes blas32 to OpenBLAS, single-threaded per call.
func init() {
	C.openblas_set_num_threads(1)
	blas32.Use(netlib.Implementation{})
}
