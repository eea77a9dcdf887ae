//go:build amd64 && !purego

package goreweight

import "github.com/goreweight/goreweight/goreweight/internal/cpu"

// useAVX2 reports whether the CPU and OS support AVX2 and FMA, so that the
// assembly kernels run (goreweight/internal/cpu decides, for the trainer's
// kernels too). Tests switch it off to exercise the pure-Go code.
var useAVX2 = cpu.AVX2FMA

// expVecAVX2 sets dst[i] = e^x[i] for i < len(x) rounded down to a multiple
// of 4, for x[i] <= 0 (and slightly above), 0 for x[i] < -707. It is the
// exponential of expScoresAVX2 (the EXP4 macro): Cody-Waite reduction to
// |t| <= ln2/2, the degree-13 Taylor polynomial of e^t by Estrin's scheme,
// and 2^n by an exponent add; no table. Its relative error is below 1e-15
// on [-707, 0] (TestExpAVX2Accuracy; the worst measured is 5e-16).
// len(dst) >= len(x).
//
//go:noescape
func expVecAVX2(dst, x []float64)

// expScoresAVX2 is pass 2's fast path for a kernel shape (shapeMin,
// shapeQuad, shapeAbs; the strategy's kernel field chooses it and its
// constants, see expKernelParams) on len(ls) rounded down to a multiple of 4:
// z = the exponent of each loss (see the assembly and expKernelParams),
// dst = float32(e^z), and it adds e, e², e·z, e·l into a's lanes and takes
// the lane-wise max and min of z. len(dst) >= len(ls); every loss must be
// finite.
//
//go:noescape
func expScoresAVX2(kind int, dst, ls []float32, p *expParams, a *expAcc)

// scanAVX2 is pass 1's fast loop on len(ls) rounded down to a multiple of 8:
// lane-wise min and max into a.mn, a.mx and a.s[k] += float64(ls[i]) for
// i ≡ k (mod 4), in index order.
//
//go:noescape
func scanAVX2(ls []float32, a *scanAcc)

// scaleAVX2 sets dst[i] = float32(float64(dst[i])·f) for len(dst) rounded
// down to a multiple of 8.
//
//go:noescape
func scaleAVX2(dst []float32, f float64)
