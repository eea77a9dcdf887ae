package goreweight

import (
	"math"
	"slices"
)

// capWeights replaces the unnormalised weights in w.dst by the KL
// projection of the softmax weights onto the capped simplex
// {w : Σw = 1, 0 <= w_i <= T}, T = Cap/valid.
//
// The projection is w_i = min(T, λ·e_i) with λ chosen so that Σw = 1; the
// capped samples are the k largest. It is computed in log space, so that
// it is defined for every r > 0: with g_i = log e_i (the exponent of pass
// 2, in float64) sorted in decreasing order, k is the smallest count for
// which log λ_k + g_(k) <= log T, where log λ_k = log(1 - k·T) - LSE_k and
// LSE_k = log Σ_{j>=k} e^g_(j) is accumulated from the smallest up with a
// running shift (no exponential under- or overflows, however small r is).
// Samples with e_i = 0 exactly (g_i = -Inf: a multiplier of 0, a sample a
// selector drops) stay at 0: their KL cost is infinite otherwise. So the
// cap is infeasible when fewer than valid/Cap samples can have a positive
// weight; that is an error. Cap = 1 gives exactly uniform weights.
func (w *Weigher) capWeights(valid int) error {
	dst := w.dst
	M := len(dst)
	T := w.opts.Cap / float64(valid)
	if cap(w.e64) < M {
		w.e64 = make([]float64, M)
		w.suf = make([]float64, M)
		w.cidx = make([]int32, M)
	}
	g, suf := w.e64[:M], w.suf[:M]
	w.logWeights(g)
	order := w.cidx[:0]
	for i, v := range g {
		if v > negInf {
			order = append(order, int32(i))
		}
	}
	npos := len(order)
	if float64(npos)*T < 1-1e-9 {
		return invalidf("goreweight: cap %v is infeasible: only %d of %d samples have a nonzero weight, and %d·%v/%d < 1", w.opts.Cap, npos, valid, npos, w.opts.Cap, valid)
	}
	// Decreasing g, ties by index: deterministic.
	slices.SortFunc(order, func(a, b int32) int {
		switch {
		case g[a] > g[b]:
			return -1
		case g[a] < g[b]:
			return 1
		}
		return int(a - b)
	})
	// suf[k] = LSE_k - g_(k) = log Σ_{j>=k} e^(g_(j) - g_(k)) >= 0, from
	// the smallest up. Relative to g_(k), so that it keeps its precision
	// when |g| is huge (r tiny): LSE_k itself would absorb it.
	m, sum := negInf, 0.0
	for k := npos - 1; k >= 0; k-- {
		v := g[order[k]]
		sum = sum*math.Exp(m-v) + 1 // m <= v
		m = v
		suf[k] = math.Log(sum)
	}
	// k is the smallest j with λ_j·e_(j) <= T, i.e. rest_j <= T·e^suf[j];
	// it exists (j = npos-1 gives rest <= T by feasibility), so the
	// fallback k = npos (every positive weight at the cap) only catches
	// rounding and the exactly feasible case npos·T = 1 (Cap = 1: uniform).
	logT := math.Log(T)
	k, logRest, gk := len(order), 0.0, 0.0 // λ·e_i = e^(logRest + g_i - gk)
	if float64(npos)*T <= 1+1e-12 {
		npos = 0
	}
	for j := 0; j < npos; j++ {
		rest := 1 - float64(j)*T
		if rest <= 0 {
			break
		}
		if lr := math.Log(rest) - suf[j]; lr <= logT {
			k, logRest, gk = j, lr, g[order[j]]
			break
		}
	}
	t32 := float32(T)
	if float64(t32) > T {
		t32 = math.Nextafter32(t32, 0)
	}
	clear(dst)
	for j, i := range order {
		if j < k {
			dst[i] = t32
		} else {
			dst[i] = min(float32(math.Exp(logRest+(g[i]-gk))), t32)
		}
	}
	w.stats.Capped = k
	return nil
}

// logWeights sets g[i] to the log of the unnormalised weight of sample i in
// float64, the exponent of pass 2 (-Inf for a non-finite loss and for a
// weight that is exactly 0).
func (w *Weigher) logWeights(g []float64) {
	zb := &w.blocks[0][0]
	M := len(w.losses)
	for b := 0; b < M; b += blockSize {
		z := zb[:min(blockSize, M-b)]
		w.scores(z, b)
		for j, zj := range z {
			i := b + j
			if zj != zj {
				g[i] = negInf
				continue
			}
			lz := zj - w.shift
			if w.logMult != nil {
				lz += w.logMult[w.domains[i]]
			}
			g[i] = lz
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
			w.dacc[0][w.didx[i]].esum += x
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
