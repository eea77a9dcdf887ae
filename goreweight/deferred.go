package goreweight

// The deferred (approximate) global scope: the weights of one optimizer
// step's whole batch (G accumulated micro-batches, all ranks) without a
// first pass. See the doc of Deferred.

import (
	"bytes"
	"encoding/json"
	"io"
	"math"

	"github.com/goreweight/goreweight/goreweight/internal/jsonx"
)

// DeferredConfig configures a Deferred: a Config (options and schedule) and
// how the normalisation range follows the losses.
//
// Its JSON form adds one key to the Config's, e.g.
//
//	{"strategy": "linupper", "schedule": {"kind": "constant", "r": 1}, "range_momentum": 0}
type DeferredConfig struct {
	Config
	// RangeMomentum β in [0, 1): after each step the range becomes
	// β·(old range) + (1-β)·(the step's true [min, max]), end by end.
	// 0 (DefaultDeferredConfig) uses the previous step's range as is.
	RangeMomentum float64 `json:"range_momentum"`
}

// DefaultDeferredConfig returns DefaultConfig and range momentum 0. As with
// DefaultConfig, set the Schedule before use.
func DefaultDeferredConfig() DeferredConfig { return DeferredConfig{Config: DefaultConfig()} }

// Validate reports the first problem with the configuration, or nil: an
// invalid Config, a momentum outside [0, 1), or an option the deferred
// mode cannot honour (an *OptionError naming its key):
//
//   - "strategy": topk and truncate select by rank over the whole step,
//     and a user strategy has no known score supremum, so neither has a
//     deferred form;
//   - "cap": the cap's KL projection needs every weight of the step at once;
//   - "domain_multipliers": not supported by the deferred mode.
//
// The exact global scope (all of a step's losses first, then one Weights
// call) supports all of them.
func (c DeferredConfig) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if !(c.RangeMomentum >= 0 && c.RangeMomentum < 1) {
		return optionErr("range_momentum", "range_momentum must be in [0, 1), got %v", c.RangeMomentum)
	}
	if _, err := deferredBuiltin(c.Strategy); err != nil {
		return err
	}
	if c.Cap != 0 {
		return optionErr("cap", "the deferred global mode cannot apply the cap (%v): its KL projection needs every weight of the step at once; use the exact global scope or cap 0", c.Cap)
	}
	if c.DomainMultipliers != nil {
		return optionErr("domain_multipliers", "the deferred global mode does not support domain_multipliers; use the exact global scope")
	}
	return nil
}

// deferredBuiltin returns the built-in strategy of name if the deferred
// mode supports it: a softmax of a score with a known supremum.
func deferredBuiltin(name string) (builtin, error) {
	s, err := Lookup(name)
	if err != nil {
		return builtin{}, optionErr("strategy", "unknown strategy %q (known: %v)", name, Strategies())
	}
	switch v := s.(type) {
	case builtin:
		return v, nil
	case selector:
		return builtin{}, optionErr("strategy", "strategy %q has no deferred form: it selects by rank over the whole step's batch, which no micro-batch sees; use the exact global scope", name)
	}
	return builtin{}, optionErr("strategy", "user strategy %q has no deferred form: the deferred mode needs the score's supremum, known only for the built-in strategies (uniform, linupper, quadratic, extremes, dro-kl); use the exact global scope", name)
}

// DeferredSumsLen is the length of the vector form of DeferredSums
// (AppendVector, DeferredSumsFromVector).
const DeferredSumsLen = 13

// DeferredSums are the sums of one rank's micro-batches of the open step.
// Sums of several ranks combine with Merge (counts and sums add, minima
// and maxima combine), so that under data parallelism every rank can
// finish the step with the global sums. The u are the unnormalised
// weights e^((s_i - s*)/r).
type DeferredSums struct {
	M         int64   // losses seen
	Valid     int64   // finite losses
	NonFinite int64   // non-finite losses (weight 0)
	Clipped   int64   // finite losses outside the normalisation range (their x was clipped to ±delta)
	Z         float64 // Σ u: the softmax normaliser
	Z2        float64 // Σ u²
	ZLogU     float64 // Σ u·ln u
	UL        float64 // Σ u·l
	LSum      float64 // Σ l over finite losses
	LMin      float64 // min finite loss (+Inf when none)
	LMax      float64 // max finite loss (-Inf when none)
	UMax      float64 // max u over finite losses (0 when none)
	UMin      float64 // min u over finite losses (+Inf when none)
}

// emptySums returns the sums of no losses (the identity of Merge).
func emptySums() DeferredSums {
	return DeferredSums{LMin: math.Inf(1), LMax: math.Inf(-1), UMin: math.Inf(1)}
}

// Merge returns the sums of the losses of s and of o together.
func (s DeferredSums) Merge(o DeferredSums) DeferredSums {
	return DeferredSums{
		M: s.M + o.M, Valid: s.Valid + o.Valid, NonFinite: s.NonFinite + o.NonFinite, Clipped: s.Clipped + o.Clipped,
		Z: s.Z + o.Z, Z2: s.Z2 + o.Z2, ZLogU: s.ZLogU + o.ZLogU, UL: s.UL + o.UL, LSum: s.LSum + o.LSum,
		LMin: min(s.LMin, o.LMin), LMax: max(s.LMax, o.LMax), UMax: max(s.UMax, o.UMax), UMin: min(s.UMin, o.UMin),
	}
}

// AppendVector appends the DeferredSumsLen numbers of s to dst, in field
// order (counts as float64, exact up to 2^53), e.g. for an all-gather.
func (s DeferredSums) AppendVector(dst []float64) []float64 {
	return append(dst, float64(s.M), float64(s.Valid), float64(s.NonFinite), float64(s.Clipped),
		s.Z, s.Z2, s.ZLogU, s.UL, s.LSum, s.LMin, s.LMax, s.UMax, s.UMin)
}

// DeferredSumsFromVector reads the vector form written by AppendVector
// (v must have length DeferredSumsLen) and checks it: counts are
// non-negative integers with M = Valid + NonFinite, sums are finite, u
// lies in [0, 1].
func DeferredSumsFromVector(v []float64) (DeferredSums, error) {
	if len(v) != DeferredSumsLen {
		return DeferredSums{}, invalidf("goreweight: deferred sums: want %d numbers, got %d", DeferredSumsLen, len(v))
	}
	for i := 0; i < 4; i++ {
		if !(v[i] >= 0 && v[i] <= 1<<53 && v[i] == math.Trunc(v[i])) {
			return DeferredSums{}, invalidf("goreweight: deferred sums: count %d must be a non-negative integer, got %v", i, v[i])
		}
	}
	s := DeferredSums{M: int64(v[0]), Valid: int64(v[1]), NonFinite: int64(v[2]), Clipped: int64(v[3]),
		Z: v[4], Z2: v[5], ZLogU: v[6], UL: v[7], LSum: v[8], LMin: v[9], LMax: v[10], UMax: v[11], UMin: v[12]}
	if err := s.check(); err != nil {
		return DeferredSums{}, err
	}
	return s, nil
}

// check reports sums that no sequence of micro-batches can produce.
func (s DeferredSums) check() error {
	switch {
	case s.M < 0 || s.Valid < 0 || s.NonFinite < 0 || s.Clipped < 0:
		return invalidf("goreweight: deferred sums: negative count")
	case s.M != s.Valid+s.NonFinite:
		return invalidf("goreweight: deferred sums: m (%d) != valid (%d) + nonfinite (%d)", s.M, s.Valid, s.NonFinite)
	case s.Clipped > s.Valid:
		return invalidf("goreweight: deferred sums: clipped (%d) > valid (%d)", s.Clipped, s.Valid)
	}
	for _, x := range []float64{s.Z, s.Z2, s.UL, s.LSum, s.ZLogU} {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return invalidf("goreweight: deferred sums: a sum is not finite (%v)", x)
		}
	}
	if s.Z < 0 || s.Z2 < 0 || s.ZLogU > 0 || math.IsNaN(s.UMax) || s.UMax < 0 || s.UMax > 1 || math.IsNaN(s.UMin) || s.UMin < 0 {
		return invalidf("goreweight: deferred sums: the unnormalised weights must lie in [0, 1] (z %v, max %v, min %v)", s.Z, s.UMax, s.UMin)
	}
	if s.Valid > 0 && (!finite64(s.LMin) || !finite64(s.LMax) || s.LMin > s.LMax) {
		return invalidf("goreweight: deferred sums: loss range [%v, %v] is not a finite interval", s.LMin, s.LMax)
	}
	return nil
}

func finite64(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// DeferredStats describe one finished step of a Deferred: the Stats of its
// weights w_i = u_i/Z over the global batch (Capped is always 0), and what
// the approximation used.
type DeferredStats struct {
	Stats
	RangeLo float64 // the normalisation range the step used
	RangeHi float64
	Clipped int     // finite losses outside [RangeLo, RangeHi]
	Z       float64 // the global normaliser Σ u
	Scale   float64 // 1/Z: what the accumulated gradients are multiplied by
}

// Flat returns the statistics as one flat map of floats: the keys of
// Stats.Flat plus range_lo, range_hi, clipped, clipped_frac (clipped /
// valid), z and scale.
func (s *DeferredStats) Flat() map[string]float64 {
	m := s.Stats.Flat()
	m["range_lo"], m["range_hi"] = s.RangeLo, s.RangeHi
	m["clipped"] = float64(s.Clipped)
	m["clipped_frac"] = float64(s.Clipped) / float64(s.Valid)
	m["z"], m["scale"] = s.Z, s.Scale
	return m
}

// A Deferred computes the weights of each optimizer step's whole batch (G
// accumulated micro-batches, all ranks) approximately and without a first
// pass: the softmax's normaliser is deferred to the end of the step.
//
// For each micro-batch, Micro normalises the finite losses with a range
// [lo, hi] known before the step (the previous step's true min/max, or a
// moving average of it: DeferredConfig.RangeMomentum; on the very first
// step, the first micro-batch's own range, or one set with SetRange), so
// x_i = ((l_i - lo)·2/(hi - lo) - 1)·delta clipped to [-delta, delta], and
// writes the unnormalised weights u_i = e^((s_i - s*)/r) in (0, 1], with
// s_i the strategy's score and s* its supremum (ScoreRange). The caller
// backpropagates Σ u_i l_i. Finish then gives the scale 1/Z, Z = Σ u_i over
// the whole step (all ranks: merge their Sums), by which the caller
// multiplies the accumulated gradients, so the step's weights u_i/Z sum to
// 1; it updates the range from the step's true min/max and advances the
// step (r = Schedule.At(step) advances once per optimizer step).
//
// When the range equals the step's own min/max, the weights are exactly
// those of Weigher.Weights on the step's whole batch. Otherwise they are
// the softmax of the scores of slightly differently normalised losses.
// Supported: the built-in softmax strategies (uniform, linupper,
// quadratic, extremes, dro-kl) without cap or domain multipliers (see
// DeferredConfig.Validate). A Deferred is not safe for concurrent use.
type Deferred struct {
	cfg  DeferredConfig
	bi   builtin
	step int64

	known  bool    // a range is known (false before the first step's first finite loss)
	lo, hi float64 // the range

	open      bool // a step is in progress (Micro called since the last Finish)
	provRange bool // the open step's range came from its first micro-batch
	sums      DeferredSums

	stats   DeferredStats
	xb, eb  block
	hasLast bool
}

// NewDeferred returns a Deferred at step 0 with no range yet, or an error
// naming the first invalid or unsupported setting.
func NewDeferred(cfg DeferredConfig) (*Deferred, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bi, _ := deferredBuiltin(cfg.Strategy)
	cfg.Schedule.Boundaries = append([]int64(nil), cfg.Schedule.Boundaries...)
	cfg.Schedule.Values = append([]float64(nil), cfg.Schedule.Values...)
	return &Deferred{cfg: cfg, bi: bi, sums: emptySums()}, nil
}

// Config returns the configuration.
func (d *Deferred) Config() DeferredConfig {
	c := d.cfg
	c.Schedule.Boundaries = append([]int64(nil), c.Schedule.Boundaries...)
	c.Schedule.Values = append([]float64(nil), c.Schedule.Values...)
	return c
}

// Step returns the global step of the open (or next) step.
func (d *Deferred) Step() int64 { return d.step }

// R returns the temperature of the current step (+Inf during warm-up).
func (d *Deferred) R() float64 { return d.cfg.Schedule.At(d.step) }

// Open reports whether a step is in progress: Micro was called since the
// last Finish or Discard.
func (d *Deferred) Open() bool { return d.open }

// SetStep moves to a global step (>= 0). It is an error while a step is
// open.
func (d *Deferred) SetStep(step int64) error {
	if d.open {
		return invalidf("goreweight: deferred: cannot set the step while step %d is open (Finish or Discard it first)", d.step)
	}
	if step < 0 {
		return invalidf("goreweight: step must be >= 0 (at most %d), got %d", int64(math.MaxInt64), step)
	}
	d.step = step
	return nil
}

// Range returns the normalisation range the next (or open) step uses; ok
// is false before any range is known.
func (d *Deferred) Range() (lo, hi float64, ok bool) { return d.lo, d.hi, d.known }

// SetRange sets the normalisation range of the next step: finite, lo <= hi
// (lo == hi, or a spread too small to normalise, gives uniform weights).
// Under data parallelism, use it before the first step with the min/max of
// every rank's first micro-batch, so that all ranks normalise alike. It is
// an error while a step is open.
func (d *Deferred) SetRange(lo, hi float64) error {
	if d.open {
		return invalidf("goreweight: deferred: cannot set the range while step %d is open (Finish or Discard it first)", d.step)
	}
	if !finite64(lo) || !finite64(hi) || lo > hi {
		return invalidf("goreweight: deferred: range [%v, %v] must be finite with lo <= hi", lo, hi)
	}
	d.lo, d.hi, d.known = lo, hi, true
	return nil
}

// Sums returns this rank's sums of the open step (the sums of no losses
// when no step is open).
func (d *Deferred) Sums() DeferredSums { return d.sums }

// Discard abandons the open step (if any): its sums are dropped, the step
// does not advance and the range is that from before it. The caller drops
// the step's gradients.
func (d *Deferred) Discard() {
	if d.open && d.provRange {
		d.known = false
	}
	d.open, d.provRange, d.sums = false, false, emptySums()
}

// Micro writes into dst the unnormalised weights u_i of one micro-batch's
// losses (in (0, 1] for finite losses, 0 for non-finite ones under
// nonfinite "zero") and adds them to the open step's sums, opening a step
// if none is; it returns the micro-batch's Σ u_i. dst and losses must have
// the same length; an empty micro-batch is allowed (it opens the step).
// Non-finite losses under "raise" are an error; on error nothing changes.
func (d *Deferred) Micro(dst, losses []float32) (z float64, err error) {
	n := len(losses)
	switch {
	case len(dst) != n:
		return 0, invalidf("goreweight: output has length %d, want %d (one weight per loss)", len(dst), n)
	case !d.open && d.step == math.MaxInt64:
		return 0, invalidf("goreweight: step %d is the largest step: the step counter cannot advance past it (SetStep to go back)", d.step)
	}
	bad, first := 0, -1
	lmin, lmax := float32(math.Inf(1)), float32(math.Inf(-1))
	for i, l := range losses {
		if !finite32(l) {
			if first < 0 {
				first = i
			}
			bad++
			continue
		}
		lmin, lmax = min(lmin, l), max(lmax, l)
	}
	if bad > 0 && d.cfg.NonFinite == NonFiniteRaise {
		return 0, &NonFiniteError{Count: bad, First: first, Value: losses[first]}
	}
	if !d.open {
		d.open, d.provRange, d.sums = true, false, emptySums()
	}
	if !d.known && bad < n {
		d.lo, d.hi, d.known, d.provRange = float64(lmin), float64(lmax), true, true
	}
	s := &d.sums
	s.M += int64(n)
	s.NonFinite += int64(bad)
	s.Valid += int64(n - bad)
	if bad < n {
		s.LMin, s.LMax = min(s.LMin, float64(lmin)), max(s.LMax, float64(lmax))
	}
	uniform, sc := d.uniform()
	delta, sup, invR := d.cfg.Delta, d.bi.hi(d.cfg.Delta), 1/d.R()
	var zs, z2, el, ul, lsum float64
	var clipped int64
	umax, umin := s.UMax, s.UMin
	for b := 0; b < n; b += blockSize {
		e := min(b+blockSize, n)
		ls, ds := losses[b:e], dst[b:e]
		x, ev := d.xb[:e-b], d.eb[:e-b]
		for _, l := range ls {
			if fl := float64(l); finite32(l) && (fl < d.lo || fl > d.hi) {
				clipped++
			}
		}
		if uniform {
			clear(x)
		} else {
			for j, l := range ls {
				v := 0.0
				if finite32(l) {
					// x, in [-δ, δ] for losses in the range; clipped to it
					v = min(max(((float64(l)-d.lo)*sc-1)*delta, -delta), delta)
				}
				x[j] = v
			}
			d.bi.score(x, x, delta) // the strategy's own formula (strategy.go)
			for j, sj := range x {
				x[j] = (sj - sup) * invR // <= 0: the score never exceeds its supremum
			}
		}
		expBlock(ev, x)
		for j, l := range ls {
			if !finite32(l) {
				ds[j] = 0
				continue
			}
			u := ev[j]
			ds[j] = float32(u)
			zs += u
			z2 += u * u
			if u > 0 {
				el += u * x[j]
			}
			ul += u * float64(l)
			lsum += float64(l)
			umax, umin = max(umax, u), min(umin, u)
		}
	}
	s.Z += zs
	s.Z2 += z2
	s.ZLogU += el
	s.UL += ul
	s.LSum += lsum
	s.Clipped += clipped
	s.UMax, s.UMin = umax, umin
	return zs, nil
}

// uniform reports whether the open step's weights are uniform (the
// uniform strategy, a warm-up step, or a range too narrow to normalise);
// otherwise it returns the normalisation's scale 2/(hi - lo).
func (d *Deferred) uniform() (bool, float64) {
	spread := d.hi - d.lo
	if d.bi.constant || math.IsInf(d.R(), 1) || !d.known || spread <= tinySpread*max(abs(d.lo), abs(d.hi)) {
		return true, 0
	}
	return false, 2 / spread
}

// Finish ends the open step: it merges the sums of every rank (global;
// nil or empty: this rank's own Sums, a single process), returns the
// step's statistics, whose Scale = 1/Z the caller multiplies the
// accumulated gradients by, then updates the range from the step's true
// min/max and advances the step. It is an error when no step is open
// (Finish twice, or before any Micro), when the global batch has no
// finite loss, and when every weight underflowed to 0 (r far too small
// for the deferred mode); on error nothing changes (Discard drops the
// step). Under data parallelism every rank must pass the same global sums
// (this rank's included) to stay in step.
func (d *Deferred) Finish(global []DeferredSums) (*DeferredStats, error) {
	if !d.open {
		return nil, invalidf("goreweight: deferred: no step is open: Finish needs at least one micro-batch since the last Finish (was Finish called twice?)")
	}
	g := d.sums
	if len(global) > 0 {
		g = emptySums()
		for i, s := range global {
			if err := s.check(); err != nil {
				return nil, invalidf("goreweight: deferred: sums of rank %d: %w", i, err)
			}
			g = g.Merge(s)
		}
		if g.M < d.sums.M {
			return nil, invalidf("goreweight: deferred: the global sums hold %d losses, fewer than this rank's %d: pass every rank's sums, this rank's included", g.M, d.sums.M)
		}
	}
	switch {
	case g.M == 0:
		return nil, ErrEmpty
	case g.Valid == 0:
		return nil, &NonFiniteError{Count: int(g.NonFinite), First: 0, Value: float32(math.NaN()), All: true}
	case !(g.Z > 0):
		return nil, invalidf("goreweight: deferred: every weight of step %d underflowed to 0 (r = %v is too small for the deferred mode, whose weights are relative to the score supremum); use the exact global scope", d.step, d.R())
	}
	uniform, _ := d.uniform()
	st := &d.stats
	fv := float64(g.Valid)
	*st = DeferredStats{
		Stats: Stats{Step: d.step, R: d.R(), Uniform: uniform, M: int(g.M), Valid: int(g.Valid), NonFinite: int(g.NonFinite),
			MaxWM: g.UMax / g.Z * fv, MinWM: g.UMin / g.Z * fv, ESS: g.Z * g.Z / g.Z2, LossMin: g.LMin, LossMax: g.LMax,
			LossMean: g.LSum / fv, Weighted: g.UL / g.Z, Entropy: math.Log(g.Z) - g.ZLogU/g.Z},
		RangeLo: d.lo, RangeHi: d.hi, Clipped: int(g.Clipped), Z: g.Z, Scale: 1 / g.Z,
	}
	st.ESSFrac = st.ESS / fv
	if uniform {
		st.ESS, st.ESSFrac, st.Entropy = fv, 1, math.Log(fv)
	}
	// The range of the next step.
	if b := d.cfg.RangeMomentum; b == 0 || d.provRange {
		d.lo, d.hi = g.LMin, g.LMax
	} else {
		d.lo, d.hi = b*d.lo+(1-b)*g.LMin, b*d.hi+(1-b)*g.LMax
		if d.lo > d.hi { // rounding
			d.lo, d.hi = d.hi, d.lo
		}
	}
	d.known = true
	d.open, d.provRange, d.sums = false, false, emptySums()
	d.step++
	d.hasLast = true
	return st, nil
}

// LastStats returns the statistics of the last finished step, or nil
// before the first (and after a LoadState).
func (d *Deferred) LastStats() *DeferredStats {
	if !d.hasLast {
		return nil
	}
	return &d.stats
}

// deferredStateVersion is the version of the JSON state format.
const deferredStateVersion = 1

type deferredState struct {
	Version int            `json:"version"`
	Config  DeferredConfig `json:"config"`
	Step    int64          `json:"step"`
	Range   *[2]float64    `json:"range"` // null before a range is known
	// The open step, or null: its provisional-range flag and this rank's
	// sums (vector form; ±Inf written as null).
	Open *deferredOpen `json:"open"`
}

type deferredOpen struct {
	ProvisionalRange bool          `json:"provisional_range"`
	Sums             []jsonx.Float `json:"sums"`
}

// State returns the state as JSON: the configuration, the step, the range
// and, if a step is open, its sums. Restoring it continues exactly where
// this Deferred is (in the middle of a step too, when the gradients
// accumulated so far are restored with it; otherwise Discard the restored
// open step).
func (d *Deferred) State() ([]byte, error) {
	s := deferredState{Version: deferredStateVersion, Config: d.Config(), Step: d.step}
	if d.known {
		s.Range = &[2]float64{d.lo, d.hi}
	}
	if d.open {
		o := &deferredOpen{ProvisionalRange: d.provRange}
		for _, v := range d.sums.AppendVector(nil) {
			o.Sums = append(o.Sums, jsonx.Float(v))
		}
		s.Open = o
	}
	return json.Marshal(s)
}

// RestoreDeferred returns a Deferred from a State. The state is checked as
// strictly as Restore checks a Reweighter's: unknown keys, trailing data
// and missing fields are errors.
func RestoreDeferred(data []byte) (*Deferred, error) {
	var s deferredState
	s.Version = -1
	s.Step = -1
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, invalidf("goreweight: reading deferred state: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidf("goreweight: reading deferred state: unexpected data after the JSON value")
	}
	if s.Version != deferredStateVersion {
		return nil, invalidf("goreweight: deferred state version %d, this build reads version %d", s.Version, deferredStateVersion)
	}
	// Nothing has a default: a state written by State holds every key.
	var keys struct {
		Version, Config, Step, Range, Open json.RawMessage
	}
	var cfgKeys struct {
		RangeMomentum json.RawMessage `json:"range_momentum"`
	}
	_ = json.Unmarshal(data, &keys) // the strict decode above succeeded
	_ = json.Unmarshal(keys.Config, &cfgKeys)
	for _, k := range []struct {
		name string
		v    json.RawMessage
	}{{"version", keys.Version}, {"config", keys.Config}, {"step", keys.Step}, {"range", keys.Range}, {"open", keys.Open}, {"config.range_momentum", cfgKeys.RangeMomentum}} {
		if k.v == nil {
			return nil, invalidf("goreweight: reading deferred state: key %q is missing", k.name)
		}
	}
	d, err := NewDeferred(s.Config)
	if err != nil {
		return nil, invalidf("goreweight: deferred state: %w", err)
	}
	if err := d.SetStep(s.Step); err != nil {
		return nil, invalidf("goreweight: deferred state: %w", err)
	}
	if s.Range != nil {
		if err := d.SetRange(s.Range[0], s.Range[1]); err != nil {
			return nil, invalidf("goreweight: deferred state: %w", err)
		}
	}
	if o := s.Open; o != nil {
		v := make([]float64, len(o.Sums))
		for i, f := range o.Sums {
			v[i] = float64(f)
		}
		if len(v) == DeferredSumsLen && v[1] == 0 { // no finite loss: the identities were written as null
			v[9], v[10], v[12] = math.Inf(1), math.Inf(-1), math.Inf(1)
		}
		sums, err := DeferredSumsFromVector(v)
		if err != nil {
			return nil, invalidf("goreweight: deferred state: %w", err)
		}
		if sums.Valid > 0 && s.Range == nil {
			return nil, invalidf("goreweight: deferred state: an open step with finite losses needs a range")
		}
		if o.ProvisionalRange && s.Range == nil {
			return nil, invalidf("goreweight: deferred state: a provisional range needs a range")
		}
		d.open, d.provRange, d.sums = true, o.ProvisionalRange, sums
	}
	return d, nil
}

// LoadState replaces the Deferred's configuration, step, range and open
// step by a State.
func (d *Deferred) LoadState(data []byte) error {
	n, err := RestoreDeferred(data)
	if err != nil {
		return err
	}
	*d = *n
	return nil
}
