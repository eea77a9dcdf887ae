package goreweight

import "math"

// Vector kernels. On amd64 with AVX2 and FMA (useAVX2), passes 1 to 3 of
// Weigher.Weights run in assembly (kernels_amd64.s) for the bulk of each
// chunk; the pure-Go loops handle the rest of a chunk, every slow path
// (non-finite losses, domains, multipliers, selectors, user strategies),
// and other CPUs. The chunk partition is unchanged, so results stay
// identical for any thread count on a given machine.

// expParams are the constants of pass 2's vector kernel, each broadcast to
// 4 lanes (see expKernelParams); the layout is fixed by kernels_amd64.s.
type expParams struct {
	lmin, a, b, c, invR [4]float64
}

// expAcc holds pass 2's per-lane sums; the layout is fixed by
// kernels_amd64.s.
type expAcc struct {
	s, s2, el, sl, zmax, zmin [4]float64
}

// scanAcc holds pass 1's lane-wise min, max and the four sum chains; the
// layout is fixed by kernels_amd64.s.
type scanAcc struct {
	mn, mx [8]float32
	s      [4]float64
}

func bcast(v float64) [4]float64 { return [4]float64{v, v, v, v} }

// sum4 adds four lanes in a fixed order.
func sum4(v *[4]float64) float64 { return (v[0] + v[1]) + (v[2] + v[3]) }

func max4(v *[4]float64) float64 { return max(max(v[0], v[1]), max(v[2], v[3])) }
func min4(v *[4]float64) float64 { return min(min(v[0], v[1]), min(v[2], v[3])) }

var inf = math.Inf(1)

// expKernelParams gives expScoresAVX2 the shape and constants of the
// Weigher's built-in strategy, as its kernel field folds them: the
// normalisation, the score, the shift by the supremum and the temperature
// become one FMA, x = (l - lmin)·A + B, and one of the three shapes
// (shapeMin, shapeQuad, shapeAbs).
//
// The folded forms round differently from the pure-Go loop, by a few ulps
// of terms of size ~δ/r: relative weight differences ~1e-16·δ/r, far below
// the 1e-6 contract. Scores never exceed their supremum, so z <= 0; the
// clamps keep rounding from pushing z above 0. ok is false for a tiny r
// (below 1e-6·max(δ, 1)), for a strategy without a kernel and in the
// rescue pass; the pure-Go loop then runs.
func (w *Weigher) expKernelParams() (kind int, p expParams, ok bool) {
	if w.rescue || w.kind != kindBuiltin || w.bi.kernel == nil {
		// The rescue pass shifts by the maximum exponent as the pure-Go loop
		// computes it; it is rare, so it runs in Go.
		return 0, p, false
	}
	invR, d := w.invR, w.opts.Delta
	kind, A, B, C := w.bi.kernel(w.scale*d, invR, d) // x = q·(scale·δ) - δ; an overflow fails the check below
	// The exponents' absolute rounding error is a few ulps of δ/r: keep it
	// below 1e-9, so that weights stay within 1e-8 relative of the pure-Go
	// loop's (and A finite: a tiny spread makes sc huge). Smaller r runs in Go.
	if !(max(d, 1)*invR <= 1e6 && abs(A) < 1e300) {
		return 0, p, false
	}
	return kind, expParams{lmin: bcast(w.lmin), a: bcast(A), b: bcast(B), c: bcast(C), invR: bcast(invR)}, true
}
