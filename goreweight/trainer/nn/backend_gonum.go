//go:build !openblas

package nn

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// backendName is reported by Backend.
const backendName = "gonum"

// init selects gonum's pure-Go BLAS. It is blas32's default already; saying so
// keeps the choice explicit and in one place. gonum's Sgemm spreads large
// products over GOMAXPROCS goroutines itself, in a fixed block order, so its
// results do not depend on scheduling.
func init() {
	blas32.Use(gonum.Implementation{})
}
