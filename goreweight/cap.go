package goreweight

import (
	"math"
)

// capWeights replaces the unnormalised weights in w.dst by the KL
// projection of the softmax weights onto the capped simplex
// {w : Σw = 1, 0 <= w_i <= T}, T = Cap/valid.
//
// The projection is w_i = min(T, λ·e_i) with λ chosen so that Σw = 1: clip
// the weights above the cap and rescale the rest, repeatedly. Once capped a
// weight stays capped (λ only grows), so at most M rounds are needed; in
// practice 1-3. Samples with e_i = 0 stay at 0 (their KL cost is infinite
// otherwise), so the cap is infeasible when fewer than valid/Cap samples
// have a positive weight; that is an error.
func (w *Weigher) capWeights(valid int) error {
	dst := w.dst
	M := len(dst)
	T := w.opts.Cap / float64(valid)
	if cap(w.e64) < M {
		w.e64 = make([]float64, M)
		w.capped = make([]bool, M)
	}
	capped, e64 := w.capped[:M], w.e64[:M]
	clear(capped)
	// The projection rescales small weights by large factors, so it works on
	// float64 exponentials: the float32 ones in dst may be subnormal.
	w.exp64(e64)
	npos := 0
	for _, e := range e64 {
		if e > 0 {
			npos++
		}
	}
	if float64(npos)*T < 1-1e-9 {
		return invalidf("goreweight: cap %v is infeasible: only %d of %d samples have a nonzero weight, and %d·%v/%d < 1", w.opts.Cap, npos, valid, npos, w.opts.Cap, valid)
	}
	nc := 0
	lambda := 0.0
	for nc < npos {
		var rest float64
		for i, e := range e64 {
			if !capped[i] {
				rest += e
			}
		}
		lambda = (1 - float64(nc)*T) / rest
		newly := 0
		for i, e := range e64 {
			if !capped[i] && e > 0 && lambda*e > T {
				capped[i] = true
				newly++
			}
		}
		if newly == 0 {
			break
		}
		nc += newly
	}
	t32 := float32(T)
	if float64(t32) > T {
		t32 = math.Nextafter32(t32, 0)
	}
	for i, e := range e64 {
		if capped[i] {
			dst[i] = t32
		} else {
			dst[i] = min(float32(lambda*e), t32)
		}
	}
	w.stats.Capped = nc
	return nil
}

// exp64 sets e[i] to the unnormalised weight of sample i in float64, with
// the same exponent as pass 2 (0 for a non-finite loss).
func (w *Weigher) exp64(e []float64) {
	zb := &w.blocks[0][0]
	M := len(w.losses)
	for b := 0; b < M; b += blockSize {
		z := zb[:min(blockSize, M-b)]
		w.scores(z, b)
		for j, zj := range z {
			i := b + j
			if zj != zj {
				e[i] = 0
				continue
			}
			lz := zj - w.shift
			if w.logMult != nil {
				lz += w.logMult[w.domains[i]]
			}
			e[i] = expNeg(lz)
		}
	}
}

// finalStats computes the weight statistics from the final weights in
// w.dst, for the capped path where they are not a plain softmax.
func (w *Weigher) finalStats(valid int) {
	st := &w.stats
	var s2, ent, sl float64
	wmax, wmin := 0.0, math.Inf(1)
	nc := len(w.parts)
	for c := 0; c < nc && w.ndom > 0; c++ {
		for d := range w.dacc[c] {
			w.dacc[c][d].esum = 0
		}
	}
	for i, v := range w.dst {
		l := w.losses[i]
		if !finite32(l) {
			continue
		}
		x := float64(v)
		s2 += x * x
		if x > 0 {
			ent -= x * math.Log(x)
		}
		sl += x * float64(l)
		wmax, wmin = max(wmax, x), min(wmin, x)
		if w.ndom > 0 {
			w.dacc[0][w.domains[i]].esum += x
		}
	}
	fv := float64(valid)
	st.MaxWM, st.MinWM = wmax*fv, wmin*fv
	st.ESS = 1 / s2
	st.ESSFrac = st.ESS / fv
	st.Entropy = ent
	st.Weighted = sl
	w.domainStats(nc, 1, valid)
}
