// Config validation: each rule once, naming the key.

package train

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/data"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
)

// maxElementsPerStep bounds the tokens of one optimiser step.
const maxElementsPerStep = 1 << 30

// maxSeeds bounds the length of Config.Seeds.
const maxSeeds = 1000

// maxAccum bounds Config.Accum.
const maxAccum = 1 << 16

// A configError is a bad configuration value: its message is the
// trainer's ("train: KEY = VALUE: ..."), and it unwraps to a
// *goreweight.OptionError naming the key (so it Is goreweight.ErrInvalid)
// and to its cause, if any.
type configError struct {
	msg   string
	opt   *goreweight.OptionError
	cause error
}

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.opt, e.cause}
	}
	return []error{e.opt}
}

// keyError returns the configError of key with message msg and cause
// (may be nil).
func keyError(key, msg string, cause error) error {
	return &configError{msg: msg, opt: &goreweight.OptionError{Key: key, Msg: msg}, cause: cause}
}

// Validate reports the first problem with the configuration, naming the
// key, or nil. Errors about one key unwrap to a *goreweight.OptionError
// whose Key is it.
func (c Config) Validate() error {
	bad := func(key string, v any, want string) error {
		return keyError(key, fmt.Sprintf("train: %s = %v: %s", key, v, want), nil)
	}
	if c.Data == "" {
		return bad("data", `""`, `must be "builtin" or a path`)
	}
	if c.Data == data.BuiltinPath && c.DataBytes < 64<<10 {
		return bad("data_bytes", c.DataBytes, "the built-in corpus needs at least 65536 bytes")
	}
	if c.Tokenizer != data.TokenizerByte && c.Tokenizer != data.TokenizerGPT2 {
		return bad("tokenizer", fmt.Sprintf("%q", c.Tokenizer), `must be "byte" or "gpt2"`)
	}
	if c.Strategy != "" && len(c.Compare) > 0 {
		return fmt.Errorf("train: strategy = %q and compare = %q: give one of them, not both", c.Strategy, c.Compare.String())
	}
	seen := map[string]bool{}
	for _, s := range c.Strategies() {
		if seen[s] {
			return bad("compare", fmt.Sprintf("%q", c.Compare.String()), fmt.Sprintf("strategy %q is listed twice", s))
		}
		seen[s] = true
		if _, err := goreweight.Lookup(s); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if strings.ContainsAny(s, `/\`) || s == "." || s == ".." {
			return bad("strategy", fmt.Sprintf("%q", s), "cannot name a directory")
		}
	}
	if len(c.Seeds) > maxSeeds {
		return bad("seeds", c.Seeds.String(), fmt.Sprintf("at most %d seeds", maxSeeds))
	}
	for i, s := range c.Seeds {
		if slices.Contains(c.Seeds[:i], s) {
			return bad("seeds", fmt.Sprintf("%q", c.Seeds.String()), fmt.Sprintf("seed %d is listed twice", s))
		}
	}
	if c.Preset != "" {
		if _, err := (Config{}).WithPreset(c.Preset); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		key string
		v   int
		min int
	}{
		{"steps", c.Steps, 1}, {"batch", c.Batch, 1}, {"seq", c.Seq, 1},
		{"layers", c.Layers, 1}, {"heads", c.Heads, 1}, {"width", c.Width, 1},
		{"eval_every", c.EvalEvery, 1}, {"ckpt_every", c.CkptEvery, 1}, {"log_every", c.LogEvery, 1},
		{"warmup_r", c.WarmupR, -1}, {"r_steps", c.RSteps, 0}, {"lr_warmup", c.LRWarmup, 0},
		{"val_max", c.ValMax, 0}, {"threads", c.Threads, 0},
	} {
		if f.v < f.min {
			return bad(f.key, f.v, fmt.Sprintf("must be at least %d", f.min))
		}
	}
	if c.Accum < 1 || c.Accum > maxAccum {
		return bad("accum", c.Accum, fmt.Sprintf("must be an integer in [1, %d] (micro-batches per optimiser step)", maxAccum))
	}
	if c.Batch > maxElementsPerStep/c.Accum/max(c.Seq, 1) {
		return bad("accum", c.Accum, fmt.Sprintf("accum·batch·seq = %d·%d·%d tokens per optimiser step is too many (at most %d)", c.Accum, c.Batch, c.Seq, maxElementsPerStep))
	}
	if c.Scope != ScopeMicro && c.Scope != ScopeGlobal && c.Scope != ScopeDeferred {
		return bad("scope", fmt.Sprintf("%q", c.Scope), fmt.Sprintf("must be %q (weights per micro-batch), %q (weights of the whole optimiser step, exact) or %q (of the whole step, approximate, without the first pass)", ScopeMicro, ScopeGlobal, ScopeDeferred))
	}
	if c.Granularity != GranularitySequence && c.Granularity != GranularityToken {
		return bad("granularity", fmt.Sprintf("%q", c.Granularity), fmt.Sprintf("must be %q (one weight per sequence) or %q (one weight per target token)", GranularitySequence, GranularityToken))
	}
	if c.Reference != "" {
		if _, err := os.Stat(c.Reference); err != nil {
			return keyError("reference", fmt.Sprintf("train: reference = %q: %v (want a goreweight-train run directory, strategy directory or checkpoint file)", c.Reference, err), err)
		}
	}
	if c.WarmupR >= c.Steps {
		return bad("warmup_r", c.WarmupR, fmt.Sprintf("must be less than steps (%d): the schedule needs steps after the uniform warm-up", c.Steps))
	}
	if c.Threads > 4096 {
		return bad("threads", c.Threads, "must be at most 4096")
	}
	finite := func(key string, v, lo float64, loIncl bool, want string) error {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || (!loIncl && v == lo) {
			return bad(key, v, want)
		}
		return nil
	}
	for _, e := range []error{
		finite("lr", c.LR, 0, false, "must be a finite number > 0"),
		finite("lr_min", c.LRMin, 0, true, "must be a finite number >= 0"),
		finite("weight_decay", c.WeightDecay, 0, true, "must be a finite number >= 0"),
		finite("clip", c.Clip, 0, true, "must be a finite number >= 0 (0: no clipping)"),
	} {
		if e != nil {
			return e
		}
	}
	if c.LRMin > c.LR {
		return bad("lr_min", c.LRMin, fmt.Sprintf("must not exceed lr (%v)", c.LR))
	}
	if !(c.Noise >= 0 && c.Noise < 1) {
		return bad("noise", c.Noise, "must be in [0, 1)")
	}
	if !(c.ValFraction > 0 && c.ValFraction < 1) {
		return bad("val_fraction", c.ValFraction, "must be in (0, 1): validation loss needs held-out windows")
	}
	if err := (gpt.Config{Vocab: 256, Seq: c.Seq, Layers: c.Layers, Heads: c.Heads, Width: c.Width}).Validate(); err != nil {
		if c.Width%max(c.Heads, 1) != 0 {
			return bad("width", c.Width, fmt.Sprintf("must be a multiple of heads (%d)", c.Heads))
		}
		return fmt.Errorf("train: model shape: %w", err)
	}
	for _, s := range c.Strategies() {
		if err := c.Reweighting(s).Validate(); err != nil {
			return fmt.Errorf("train: reweighting for strategy %q: %w (keys schedule, r_start, r_end, r_steps, warmup_r, cap, delta, q)", s, err)
		}
		if c.Scope == ScopeDeferred {
			if err := c.deferredConfig(s).Validate(); err != nil {
				return deferredError(c, s, err)
			}
		}
	}
	return nil
}

// deferredError turns the core's refusal of strategy's deferred
// configuration into the trainer's configError, naming the trainer's key:
// "strategy" (or "compare" when the strategy came from it) or "cap".
func deferredError(c Config, strategy string, err error) error {
	key := "scope"
	var v any = fmt.Sprintf("%q", strategy)
	var oe *goreweight.OptionError
	if errors.As(err, &oe) {
		switch oe.Key {
		case "strategy":
			key = "strategy"
			if len(c.Compare) > 0 {
				key, v = "compare", fmt.Sprintf("%q", c.Compare.String())
			}
		case "cap":
			key, v = "cap", c.Cap
		}
	}
	if key == "scope" {
		v = fmt.Sprintf("%q", c.Scope)
	}
	return keyError(key, fmt.Sprintf("train: %s = %v: not available with scope = %q: %v (scope %q supports it)", key, v, ScopeDeferred, err, ScopeGlobal), err)
}
