//go:build openblas && !scipyopenblas && cgo

package nn

// A system OpenBLAS, unprefixed symbols (Debian/Ubuntu: apt-get install
// libopenblas-dev). See backend_cblas.go.

// #cgo LDFLAGS: -lopenblas
import "C"

const blasLibrary = "openblas"
