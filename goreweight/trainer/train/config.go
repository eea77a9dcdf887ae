// Config: the fields of a training run and their defaults.

package train

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/data"
)

// Config is everything a training run needs. Its JSON form (the keys in the
// struct tags) is what --config files, the C ABI's grw_train and Python's
// goreweight.train take; the command-line flags have the same names with
// '-' for '_' (--r-start sets r_start). Zero values of the optional fields
// mean "the default" where the field's comment says so. Start from
// DefaultConfig.
type Config struct {
	// Data is "builtin" (the Go source tree plus synthetic duplicate, noise
	// and known-entropy documents; needs no download) or a path read by
	// data.Open: a text file, a directory, SlimPajama .jsonl/.jsonl.zst,
	// .parquet, or an llm.c .bin token file.
	Data string `json:"data"`
	// DataBytes is the size of the built-in corpus in bytes (ignored for
	// other data).
	DataBytes int `json:"data_bytes"`
	// Tokenizer is "byte" (vocabulary 256) or "gpt2" (50257).
	Tokenizer string `json:"tokenizer"`

	// Strategy trains a single model with this strategy. Set Strategy or
	// Compare, not both; with neither, Compare is DefaultCompare
	// (uniform,linupper,quadratic).
	Strategy string `json:"strategy,omitempty"`
	// Compare trains one model per strategy, in this order, on the same data
	// order and seed. In JSON it is a list or a comma-separated string.
	Compare StrategyList `json:"compare,omitempty"`
	// Schedule is the temperature schedule kind: constant, linear, cosine,
	// exponential or step.
	Schedule string `json:"schedule"`
	// RStart and REnd are the temperatures at the start and end of the
	// annealing (linear, cosine, exponential), before and after the switch
	// (step). A constant schedule uses REnd throughout.
	RStart float64 `json:"r_start"`
	REnd   float64 `json:"r_end"`
	// RSteps is the number of steps the annealing takes after the warm-up
	// (it then holds REnd), or for step the step (after the warm-up) where r
	// switches. 0 means half of the steps after the warm-up: r anneals
	// during the first half and the second half trains at REnd.
	RSteps int `json:"r_steps"`
	// WarmupR is the number of uniform-weight steps before the schedule
	// starts; -1 (the default) means Steps/10.
	WarmupR int `json:"warmup_r"`
	// Cap, when > 0, bounds every weight by Cap/M (exact KL projection, see
	// the core); it must be >= 1. 0: no cap.
	Cap float64 `json:"cap"`
	// Delta is the half-width of the normalised loss range (paper: 1).
	Delta float64 `json:"delta"`
	// Q is the fraction the topk and truncate strategies need.
	Q float64 `json:"q,omitempty"`

	// Steps is the number of optimiser steps per strategy.
	Steps int `json:"steps"`
	// Batch is the number of sequences per step, M; with Accum > 1, per
	// micro-batch (an optimiser step then has Accum·Batch sequences).
	Batch int `json:"batch"`
	// Accum is the number of micro-batches of Batch sequences accumulated
	// into one optimiser step (gradient accumulation); Steps counts
	// optimiser steps and r advances once per optimiser step. 1: none.
	Accum int `json:"accum"`
	// Scope is where the weights are computed under accumulation: "micro"
	// (the default) weights each micro-batch on its own, its weighted loss
	// scaled by 1/Accum; "global" weights all Accum·Batch sequences of the
	// optimiser step at once (exact: a first forward pass without
	// gradients gives the losses, then each micro-batch's forward and
	// backward uses its slice of the weights); "deferred" weights the
	// whole optimiser step approximately without the first pass (each
	// micro-batch's losses are normalised with the previous step's global
	// loss range and backpropagated with unnormalised weights; the
	// accumulated gradient is multiplied by 1/Z, the softmax normaliser of
	// the whole step, before clipping: goreweight.Deferred; not for topk,
	// truncate or cap). See docs/trainer.md.
	Scope string `json:"scope"`
	// Granularity is "sequence" (the default: one weight per sequence, from
	// its mean token loss) or "token" (one weight per target token, from
	// its cross-entropy; the loss is Σ_ij w_ij·l_ij).
	Granularity string `json:"granularity"`
	// Reference, when set, is a goreweight-train run directory, strategy
	// directory or checkpoint file whose model (any size; same tokenizer,
	// context >= Seq) scores every batch without gradients: the weights
	// are computed on the excess loss, loss - reference loss (RHO-LOSS),
	// per sequence or per token; the training loss stays Σ w·loss.
	Reference string `json:"reference,omitempty"`
	// Seq is the sequence length T (the model's context).
	Seq int `json:"seq"`
	// Layers, Heads and Width are the GPT's shape; Width must be a multiple
	// of Heads.
	Layers int `json:"layers"`
	Heads  int `json:"heads"`
	Width  int `json:"width"`
	// LR is the peak learning rate of AdamW, reached after LRWarmup steps of
	// linear warm-up, then decayed along a cosine to LRMin at the last step.
	LR       float64 `json:"lr"`
	LRMin    float64 `json:"lr_min"`
	LRWarmup int     `json:"lr_warmup"`
	// WeightDecay is AdamW's decoupled weight decay (matrices and
	// embeddings only).
	WeightDecay float64 `json:"weight_decay"`
	// Clip is the global gradient-norm clipping threshold; 0 disables it.
	Clip float64 `json:"clip"`
	// Seed drives the model initialisation, the train/validation split,
	// the noise and the batch order.
	Seed uint64 `json:"seed"`
	// Seeds, when given, trains every strategy once per seed, in this
	// order (all strategies of the first seed, then of the next), each
	// seed in its own directory OUT/seed-<n>; Seed is then not used.
	// Within a seed the strategies share initialisation, split, noise and
	// batch order, so their differences are paired; the summary reports
	// the mean, sd and a t interval over seeds. In JSON a list of integers
	// or a comma-separated string. Empty: one run with Seed, in OUT.
	Seeds SeedList `json:"seeds,omitempty"`
	// Preset names a set of settings (see Presets) applied before every
	// other key, so that keys given with it override it.
	Preset string `json:"preset,omitempty"`

	// Noise is the fraction of training windows replaced by random tokens
	// (kind "noise"), in [0, 1): the robustness experiment.
	Noise float64 `json:"noise"`
	// ValFraction is the fraction of each domain's windows held out for
	// validation, in (0, 1).
	ValFraction float64 `json:"val_fraction"`
	// ValMax is the number of validation windows per domain evaluated at
	// each evaluation (an evenly spread subset when a domain has more);
	// 0 evaluates all of them.
	ValMax int `json:"val_max"`

	// Out is the run directory; every file the run writes lands under it.
	// Empty: runs/<YYYYMMDD-HHMMSS> in the working directory, or the Resume
	// directory when resuming.
	Out string `json:"out,omitempty"`
	// Resume is the directory of an earlier run to continue from its last
	// checkpoints. Its config.json is the configuration; only Threads,
	// CkptEvery and Quiet may be given anew (see ResumeConfig).
	Resume string `json:"resume,omitempty"`
	// EvalEvery is the number of steps between validation evaluations (and
	// also at step 0 and the last step).
	EvalEvery int `json:"eval_every"`
	// CkptEvery is the number of steps between checkpoints (one is always
	// written at the last step and on interruption).
	CkptEvery int `json:"ckpt_every"`
	// LogEvery is the number of steps between metrics records (evaluation
	// steps always get one).
	LogEvery int `json:"log_every"`
	// Threads is the number of goroutines the model's layers use (and
	// GOMAXPROCS during the run); 0 means all CPUs. The same seed and thread
	// count give the same run, bit for bit.
	Threads int `json:"threads"`
	// Quiet turns off the progress output.
	Quiet bool `json:"quiet,omitempty"`
}

// DefaultConfig returns the configuration of `goreweight-train` with no
// flags: uniform against linupper and quadratic on the built-in corpus,
// seeds 1, 2 and 3 (nine models), sized to finish in under 10 minutes on
// two CPU cores with the pure-Go backend (about 3 with OpenBLAS).
func DefaultConfig() Config {
	return Config{
		Data:        data.BuiltinPath,
		DataBytes:   2 << 20,
		Tokenizer:   data.TokenizerByte,
		Schedule:    goreweight.ScheduleLinear,
		RStart:      100,
		REnd:        1,
		WarmupR:     -1,
		Delta:       1,
		Steps:       600,
		Batch:       16,
		Accum:       1,
		Scope:       ScopeMicro,
		Granularity: GranularitySequence,
		Seq:         64,
		Layers:      2,
		Heads:       4,
		Width:       64,
		LR:          3e-3,
		LRMin:       3e-4,
		LRWarmup:    20,
		WeightDecay: 0.1,
		Clip:        1,
		Seed:        1,
		Seeds:       SeedList{1, 2, 3},
		ValFraction: 0.1,
		ValMax:      128,
		EvalEvery:   100,
		CkptEvery:   250,
		LogEvery:    1,
	}
}

// The values of Config.Scope and Config.Granularity.
const (
	ScopeMicro          = "micro"
	ScopeGlobal         = "global"
	ScopeDeferred       = "deferred"
	GranularitySequence = "sequence"
	GranularityToken    = "token"
)

// DefaultCompare is the comparison run when neither Strategy nor Compare
// is given.
var DefaultCompare = StrategyList{goreweight.Uniform, goreweight.LinUpper, goreweight.Quadratic}

// StrategyList is a list of strategy names. Its JSON form is a list of
// strings or one comma-separated string; its flag form is comma-separated.
type StrategyList []string

// String returns the names joined by commas.
func (l StrategyList) String() string { return strings.Join(l, ",") }

// Set parses a comma-separated list (flag.Value).
func (l *StrategyList) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// UnmarshalJSON accepts a list of strings or a comma-separated string.
func (l *StrategyList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return l.Set(s)
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("compare must be a list of strategy names or a comma-separated string, got %s", b)
	}
	*l = StrategyList(list)
	return nil
}

// SeedList is a list of seeds. Its JSON form is a list of integers or a
// comma-separated string; its flag form is comma-separated.
type SeedList []uint64

// String returns the seeds joined by commas.
func (l SeedList) String() string {
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = strconv.FormatUint(s, 10)
	}
	return strings.Join(parts, ",")
}

// Set parses a comma-separated list of non-negative integers (flag.Value).
func (l *SeedList) Set(s string) error {
	var out SeedList
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return fmt.Errorf("seeds: %q is not a non-negative integer", p)
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// UnmarshalJSON accepts a list of integers or a comma-separated string.
func (l *SeedList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return l.Set(s)
	}
	var list []uint64
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("seeds must be a list of non-negative integers or a comma-separated string, got %s", b)
	}
	*l = SeedList(list)
	return nil
}

// RunSeeds returns the seeds the run trains: Seeds, or Seed alone.
func (c Config) RunSeeds() []uint64 {
	if len(c.Seeds) > 0 {
		return append([]uint64(nil), c.Seeds...)
	}
	return []uint64{c.Seed}
}

// Strategies returns the strategies the run trains, in order: Compare,
// or Strategy alone, or DefaultCompare.
func (c Config) Strategies() []string {
	switch {
	case len(c.Compare) > 0:
		return append([]string(nil), c.Compare...)
	case c.Strategy != "":
		return []string{c.Strategy}
	}
	return append([]string(nil), DefaultCompare...)
}

// Warmup returns the number of uniform warm-up steps: WarmupR, or Steps/10
// when WarmupR is -1.
func (c Config) Warmup() int {
	if c.WarmupR < 0 {
		return c.Steps / 10
	}
	return c.WarmupR
}

// threads returns the thread count to use.
func (c Config) threads() int {
	if c.Threads > 0 {
		return c.Threads
	}
	return runtime.NumCPU()
}
