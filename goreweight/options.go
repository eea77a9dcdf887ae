package goreweight

import "math"

// Non-finite loss policies (Options.NonFinite).
const (
	// NonFiniteZero gives NaN and ±Inf losses weight 0, leaves them out of
	// the min/max normalisation and counts them in Stats.NonFinite.
	NonFiniteZero = "zero"
	// NonFiniteRaise makes any NaN or ±Inf loss an error naming how many
	// there are and the index of the first.
	NonFiniteRaise = "raise"
)

// MaxDelta is the largest accepted Options.Delta: normalised losses span
// [-delta, delta] and the scores' differences reach 2·delta, which must stay
// far from float64's overflow.
const MaxDelta = 1e300

// Options configure how one batch of losses becomes weights. Every field is
// explicit: the zero value is not a usable configuration (delta 0, an empty
// strategy and an empty nonfinite policy are errors). Start from
// DefaultOptions and change what you need.
type Options struct {
	// Strategy is a registered strategy name (DefaultOptions: LinUpper).
	Strategy string `json:"strategy"`
	// Delta is the half-width of the normalised range [-delta, delta]; it
	// must be a finite number in (0, MaxDelta]. DefaultOptions: 1, as in
	// the paper.
	Delta float64 `json:"delta"`
	// Cap, when > 0, bounds every weight by Cap/M (M the number of samples
	// with a finite loss) through the exact KL projection onto the capped
	// simplex. It must be >= 1. 0 means no cap.
	Cap float64 `json:"cap,omitempty"`
	// NonFinite is NonFiniteZero (DefaultOptions) or NonFiniteRaise.
	NonFinite string `json:"nonfinite"`
	// Q is the fraction used by TopK (kept, in (0, 1]) and Truncate
	// (dropped, in [0, 1)). Other strategies ignore it.
	Q float64 `json:"q,omitempty"`
	// DomainMultipliers, when set, multiply the weight of every sample of
	// domain d by DomainMultipliers[d] before the final normalisation (to
	// combine with domain-level methods such as DoReMi or DoGE). They must
	// be finite and >= 0; every batch must then give domain ids, and every
	// id must have a multiplier.
	DomainMultipliers []float64 `json:"domain_multipliers,omitempty"`
}

// DefaultOptions returns the paper's defaults: strategy LinUpper, delta 1,
// no cap, non-finite losses weighted 0.
func DefaultOptions() Options {
	return Options{Strategy: LinUpper, Delta: 1, NonFinite: NonFiniteZero}
}

// Validate reports the first problem with the options as an *OptionError
// naming the field's JSON key, or nil.
func (o Options) Validate() error {
	if o.Strategy == "" {
		return optionErr("strategy", "strategy is empty: name one (known: %v)", Strategies())
	}
	if _, err := Lookup(o.Strategy); err != nil {
		return optionErr("strategy", "unknown strategy %q (known: %v)", o.Strategy, Strategies())
	}
	if !(o.Delta > 0 && o.Delta <= MaxDelta) {
		return optionErr("delta", "delta must be a finite number in (0, %g], got %v", float64(MaxDelta), o.Delta)
	}
	if o.Cap != 0 && (!(o.Cap >= 1) || math.IsInf(o.Cap, 1)) {
		return optionErr("cap", "cap must be a finite number >= 1 (or 0 for no cap), got %v", o.Cap)
	}
	switch o.NonFinite {
	case NonFiniteZero, NonFiniteRaise:
	default:
		return optionErr("nonfinite", "nonfinite must be %q or %q, got %q", NonFiniteZero, NonFiniteRaise, o.NonFinite)
	}
	switch o.Strategy {
	case TopK:
		if !(o.Q > 0 && o.Q <= 1) {
			return optionErr("q", "strategy %q needs q in (0, 1], got %v", TopK, o.Q)
		}
	case Truncate:
		if !(o.Q >= 0 && o.Q < 1) {
			return optionErr("q", "strategy %q needs q in [0, 1), got %v", Truncate, o.Q)
		}
	}
	for d, m := range o.DomainMultipliers {
		if !(m >= 0) || math.IsInf(m, 1) {
			return optionErr("domain_multipliers", "domain multiplier %d must be finite and >= 0, got %v", d, m)
		}
	}
	return nil
}
