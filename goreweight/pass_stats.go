package goreweight

// Pass 3 of Weigher.Weights (normalise) and the statistics: combining the
// chunks' partial sums and the per-domain sums.

// normalise is pass 3 over [lo, hi): the unnormalised weights times the
// normaliser 1/Σe (held in invR).
func (w *Weigher) normalise(lo, hi int) { scaleBy(w.dst[lo:hi], w.invR) }

// scaleBy sets dst[i] = float32(float64(dst[i])·f), the rounding of pass 3.
func scaleBy(dst []float32, f float64) {
	if useAVX2 {
		n := len(dst) &^ 7
		scaleAVX2(dst[:n], f)
		dst = dst[n:]
	}
	for i, v := range dst {
		dst[i] = float32(float64(v) * f)
	}
}

// sumParts combines the pass-2 partial sums in chunk order.
func (w *Weigher) sumParts(nc int) partial {
	t := w.parts[0]
	for _, p := range w.parts[1:nc] {
		t.s += p.s
		t.s2 += p.s2
		t.el += p.el
		t.sl += p.sl
		t.emax = max(t.emax, p.emax)
		t.emin = min(t.emin, p.emin)
	}
	return t
}

// domainStats fills Stats.Domains from the per-chunk domain sums; esum is
// divided by norm (the softmax normaliser, or 1 when the sums are weights).
func (w *Weigher) domainStats(nc int, norm float64, valid int) {
	st := &w.stats
	for d := 0; d < w.ndom; d++ {
		var t domAcc
		for c := 0; c < nc; c++ {
			a := w.dacc[c][d]
			t.n += a.n
			t.bad += a.bad
			t.lsum += a.lsum
			t.esum += a.esum
		}
		ds := DomainStats{ID: w.domIDs[d], Count: t.n, NonFinite: t.bad, MeanLoss: nan, WeightSum: t.esum / norm}
		if t.n > t.bad {
			ds.MeanLoss = t.lsum / float64(t.n-t.bad)
		}
		if t.n > 0 {
			ds.MeanWeight = ds.WeightSum / float64(t.n)
			ds.MeanWM = ds.MeanWeight * float64(valid)
		}
		st.Domains = append(st.Domains, ds)
	}
}
