package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/data"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
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
	// Compare, not both; with neither, Compare is uniform,linupper.
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
	// Batch is the number of sequences per step, M.
	Batch int `json:"batch"`
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
// flags: uniform against linupper on the built-in corpus, sized to finish in
// a few minutes on two CPU cores.
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
		Steps:       1000,
		Batch:       16,
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
		ValFraction: 0.1,
		ValMax:      64,
		EvalEvery:   50,
		CkptEvery:   250,
		LogEvery:    1,
	}
}

// DefaultCompare is the comparison run when neither Strategy nor Compare
// is given.
var DefaultCompare = StrategyList{goreweight.Uniform, goreweight.LinUpper}

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

// Keys returns the JSON keys of Config, sorted.
func Keys() []string {
	var keys []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		keys = append(keys, jsonName(t.Field(i)))
	}
	sort.Strings(keys)
	return keys
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// ParseJSON applies the keys of a JSON object to c and returns the result
// and the keys the object set (normalised). Keys may use '-' or '_'
// ("r-start" is "r_start"); an unknown key, a duplicate or a value of the
// wrong type is an error naming it. The result is not validated.
func (c Config) ParseJSON(b []byte) (Config, []string, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return c, nil, fmt.Errorf("train: config is not a JSON object: %w", err)
	}
	if raw == nil {
		return c, nil, fmt.Errorf("train: config must be a JSON object, got null")
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return c, nil, fmt.Errorf("train: config: unexpected data after the JSON object")
	}
	known := Keys()
	norm := make(map[string]json.RawMessage, len(raw))
	var keys []string
	for k, v := range raw {
		n := strings.ReplaceAll(strings.TrimLeft(k, "-"), "-", "_")
		if _, dup := norm[n]; dup {
			return c, nil, fmt.Errorf("train: config sets %q twice (keys may use '-' or '_')", n)
		}
		if !slices.Contains(known, n) {
			return c, nil, fmt.Errorf("train: unknown config key %q (known: %s)", k, strings.Join(known, ", "))
		}
		norm[n] = v
		keys = append(keys, n)
	}
	sort.Strings(keys)
	// Decode key by key so that an error names the key.
	v := reflect.ValueOf(&c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name := jsonName(t.Field(i))
		r, ok := norm[name]
		if !ok {
			continue
		}
		f := v.Field(i).Addr().Interface()
		d := json.NewDecoder(bytes.NewReader(r))
		d.DisallowUnknownFields()
		if err := d.Decode(f); err != nil {
			return c, nil, fmt.Errorf("train: config key %q: %s: %w", name, r, err)
		}
	}
	return c, keys, nil
}

// LoadConfigFile reads a JSON config file and applies it to base (see
// ParseJSON).
func LoadConfigFile(base Config, path string) (Config, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return base, nil, fmt.Errorf("train: reading config file: %w", err)
	}
	c, keys, err := base.ParseJSON(b)
	if err != nil {
		return base, nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, keys, nil
}

// Validate reports the first problem with the configuration, naming the
// key, or nil.
func (c Config) Validate() error {
	bad := func(key string, v any, want string) error {
		return fmt.Errorf("train: %s = %v: %s", key, v, want)
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
	}
	return nil
}

// Reweighting returns the core configuration of one strategy's run: the
// options and the temperature schedule built from Schedule, RStart, REnd,
// RSteps and WarmupR.
func (c Config) Reweighting(strategy string) goreweight.Config {
	after := int64(c.Steps - c.Warmup())
	n := int64(c.RSteps)
	if n == 0 {
		n = max(after/2, 1)
	}
	var s goreweight.Schedule
	switch c.Schedule {
	case goreweight.ScheduleConstant:
		s = goreweight.Constant(c.REnd)
	case goreweight.ScheduleStep:
		s = goreweight.StepSchedule([]int64{n}, []float64{c.RStart, c.REnd})
	default: // linear, cosine, exponential; anything else fails Validate
		s = goreweight.Schedule{Kind: c.Schedule, RStart: c.RStart, REnd: c.REnd, Steps: n}
	}
	o := goreweight.DefaultOptions()
	o.Strategy, o.Delta, o.Cap, o.Q = strategy, c.Delta, c.Cap, c.Q
	return goreweight.Config{Options: o, Schedule: s.WithWarmup(int64(c.Warmup()))}
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

// resumable lists the keys a resumed run may change: they do not change
// what is computed.
var resumable = []string{"threads", "ckpt_every", "quiet", "resume", "out"}

// ResumeConfig returns the configuration of the run in dir (its
// config.json) with the keys given by the caller applied: set is the
// caller's configuration and keys the keys the caller set explicitly.
// Threads, CkptEvery and Quiet may change; any other key that differs from
// the saved run is an error, because the resumed run would no longer equal
// an uninterrupted one.
func ResumeConfig(dir string, set Config, keys []string) (Config, error) {
	b, err := os.ReadFile(configPath(dir))
	if err != nil {
		return Config{}, fmt.Errorf("train: resume %s: %w (is it the --out directory of an earlier run?)", dir, err)
	}
	saved, _, err := Config{}.ParseJSON(b)
	if err != nil {
		return Config{}, fmt.Errorf("train: resume %s: %w", dir, err)
	}
	sv, nv := reflect.ValueOf(&saved).Elem(), reflect.ValueOf(set)
	t := sv.Type()
	for i := range t.NumField() {
		name := jsonName(t.Field(i))
		if !slices.Contains(keys, name) {
			continue
		}
		if slices.Contains(resumable, name) {
			if name != "resume" && name != "out" {
				sv.Field(i).Set(nv.Field(i))
			}
			continue
		}
		if !reflect.DeepEqual(sv.Field(i).Interface(), nv.Field(i).Interface()) {
			return Config{}, fmt.Errorf("train: resume %s: %s = %v differs from the run's %v; only %s may change when resuming (start a new run with another out directory instead)",
				dir, name, nv.Field(i).Interface(), sv.Field(i).Interface(), strings.Join(resumable[:3], ", "))
		}
	}
	if slices.Contains(keys, "out") && set.Out != "" && filepath.Clean(set.Out) != filepath.Clean(dir) {
		return Config{}, fmt.Errorf("train: resume %s: out = %q: a resumed run writes into the directory it resumes; leave out unset", dir, set.Out)
	}
	saved.Resume = dir
	saved.Out = dir
	return saved, nil
}
