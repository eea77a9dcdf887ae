//go:build scipyopenblas && cgo

package nn

// The scipy-openblas32 wheel from PyPI (the OpenBLAS that numpy and scipy
// wheels use: DYNAMIC_ARCH, 32-bit integers, symbols prefixed scipy_). Its
// include and lib directories are not on any default path, so the build
// passes them in the environment, e.g. (what setup.py does):
//
//	d=$(python -c 'import scipy_openblas32 as s; print(s.get_lib_dir())')
//	CGO_CFLAGS="-I$(dirname $d)/include" CGO_LDFLAGS="-L$d -Wl,-rpath,$d" \
//	  go build -tags scipyopenblas ./...
//
// See backend_cblas.go.

// #cgo CFLAGS: -DBLAS_SYMBOL_PREFIX=scipy_
// #cgo LDFLAGS: -lscipy_openblas
import "C"

const blasLibrary = "scipy-openblas"
