package goreweight

import "math"

// Vector kernels. On amd64 with AVX2 and FMA (useAVX2), passes 1 to 3 of
// Weigher.Weights run in assembly (kernels_amd64.s) for the bulk of each
// chunk; the pure-Go loops handle the rest of a chunk, every slow path
// (non-finite losses, domains, multipliers, selectors, user strategies),
// and other CPUs. The chunk partition is unchanged, so results stay
// identical for any thread count on a given machine.

// expParams are the normalisation and score constants of pass 2, each
// broadcast to 4 lanes; the layout is fixed by kernels_amd64.s.
type expParams struct {
	lmin, sc, d, sup, invR, shift [4]float64
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
