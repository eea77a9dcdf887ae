package goreweight

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
)

// Config is the full configuration of a Reweighter: the weighting options
// and the temperature schedule. Its JSON form is what the C ABI and the
// Python package exchange, e.g.
//
//	{"strategy": "linupper", "delta": 1, "cap": 2, "nonfinite": "zero",
//	 "schedule": {"kind": "linear", "r_start": 100, "r_end": 1, "steps": 10000, "warmup": 500}}
type Config struct {
	Options
	Schedule Schedule `json:"schedule"`
}

// DefaultConfig returns DefaultOptions and no schedule: set Schedule (its
// kind has no default) before use. Decoding a JSON configuration on top of
// it gives the defaults for the keys left out.
func DefaultConfig() Config { return Config{Options: DefaultOptions()} }

// Validate reports the first problem with the configuration, or nil.
func (c Config) Validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	return c.Schedule.Validate()
}

// A Reweighter is the stateful reweighting of a training run: it holds the
// configuration and the global step, takes each step's temperature from the
// schedule, and returns the weights and their statistics. Its state is the
// configuration and the step, so a run restored from State continues
// exactly as an uninterrupted one. A Reweighter is not safe for concurrent
// use.
type Reweighter struct {
	cfg  Config
	w    *Weigher
	step int64
}

// New returns a Reweighter at step 0, or an error naming the first invalid
// setting.
func New(cfg Config) (*Reweighter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := NewWeigher(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = w.Options()
	return &Reweighter{cfg: cfg, w: w}, nil
}

// Config returns the configuration.
func (rw *Reweighter) Config() Config { c := rw.cfg; c.Options = rw.w.Options(); return c }

// Step returns the global step the next call to Weights will use.
func (rw *Reweighter) Step() int64 { return rw.step }

// SetStep moves the reweighter to a global step (e.g. a trainer's own step
// counter after resuming). step must be >= 0.
func (rw *Reweighter) SetStep(step int64) error {
	if step < 0 {
		return invalidf("goreweight: step must be >= 0 (at most %d), got %d", int64(math.MaxInt64), step)
	}
	rw.step = step
	return nil
}

// R returns the temperature at the current step (+Inf during warm-up).
func (rw *Reweighter) R() float64 { return rw.cfg.Schedule.At(rw.step) }

// Weights writes the weights of one global batch into dst at the current
// step's temperature, then advances the step. On error the step does not
// advance. See Weigher.Weights for the arguments; the Stats belong to the
// Reweighter and are overwritten by the next call.
func (rw *Reweighter) Weights(dst, losses []float32, domains []int32) (*Stats, error) {
	if rw.step == math.MaxInt64 {
		return nil, invalidf("goreweight: step %d is the largest step: the step counter cannot advance past it (SetStep to go back)", rw.step)
	}
	st, err := rw.w.Weights(dst, losses, domains, rw.R())
	if err != nil {
		return nil, err
	}
	st.Step = rw.step
	rw.step++
	return st, nil
}

// WeightsMasked is Weights for a dense batch of which only some entries
// are counted (token-level losses with a mask, scores from a reference
// loss): see Weigher.WeightsMasked. The step advances as in Weights.
func (rw *Reweighter) WeightsMasked(dst []float32, b MaskedBatch) (*Stats, error) {
	if rw.step == math.MaxInt64 {
		return nil, invalidf("goreweight: step %d is the largest step: the step counter cannot advance past it (SetStep to go back)", rw.step)
	}
	st, err := rw.w.WeightsMasked(dst, b, rw.R())
	if err != nil {
		return nil, err
	}
	st.Step = rw.step
	rw.step++
	return st, nil
}

// stateVersion is the version of the JSON state format.
const stateVersion = 1

type state struct {
	Version int    `json:"version"`
	Config  Config `json:"config"`
	Step    int64  `json:"step"`
}

// State returns the reweighter's state as JSON: the configuration and the
// step.
func (rw *Reweighter) State() ([]byte, error) {
	return json.Marshal(state{Version: stateVersion, Config: rw.Config(), Step: rw.step})
}

// Restore returns a Reweighter from a State, at the saved step. The state
// is checked as strictly as New checks a configuration, and more: unknown
// keys and trailing data are errors, and nothing has a default (a state
// written by State holds every field), so a damaged or hand-edited state
// never loads as something else.
func Restore(data []byte) (*Reweighter, error) {
	var s state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, invalidf("goreweight: reading state: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidf("goreweight: reading state: unexpected data after the JSON value")
	}
	if s.Version != stateVersion {
		return nil, invalidf("goreweight: state version %d, this build reads version %d", s.Version, stateVersion)
	}
	rw, err := New(s.Config)
	if err != nil {
		return nil, invalidf("goreweight: state: %w", err)
	}
	if err := rw.SetStep(s.Step); err != nil {
		return nil, err
	}
	return rw, nil
}

// LoadState replaces the reweighter's configuration and step by a State.
func (rw *Reweighter) LoadState(data []byte) error {
	n, err := Restore(data)
	if err != nil {
		return err
	}
	*rw = *n
	return nil
}

// MaxWeightBound returns the largest weight any batch of M finite losses can
// get at temperature r when the score range is D (D = delta for linupper,
// extremes and dro-kl, 1 for quadratic): one sample at the top of the range,
// the rest at the bottom, e^(D/r)/(e^(D/r)+M-1). Theorem 1 of the paper
// wants weights <= 2/M, which softmax guarantees only for r >= D/ln 2.
func MaxWeightBound(M int, D, r float64) float64 {
	if math.IsInf(r, 1) {
		return 1 / float64(M)
	}
	return 1 / (1 + float64(M-1)*math.Exp(-D/r))
}
