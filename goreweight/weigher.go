package goreweight

import (
	"math"
	"slices"

	"github.com/goreweight/goreweight/goreweight/internal/parallel"
)

// tinySpread is the threshold below which losses are too close to normalise:
// when l_max - l_min <= tinySpread·max(|l_min|, |l_max|) (8 float32 ulps of
// the largest magnitude, about 9.5e-7 relative), or l_max == l_min, every
// finite sample gets the uniform weight. Losses that close differ only by
// float32 rounding noise. The test is scale-free, so it commutes with
// l -> a·l for a > 0.
const tinySpread = 8 * 0x1p-23

// tinyMax is the smallest largest unnormalised weight accepted before the
// weights are recomputed with the exact maximum exponent (see
// Weigher.Weights). The first pass shifts scores by their supremum, which
// a batch need not reach (quadratic on a two-valued batch, domain
// multipliers); the unnormalised weights are stored as float32, so the
// largest must stay far from float32's subnormal range.
const tinyMax = 1e-15

// blockSize is how many scores are computed before they are exponentiated;
// the block stays in L1.
const blockSize = 256

// A block holds the exponents (or exponentials) of blockSize samples. Each
// chunk has its own, allocated once: a stack array would escape to the heap
// on every call, since a strategy's score is called through a function value.
type block = [blockSize]float64

// scoring kinds
const (
	kindUniform = iota // a constant built-in score
	kindBuiltin        // a built-in score (Weigher.bi), evaluated per block
	kindSelect         // a selector (Weigher.sel)
	kindCustom         // a user strategy, called once per batch
)

// A Weigher turns batches of per-sample losses into weights with fixed
// Options and a temperature given per call. Its scratch memory is reused,
// so in steady state (same or smaller M, same number of domains) a call
// allocates nothing. A Weigher is not safe for concurrent use; use one per
// goroutine.
type Weigher struct {
	opts    Options
	strat   Strategy
	kind    int
	bi      builtin
	sel     selector
	logMult []float64 // log of the domain multipliers; nil without them

	// per call
	dst, losses []float32
	domains     []int32
	phase       int
	lmin, scale float64 // normalisation: x = ((l - lmin)·scale - 1)·δ is in [-δ, δ]
	invR, shift float64 // z = (score - sup)·invR; ln e = z + log m_d - shift
	sup         float64
	uniform     bool
	rescue      bool // pass 2 runs again, shifted by the maximum exponent
	bad         int  // non-finite losses in this batch

	// scratch
	parts  []partial
	blocks []*[2]block // per chunk: the exponents and exponentials of a block
	dacc   [][]domAcc  // [chunk][dense domain index]
	ndom   int         // distinct domain ids in the batch
	domIDs []int32     // the distinct ids, increasing; dense index -> id
	didx   []int32     // per sample: the dense index of its domain
	domTab []int32     // id -> dense index, for ids up to a small bound
	xs, ss []float64   // custom strategies
	e64    []float64   // the cap: float64 log-weights
	suf    []float64   // the cap: log-sum-exp of the smallest log-weights
	cidx   []int32     // the cap: samples with a positive weight, by log-weight
	keep   []bool
	idx    []int32
	job    parallel.Job
	stats  Stats
}

// partial holds one chunk's sums; partials are combined in chunk order.
type partial struct {
	lmin, lmax float32
	bad, badAt int   // non-finite count and first index
	domBadAt   int   // first index with an invalid domain id, or -1
	maxDom     int32 // largest domain id seen
	lsum       float64
	s, s2, el  float64 // Σe, Σe², Σe·ln e
	sl         float64 // Σe·l
	emax, emin float64
	zmax       float64 // max exponent, for the rescue pass
	_          [64]byte
}

// domAcc holds one chunk's sums for one domain.
type domAcc struct {
	n, bad     int
	lsum, esum float64
}

const (
	phaseScan = iota
	phaseExp
	phaseZMax
	phaseScale
)

// NewWeigher returns a Weigher for the options, or an error naming the first
// invalid option.
func NewWeigher(opts Options) (*Weigher, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s, _ := Lookup(opts.Strategy)
	w := &Weigher{opts: opts, strat: s, kind: kindCustom}
	switch v := s.(type) {
	case builtin:
		w.kind, w.bi = kindBuiltin, v
		if v.constant {
			w.kind = kindUniform
		}
	case selector:
		w.kind, w.sel = kindSelect, v
	}
	if opts.DomainMultipliers != nil {
		w.opts.DomainMultipliers = append([]float64(nil), opts.DomainMultipliers...)
		w.logMult = make([]float64, len(opts.DomainMultipliers))
		// Weights are invariant to scaling every multiplier, so divide by
		// the largest: log m_d <= 0 keeps every exponent <= 0.
		top := 0.0
		for _, m := range opts.DomainMultipliers {
			top = max(top, m)
		}
		if top == 0 {
			top = 1 // every multiplier is 0: every weight is 0, an error per batch
		}
		for d, m := range opts.DomainMultipliers {
			w.logMult[d] = math.Log(m) - math.Log(top) // -Inf for 0: such samples get weight 0
		}
	}
	return w, nil
}

// Options returns the options in effect.
func (w *Weigher) Options() Options {
	o := w.opts
	o.DomainMultipliers = append([]float64(nil), o.DomainMultipliers...)
	return o
}

// Weights writes into dst the weights of the per-sample losses at
// temperature r and returns their statistics. dst and losses must have the
// same length M > 0; domains is nil or holds one domain id >= 0 per sample.
// r must be > 0; r = +Inf gives uniform weights (a warm-up step).
//
// The weights are >= 0 and sum to 1 (up to float32 rounding); samples with
// a non-finite loss get 0 under the "zero" policy. The returned Stats belong
// to the Weigher and are overwritten by the next call; Stats.Step is 0.
func (w *Weigher) Weights(dst, losses []float32, domains []int32, r float64) (*Stats, error) {
	M := len(losses)
	switch {
	case M == 0:
		return nil, ErrEmpty
	case len(dst) != M:
		return nil, invalidf("goreweight: output has length %d, want %d (one weight per loss)", len(dst), M)
	case domains != nil && len(domains) != M:
		return nil, invalidf("goreweight: domains has length %d, want %d (one domain id per loss)", len(domains), M)
	case domains == nil && w.logMult != nil:
		return nil, invalidf("goreweight: domain_multipliers are set (%d given) but the batch has no domain ids: give one domain id per loss", len(w.logMult))
	case !(r >= MinR): // also NaN
		return nil, invalidf("goreweight: temperature r must be >= %g (1/r must be finite), got %v", MinR, r)
	}
	w.dst, w.losses, w.domains = dst, losses, domains
	defer func() { w.dst, w.losses, w.domains = nil, nil, nil }()
	nc := (M + chunkSize - 1) / chunkSize
	w.grow(nc)

	// Pass 1: min, max, non-finite count, domain ids.
	w.phase = phaseScan
	w.parallelFor(nc)
	p0 := w.parts[0]
	lmin, lmax, bad, badAt, lsum, maxDom, domBadAt := p0.lmin, p0.lmax, p0.bad, p0.badAt, p0.lsum, p0.maxDom, p0.domBadAt
	for _, p := range w.parts[1:nc] {
		lmin, lmax = min(lmin, p.lmin), max(lmax, p.lmax)
		if badAt < 0 {
			badAt = p.badAt
		}
		if domBadAt < 0 {
			domBadAt = p.domBadAt
		}
		bad += p.bad
		lsum += p.lsum
		maxDom = max(maxDom, p.maxDom)
	}
	if domBadAt >= 0 {
		d := domains[domBadAt]
		if d < 0 {
			return nil, invalidf("goreweight: domain id %d at index %d is negative", d, domBadAt)
		}
		return nil, invalidf("goreweight: domain id %d at index %d has no multiplier (%d given)", d, domBadAt, len(w.logMult))
	}
	valid := M - bad
	w.bad = bad
	if bad > 0 && (w.opts.NonFinite == NonFiniteRaise || valid == 0) {
		return nil, &NonFiniteError{Count: bad, First: badAt, Value: losses[badAt], All: valid == 0}
	}
	if domains != nil {
		w.compactDomains(maxDom)
		w.growDomains(nc)
	} else {
		w.ndom = 0
	}

	// Scores and temperature.
	fmin, fmax := float64(lmin), float64(lmax)
	spread := fmax - fmin
	d := w.opts.Delta
	w.uniform = w.kind == kindUniform || math.IsInf(r, 1) || spread <= tinySpread*max(abs(fmin), abs(fmax))
	w.lmin, w.invR, w.shift, w.sup = fmin, 1/r, 0, 0
	if !w.uniform {
		w.scale = 2 / spread // finite for any float32 spread; 2·δ/spread may overflow
		switch w.kind {
		case kindBuiltin:
			w.sup = w.bi.hi(d)
		case kindSelect:
			w.selectSamples(valid)
		case kindCustom:
			if err := w.customScores(); err != nil {
				return nil, err
			}
		}
	} else {
		w.invR = 0
	}

	// Pass 2: exponentiate, and sum what the statistics need.
	w.phase, w.rescue = phaseExp, false
	w.parallelFor(nc)
	s := w.sumParts(nc)
	if s.emax < tinyMax || (s.emax < 0.5 && s.emin < 0x1p-100) {
		// The largest weight (nearly) underflowed, or it is far enough below
		// 1 that small weights, stored as float32, fall into the subnormal
		// range and lose precision: shift by the exact maximum exponent.
		w.phase = phaseZMax
		w.parallelFor(nc)
		zmax := math.Inf(-1)
		for _, p := range w.parts[:nc] {
			zmax = max(zmax, p.zmax)
		}
		if math.IsInf(zmax, -1) {
			return nil, invalidf("goreweight: every sample has weight 0 (are the domain multipliers of all domains in the batch 0?)")
		}
		w.shift, w.rescue = zmax, true
		for c := 0; c < nc && w.ndom > 0; c++ {
			clear(w.dacc[c]) // pass 2 accumulates the domain sums afresh
		}
		w.phase = phaseExp
		w.parallelFor(nc)
		s = w.sumParts(nc)
	}

	st := &w.stats
	*st = Stats{R: r, Uniform: w.uniform, M: M, Valid: valid, NonFinite: bad, Domains: st.Domains[:0],
		LossMin: fmin, LossMax: fmax, LossMean: lsum / float64(valid)}
	if w.opts.Cap > 0 {
		if err := w.capWeights(valid); err != nil {
			return nil, err
		}
		w.finalStats(valid)
		return st, nil
	}

	// Pass 3: normalise.
	w.invR = 1 / s.s // reused as the scale factor of pass 3
	w.phase = phaseScale
	w.parallelFor(nc)

	fv := float64(valid)
	st.MaxWM = s.emax / s.s * fv
	st.MinWM = s.emin / s.s * fv
	st.ESS = s.s * s.s / s.s2
	st.ESSFrac = st.ESS / fv
	st.Entropy = math.Log(s.s) - s.el/s.s
	st.Weighted = s.sl / s.s
	if w.uniform {
		st.ESS, st.ESSFrac, st.Entropy = fv, 1, math.Log(fv) // exact, not rounded
		if w.logMult != nil {
			st.ESS = s.s * s.s / s.s2
			st.ESSFrac = st.ESS / fv
			st.Entropy = math.Log(s.s) - s.el/s.s
		}
	}
	w.domainStats(nc, s.s, valid)
	return st, nil
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

// grow sizes the per-chunk scratch for nc chunks.
func (w *Weigher) grow(nc int) {
	if cap(w.parts) < nc {
		w.parts = make([]partial, nc)
	}
	w.parts = w.parts[:nc]
	for len(w.blocks) < nc {
		w.blocks = append(w.blocks, new([2]block))
	}
}

// denseDomains bounds the largest id for which compactDomains uses a
// table indexed by id (O(max id) memory) rather than a sort: the table is
// never larger than a few times the batch.
func denseDomains(M int) int64 { return 4*int64(M) + 1024 }

// compactDomains maps the batch's domain ids (all >= 0, the largest
// maxDom) to dense indices 0..ndom-1 in increasing id order, so that the
// per-domain sums cost O(distinct ids), not O(largest id): an id of
// 2^31-1 costs as much as an id of 1. It sets ndom, domIDs and didx and
// allocates nothing in steady state.
func (w *Weigher) compactDomains(maxDom int32) {
	M := len(w.domains)
	if cap(w.didx) < M {
		w.didx = make([]int32, M)
	}
	didx := w.didx[:M]
	ids := w.domIDs[:0]
	if int64(maxDom) < denseDomains(M) {
		n := int(maxDom) + 1
		if cap(w.domTab) < n {
			w.domTab = make([]int32, n)
		}
		tab := w.domTab[:n]
		clear(tab)
		for _, d := range w.domains {
			tab[d] = 1 // present
		}
		for id, present := range tab {
			if present != 0 {
				tab[id] = int32(len(ids))
				ids = append(ids, int32(id))
			}
		}
		for i, d := range w.domains {
			didx[i] = tab[d]
		}
	} else {
		ids = append(ids, w.domains...)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		for i, d := range w.domains {
			j, _ := slices.BinarySearch(ids, d)
			didx[i] = int32(j)
		}
	}
	w.domIDs, w.didx, w.ndom = ids, didx, len(ids)
}

func (w *Weigher) growDomains(nc int) {
	if len(w.dacc) < nc {
		w.dacc = append(w.dacc, make([][]domAcc, nc-len(w.dacc))...)
	}
	for c := 0; c < nc; c++ {
		if cap(w.dacc[c]) < w.ndom {
			w.dacc[c] = make([]domAcc, w.ndom)
		}
		w.dacc[c] = w.dacc[c][:w.ndom]
		clear(w.dacc[c])
	}
	if cap(w.stats.Domains) < w.ndom {
		w.stats.Domains = make([]DomainStats, 0, w.ndom)
	}
}

// runChunk runs the current phase on chunk c.
func (w *Weigher) runChunk(c int) {
	lo := c * chunkSize
	hi := min(lo+chunkSize, len(w.losses))
	p := &w.parts[c]
	switch w.phase {
	case phaseScan:
		w.scan(lo, hi, p)
	case phaseExp:
		var da []domAcc
		if w.ndom > 0 {
			da = w.dacc[c]
		}
		w.exp(lo, hi, p, da, w.blocks[c])
	case phaseZMax:
		w.zmax(lo, hi, p, &w.blocks[c][0])
	case phaseScale:
		f := w.invR
		dst := w.dst[lo:hi]
		if useAVX2 {
			n := len(dst) &^ 7
			scaleAVX2(dst[:n], f)
			dst = dst[n:]
		}
		for i, v := range dst {
			dst[i] = float32(float64(v) * f)
		}
	}
}

// finite32 reports whether v is neither NaN nor ±Inf.
func finite32(v float32) bool { return math.Float32bits(v)&0x7f800000 != 0x7f800000 }

// scan is pass 1 over losses[lo:hi].
func (w *Weigher) scan(lo, hi int, p *partial) {
	*p = partial{badAt: -1, domBadAt: -1, maxDom: -1}
	ls := w.losses[lo:hi]
	// Fast path: four independent chains; NaN fails every comparison and
	// any NaN or Inf makes the float64 sum non-finite, which sends the
	// chunk to the careful loop below.
	mn0, mx0 := ls[0], ls[0]
	mn1, mx1, mn2, mx2, mn3, mx3 := mn0, mx0, mn0, mx0, mn0, mx0
	var s0, s1, s2, s3 float64
	i := 0
	if useAVX2 && len(ls) >= 8 {
		// The same four chains, 8 losses at a time.
		a := scanAcc{s: [4]float64{}}
		for k := range a.mn {
			a.mn[k], a.mx[k] = mn0, mx0
		}
		i = len(ls) &^ 7
		scanAVX2(ls[:i], &a)
		mn0, mn1, mn2, mn3 = min(a.mn[0], a.mn[4]), min(a.mn[1], a.mn[5]), min(a.mn[2], a.mn[6]), min(a.mn[3], a.mn[7])
		mx0, mx1, mx2, mx3 = max(a.mx[0], a.mx[4]), max(a.mx[1], a.mx[5]), max(a.mx[2], a.mx[6]), max(a.mx[3], a.mx[7])
		s0, s1, s2, s3 = a.s[0], a.s[1], a.s[2], a.s[3]
	}
	for ; i+4 <= len(ls); i += 4 {
		v0, v1, v2, v3 := ls[i], ls[i+1], ls[i+2], ls[i+3]
		if v0 < mn0 {
			mn0 = v0
		}
		if v0 > mx0 {
			mx0 = v0
		}
		if v1 < mn1 {
			mn1 = v1
		}
		if v1 > mx1 {
			mx1 = v1
		}
		if v2 < mn2 {
			mn2 = v2
		}
		if v2 > mx2 {
			mx2 = v2
		}
		if v3 < mn3 {
			mn3 = v3
		}
		if v3 > mx3 {
			mx3 = v3
		}
		s0 += float64(v0)
		s1 += float64(v1)
		s2 += float64(v2)
		s3 += float64(v3)
	}
	for ; i < len(ls); i++ {
		v := ls[i]
		if v < mn0 {
			mn0 = v
		}
		if v > mx0 {
			mx0 = v
		}
		s0 += float64(v)
	}
	sum := (s0 + s1) + (s2 + s3)
	if !math.IsNaN(sum) && !math.IsInf(sum, 0) {
		p.lmin = min(min(mn0, mn1), min(mn2, mn3))
		p.lmax = max(max(mx0, mx1), max(mx2, mx3))
		p.lsum = sum
	} else {
		p.lmin, p.lmax, sum = float32(math.Inf(1)), float32(math.Inf(-1)), 0
		for i, v := range ls {
			if !finite32(v) {
				if p.bad == 0 {
					p.badAt = lo + i
				}
				p.bad++
				continue
			}
			p.lmin = min(p.lmin, v)
			p.lmax = max(p.lmax, v)
			sum += float64(v)
		}
		p.lsum = sum
	}
	if w.domains == nil {
		return
	}
	nm := int32(len(w.logMult))
	for i, d := range w.domains[lo:hi] {
		if d < 0 || (w.logMult != nil && d >= nm) {
			p.domBadAt = lo + i
			return
		}
		p.maxDom = max(p.maxDom, d)
	}
}

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

// exp is pass 2 over [lo, hi): dst = e^(z + ln m_d - shift), unnormalised,
// and the sums the statistics need.
func (w *Weigher) exp(lo, hi int, p *partial, da []domAcc, blk *[2]block) {
	if da == nil && w.logMult == nil && w.bad == 0 && w.kind != kindSelect && w.kind != kindCustom {
		w.expFast(lo, hi, p, blk)
		return
	}
	zb := &blk[0]
	var s, s2, el, sl float64
	emax, emin := 0.0, math.Inf(1)
	shift := w.shift
	for b := lo; b < hi; b += blockSize {
		e := min(b+blockSize, hi)
		z := zb[:e-b]
		w.scores(z, b)
		for j, zj := range z {
			i := b + j
			l := w.losses[i]
			if zj != zj { // non-finite loss
				w.dst[i] = 0
				if da != nil {
					d := &da[w.didx[i]]
					d.n++
					d.bad++
				}
				continue
			}
			lz := zj - shift
			if w.logMult != nil {
				lz += w.logMult[w.domains[i]]
			}
			ev := expNeg(lz)
			w.dst[i] = float32(ev)
			if ev > 0 {
				s += ev
				s2 += ev * ev
				el += ev * lz
				sl += ev * float64(l)
			}
			emax = max(emax, ev)
			emin = min(emin, ev)
			if da != nil {
				d := &da[w.didx[i]]
				d.n++
				d.lsum += float64(l)
				d.esum += ev
			}
		}
	}
	p.s, p.s2, p.el, p.sl, p.emax, p.emin = s, s2, el, sl, emax, emin
}

// expFast is pass 2 for the common case: a built-in score, every loss
// finite, no domains. Two sets of accumulators halve the add chains.
func (w *Weigher) expFast(lo, hi int, p *partial, blk *[2]block) {
	if useAVX2 && !w.uniform && w.expFastAVX2(lo, hi, p, &blk[0]) {
		return
	}
	zb, eb := &blk[0], &blk[1]
	var s0, s1, q0, q1, e0, e1, l0, l1 float64
	zmax, zmin := math.Inf(-1), math.Inf(1)
	shift := w.shift
	for b := lo; b < hi; b += blockSize {
		n := min(blockSize, hi-b)
		z, ev := zb[:n], eb[:n]
		w.scores(z, b)
		if shift != 0 {
			for j := range z {
				z[j] -= shift
			}
		}
		expBlock(ev, z)
		ls, ds := w.losses[b:b+n], w.dst[b:b+n]
		j := 0
		for ; j+2 <= n; j += 2 {
			za, zb := z[j], z[j+1]
			va, vb := ev[j], ev[j+1]
			ds[j], ds[j+1] = float32(va), float32(vb)
			s0 += va
			s1 += vb
			q0 += va * va
			q1 += vb * vb
			e0 += va * za
			e1 += vb * zb
			l0 += va * float64(ls[j])
			l1 += vb * float64(ls[j+1])
			if za > zmax {
				zmax = za
			}
			if zb > zmax {
				zmax = zb
			}
			if za < zmin {
				zmin = za
			}
			if zb < zmin {
				zmin = zb
			}
		}
		for ; j < n; j++ {
			va := ev[j]
			ds[j] = float32(va)
			s0 += va
			q0 += va * va
			e0 += va * z[j]
			l0 += va * float64(ls[j])
			zmax, zmin = max(zmax, z[j]), min(zmin, z[j])
		}
	}
	p.s, p.s2, p.el, p.sl = s0+s1, q0+q1, e0+e1, l0+l1
	p.emax, p.emin = expNeg(zmax), expNeg(zmin)
}

// zmax finds the largest exponent in [lo, hi) for the rescue pass.
func (w *Weigher) zmax(lo, hi int, p *partial, zb *block) {
	m := math.Inf(-1)
	for b := lo; b < hi; b += blockSize {
		e := min(b+blockSize, hi)
		z := zb[:e-b]
		w.scores(z, b)
		for j, zj := range z {
			if zj != zj {
				continue
			}
			if w.logMult != nil {
				zj += w.logMult[w.domains[b+j]]
			}
			m = max(m, zj)
		}
	}
	p.zmax = m
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

// expFastAVX2 is expFast with the bulk of the chunk in expScoresAVX2 and
// the last len%4 samples in Go. It returns false, having done nothing, when
// the kernel's folded constants could overflow (see expKernelParams).
func (w *Weigher) expFastAVX2(lo, hi int, p *partial, zb *block) bool {
	kind, prm, ok := w.expKernelParams()
	if !ok {
		return false
	}
	a := expAcc{zmax: bcast(-inf), zmin: bcast(inf)}
	n := (hi - lo) &^ 3
	expScoresAVX2(kind, w.dst[lo:lo+n], w.losses[lo:lo+n], &prm, &a)
	s, s2, el, sl := sum4(&a.s), sum4(&a.s2), sum4(&a.el), sum4(&a.sl)
	zmax, zmin := max4(&a.zmax), min4(&a.zmin)
	if n < hi-lo {
		z := zb[:hi-lo-n]
		w.scores(z, lo+n)
		for j, zj := range z {
			zj -= w.shift
			ev := expNeg(zj)
			w.dst[lo+n+j] = float32(ev)
			s += ev
			s2 += ev * ev
			el += ev * zj
			sl += ev * float64(w.losses[lo+n+j])
			zmax, zmin = max(zmax, zj), min(zmin, zj)
		}
	}
	p.s, p.s2, p.el, p.sl = s, s2, el, sl
	p.emax, p.emin = expNeg(zmax), expNeg(zmin)
	return true
}
