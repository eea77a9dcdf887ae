package goreweight

// The scores: the exponent (score - sup)/r of each sample, from the
// strategy (a built-in's own formula, a selector's ranks, or a user
// strategy's scores), as passes 2 and the cap read them.

import (
	"math"
)

// scores sets z[j] for samples lo+j: the exponent (score - sup)/r, NaN for a
// non-finite loss, -Inf for a sample with weight 0.
func (w *Weigher) scores(z []float64, lo int) {
	ls := w.losses[lo : lo+len(z)]
	lmin, sc, invR, sup := w.lmin, w.scale, w.invR, w.sup
	d := w.opts.Delta
	switch {
	case w.uniform:
		for j, l := range ls {
			z[j] = 0
			if !finite32(l) {
				z[j] = nan
			}
		}
		return
	case w.kind == kindBuiltin:
		// The strategy's own formula, on a block of normalised losses.
		for j, l := range ls {
			z[j] = ((float64(l)-lmin)*sc - 1) * d // x, in [-δ, δ]
		}
		w.bi.score(z, z, d)
		for j, s := range z {
			z[j] = (s - sup) * invR
		}
	case w.kind == kindSelect:
		for j := range ls {
			z[j] = negInf
			if w.keep[lo+j] {
				z[j] = 0
			}
		}
	case w.kind == kindCustom:
		for j, s := range w.ss[lo : lo+len(z)] {
			z[j] = (s - sup) * invR
		}
	}
	if w.bad == 0 {
		return
	}
	for j, l := range ls {
		if !finite32(l) {
			z[j] = nan
		}
	}
}

// selectSamples marks the samples a selector strategy keeps.
func (w *Weigher) selectSamples(valid int) {
	M := len(w.losses)
	if cap(w.keep) < M {
		w.keep = make([]bool, M)
		w.idx = make([]int32, M)
	}
	w.keep = w.keep[:M]
	clear(w.keep)
	idx := w.idx[:0]
	for i, l := range w.losses {
		if finite32(l) {
			idx = append(idx, int32(i))
		}
	}
	selectRank(w.keep, w.losses, idx, w.sel.count(w.opts.Q, valid), w.sel.top)
}

// customScores calls a user strategy on the whole batch and checks its scores.
func (w *Weigher) customScores() error {
	M := len(w.losses)
	if cap(w.xs) < M {
		w.xs, w.ss = make([]float64, M), make([]float64, M)
	}
	xs, ss := w.xs[:M], w.ss[:M]
	d := w.opts.Delta
	for i, l := range w.losses {
		xs[i] = 0
		if finite32(l) {
			xs[i] = min(max(((float64(l)-w.lmin)*w.scale-1)*d, -d), d)
		}
		ss[i] = 0
	}
	w.strat.Score(ss, xs, d)
	sup := math.Inf(-1)
	for i, s := range ss {
		if !finite32(w.losses[i]) {
			continue
		}
		if math.IsNaN(s) || math.IsInf(s, 1) {
			return invalidf("goreweight: strategy %q gave score %v to sample %d; scores must be finite or -Inf", w.strat.Name(), s, i)
		}
		sup = max(sup, s)
	}
	if math.IsInf(sup, -1) {
		return invalidf("goreweight: strategy %q gave score -Inf to every sample", w.strat.Name())
	}
	w.sup = sup
	return nil
}
