package goreweight

import (
	"errors"
	"fmt"
	"math"
)

// Non-finite loss policies (Options.NonFinite).
const (
	// NonFiniteZero gives NaN and ±Inf losses weight 0, leaves them out of
	// the min/max normalisation and counts them in Stats.NonFinite.
	NonFiniteZero = "zero"
	// NonFiniteRaise makes any NaN or ±Inf loss an error naming how many
	// there are and the index of the first.
	NonFiniteRaise = "raise"
)

// Options configure how one batch of losses becomes weights. The zero value
// of a field means its default.
type Options struct {
	// Strategy is a registered strategy name; default LinUpper.
	Strategy string `json:"strategy"`
	// Delta is the half-width of the normalised range [-delta, delta]; it
	// must be > 0. Default 1, as in the paper.
	Delta float64 `json:"delta"`
	// Cap, when > 0, bounds every weight by Cap/M (M the number of samples
	// with a finite loss) through the exact KL projection onto the capped
	// simplex. It must be >= 1. 0 means no cap.
	Cap float64 `json:"cap,omitempty"`
	// NonFinite is NonFiniteZero (default) or NonFiniteRaise.
	NonFinite string `json:"nonfinite"`
	// Q is the fraction used by TopK (kept, in (0, 1]) and Truncate
	// (dropped, in [0, 1)). Other strategies ignore it.
	Q float64 `json:"q,omitempty"`
	// DomainMultipliers, when set, multiply the weight of every sample of
	// domain d by DomainMultipliers[d] before the final normalisation (to
	// combine with domain-level methods such as DoReMi or DoGE). They must
	// be finite and >= 0; every domain id in a batch must have one.
	DomainMultipliers []float64 `json:"domain_multipliers,omitempty"`
}

// withDefaults fills the zero-valued fields with their defaults.
func (o Options) withDefaults() Options {
	if o.Strategy == "" {
		o.Strategy = LinUpper
	}
	if o.Delta == 0 {
		o.Delta = 1
	}
	if o.NonFinite == "" {
		o.NonFinite = NonFiniteZero
	}
	return o
}

// Validate reports the first problem with the options (after defaults), or nil.
func (o Options) Validate() error {
	o = o.withDefaults()
	if _, err := Lookup(o.Strategy); err != nil {
		return err
	}
	if !(o.Delta > 0) || math.IsInf(o.Delta, 1) {
		return fmt.Errorf("goreweight: delta must be a finite number > 0, got %v", o.Delta)
	}
	if o.Cap != 0 && (!(o.Cap >= 1) || math.IsInf(o.Cap, 1)) {
		return fmt.Errorf("goreweight: cap must be a finite number >= 1 (or 0 for no cap), got %v", o.Cap)
	}
	switch o.NonFinite {
	case NonFiniteZero, NonFiniteRaise:
	default:
		return fmt.Errorf("goreweight: nonfinite must be %q or %q, got %q", NonFiniteZero, NonFiniteRaise, o.NonFinite)
	}
	switch o.Strategy {
	case TopK:
		if !(o.Q > 0 && o.Q <= 1) {
			return fmt.Errorf("goreweight: strategy %q needs q in (0, 1], got %v", TopK, o.Q)
		}
	case Truncate:
		if !(o.Q >= 0 && o.Q < 1) {
			return fmt.Errorf("goreweight: strategy %q needs q in [0, 1), got %v", Truncate, o.Q)
		}
	}
	for d, m := range o.DomainMultipliers {
		if !(m >= 0) || math.IsInf(m, 1) {
			return fmt.Errorf("goreweight: domain multiplier %d must be finite and >= 0, got %v", d, m)
		}
	}
	return nil
}

// errEmpty is returned for a batch with no samples.
var errEmpty = errors.New("goreweight: empty batch: there are no losses to weight")
