package goreweight

import (
	"math"

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

// MaxBatch is the largest batch a Weigher takes: sample indices are int32
// in the selectors and the domain compaction.
const MaxBatch = math.MaxInt32

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

	// masked batches (WeightsMasked, pass_mask.go)
	mask       maskState
	deferScale bool    // leave pass 3 to the scatter: Weights stops before it
	norm       float64 // the factor pass 3 multiplies by: 1/Σe, or 1 after the cap
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
	phaseMaskCount   // masked batches, per dense chunk: count the counted entries
	phaseMaskGather  // compact the counted scores (and domain ids)
	phaseMaskScatter // normalise into the dense output, 0 where not counted
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
	case M > MaxBatch:
		return nil, invalidf("goreweight: a batch of %d losses is too large (at most %d)", M, MaxBatch)
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
		w.norm = 1
		return st, nil
	}

	// Pass 3: normalise (for a masked batch, fused with the scatter).
	w.invR = 1 / s.s // reused as the scale factor of pass 3
	w.norm = w.invR
	if !w.deferScale {
		w.phase = phaseScale
		w.parallelFor(nc)
	}

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
	if w.phase >= phaseMaskCount {
		w.runMaskChunk(c)
		return
	}
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
		w.normalise(lo, hi)
	}
}
