package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

// Summary is the result of a run: one RunSummary per strategy and the
// files written. It is written to OUT/summary.json and, as a table, to
// OUT/summary.md.
type Summary struct {
	// Out is the run directory.
	Out string `json:"out"`
	// Baseline is the strategy the others are compared against: uniform
	// when it is among the strategies, else the first.
	Baseline string `json:"baseline"`
	// Domains are the data's domains, sorted.
	Domains []string `json:"domains"`
	// Runs holds one result per strategy, in training order.
	Runs []RunSummary `json:"runs"`
	// Files are the files the run wrote (paths under Out).
	Files []string `json:"files"`
	// Data describes the data in one line.
	Data string `json:"data"`
	// Params is the model's parameter count.
	Params int `json:"params"`
	// Backend is the GEMM backend (gonum or openblas); Threads the thread
	// count.
	Backend string `json:"backend"`
	Threads int    `json:"threads"`
	// WallS is the wall time of this call of Run, in seconds.
	WallS Float `json:"wall_s"`
	// Config is the run's configuration.
	Config Config `json:"config"`
}

// RunSummary is the result of one strategy.
type RunSummary struct {
	Strategy string `json:"strategy"`
	// ValLoss is the final validation loss averaged over the domains (each
	// counts once); Val the final validation loss per domain. Nats per
	// token.
	ValLoss Float            `json:"val_loss"`
	Val     map[string]Float `json:"val"`
	// DeltaVsBaseline is ValLoss minus the baseline's (negative: better).
	DeltaVsBaseline Float `json:"delta_vs_baseline"`
	// StepToBaseline is the first evaluation step at which ValLoss was at
	// or below the baseline's final ValLoss; null when it never was.
	StepToBaseline *int `json:"step_to_baseline"`
	// TrainLoss is the unweighted training loss averaged over the records
	// of the last 10% of the steps.
	TrainLoss Float `json:"train_loss"`
	// MaxWM is the largest max w·M of any step.
	MaxWM Float `json:"max_wm"`
	// TokensPerS is the training throughput (evaluation and checkpoints
	// excluded); TrainS the training time and WallS the wall time of the
	// strategy, all sessions together.
	TokensPerS Float `json:"tokens_per_s"`
	TrainS     Float `json:"train_s"`
	WallS      Float `json:"wall_s"`
}

// finalVal returns the last record with validation losses.
func finalVal(recs []Record) *Record {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].ValLoss != nil {
			return &recs[i]
		}
	}
	return nil
}

func summarize(cfg Config, e *env, results []runResult, wall time.Duration) (*Summary, error) {
	gcfg := gpt.Config{Vocab: e.ds.Tokenizer().VocabSize(), Seq: cfg.Seq, Layers: cfg.Layers, Heads: cfg.Heads, Width: cfg.Width}
	m, err := gpt.New(gcfg, 0)
	if err != nil {
		return nil, err
	}
	s := &Summary{Out: cfg.Out, Domains: e.domains, Data: e.desc, Params: m.NumParams(), Backend: nn.Backend(),
		Threads: cfg.Threads, WallS: Float(wall.Seconds()), Config: cfg}
	names := make([]string, len(results))
	for i, r := range results {
		names[i] = r.strategy
	}
	s.Baseline = names[0]
	if slices.Contains(names, "uniform") {
		s.Baseline = "uniform"
	}
	base := finalVal(results[slices.Index(names, s.Baseline)].records)
	for _, r := range results {
		rs := RunSummary{Strategy: r.strategy, ValLoss: nan, DeltaVsBaseline: nan, TrainLoss: nan, MaxWM: nan,
			TrainS: Float(r.trainS), WallS: Float(r.wallS)}
		if r.trainS > 0 {
			rs.TokensPerS = Float(float64(cfg.Steps*cfg.Batch*cfg.Seq) / r.trainS)
		}
		if fv := finalVal(r.records); fv != nil {
			rs.ValLoss, rs.Val = *fv.ValLoss, fv.Val
			if base != nil {
				rs.DeltaVsBaseline = *fv.ValLoss - *base.ValLoss
			}
		}
		var tl float64
		n := 0
		mx := math.Inf(-1)
		for _, rec := range r.records {
			if rec.Step > 0 && rec.Step > cfg.Steps-max(cfg.Steps/10, 1) && rec.Loss.Valid() {
				tl += float64(rec.Loss)
				n++
			}
			if rec.MaxWM.Valid() {
				mx = max(mx, float64(rec.MaxWM))
			}
			if base != nil && rs.StepToBaseline == nil && rec.ValLoss != nil && rec.ValLoss.Valid() && *rec.ValLoss <= *base.ValLoss {
				st := rec.Step
				rs.StepToBaseline = &st
			}
		}
		if n > 0 {
			rs.TrainLoss = Float(tl / float64(n))
		}
		rs.MaxWM = Float(mx)
		s.Runs = append(s.Runs, rs)
	}
	return s, nil
}

// writeSummary writes the plots, summary.md and summary.json, and fills in
// s.Files.
func writeSummary(cfg Config, e *env, s *Summary, results []runResult, warn io.Writer) error {
	files := []string{configName, metricsName}
	for _, r := range results {
		files = append(files, filepath.Join(r.strategy, samplesName), filepath.Join(r.strategy, checkpointName))
	}
	plots, err := writePlots(cfg, e, s, results, warn)
	if err != nil {
		return err
	}
	files = append(files, plots...)
	files = append(files, summaryMD, summaryJSON)
	s.Files = nil
	for _, f := range files {
		s.Files = append(s.Files, filepath.Join(cfg.Out, f))
	}
	if err := writeAtomic(filepath.Join(cfg.Out, summaryMD), func(w io.Writer) error {
		_, err := io.WriteString(w, s.Markdown())
		return err
	}); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(cfg.Out, summaryJSON), append(b, '\n'))
}

// fmtLoss formats a loss with 4 decimals, or "—".
func fmtLoss(f Float) string {
	if !f.Valid() {
		return "—"
	}
	return fmt.Sprintf("%.4f", float64(f))
}

// Table returns the results as a Markdown table: final validation loss
// averaged and per domain, the difference to the baseline, the step at
// which each strategy reached the baseline's final loss, and throughput.
func (s *Summary) Table() string {
	var b strings.Builder
	head := []string{"strategy", "val loss (avg)", "Δ vs " + s.Baseline}
	head = append(head, s.Domains...)
	head = append(head, "reached "+s.Baseline+"'s final at step", "train loss", "max w·M", "tokens/s", "train time")
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range s.Runs {
		row := []string{r.Strategy, fmtLoss(r.ValLoss), fmt.Sprintf("%+.4f", float64(r.DeltaVsBaseline))}
		if !r.DeltaVsBaseline.Valid() {
			row[2] = "—"
		}
		for _, d := range s.Domains {
			row = append(row, fmtLoss(r.Val[d]))
		}
		reached := "never"
		if r.StepToBaseline != nil {
			reached = fmt.Sprint(*r.StepToBaseline)
		}
		row = append(row, reached, fmtLoss(r.TrainLoss), fmt.Sprintf("%.2f", float64(r.MaxWM)),
			fmtCount(float64(r.TokensPerS)), fmtDuration(time.Duration(float64(r.TrainS)*float64(time.Second))))
		fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
	}
	return b.String()
}

// Markdown returns summary.md: the setup, the table and how to read it.
func (s *Summary) Markdown() string {
	c := s.Config
	var b strings.Builder
	names := make([]string, len(s.Runs))
	for i, r := range s.Runs {
		names[i] = r.Strategy
	}
	fmt.Fprintf(&b, "# goreweight-train: %s\n\n", strings.Join(names, " vs "))
	fmt.Fprintf(&b, "- %s\n", s.Data)
	fmt.Fprintf(&b, "- model: GPT, %d layers, %d heads, width %d, context %d, %d parameters; batch %d, %d steps (%d tokens per strategy)\n",
		c.Layers, c.Heads, c.Width, c.Seq, s.Params, c.Batch, c.Steps, c.Steps*c.Batch*c.Seq)
	fmt.Fprintf(&b, "- AdamW lr %g (warm-up %d steps, cosine to %g), weight decay %g, clip %g; seed %d; noise %g\n",
		c.LR, c.LRWarmup, c.LRMin, c.WeightDecay, c.Clip, c.Seed, c.Noise)
	fmt.Fprintf(&b, "- reweighting: %s\n", describeSchedule(c))
	fmt.Fprintf(&b, "- %s backend, %d threads; wall time %s\n\n", s.Backend, s.Threads, fmtDuration(time.Duration(float64(s.WallS)*float64(time.Second))))
	b.WriteString(s.Table())
	fmt.Fprintf(&b, `
Validation loss is the mean token cross-entropy (nats) on held-out windows after the last step;
"avg" counts each domain once. Lower is better. "reached %s's final at step" is the first
evaluation step (every %d steps) at which a strategy's averaged validation loss was at or below
%s's final one. "max w·M" is the largest weight times the batch size at any step (1 = uniform;
Theorem 1 of the paper wants at most 2).
`, s.Baseline, c.EvalEvery, s.Baseline)
	var plots []string
	for _, f := range s.Files {
		if strings.HasSuffix(f, ".png") {
			plots = append(plots, filepath.Base(f))
		}
	}
	if len(plots) > 0 {
		fmt.Fprintf(&b, "Plots: %s.\n", strings.Join(plots, ", "))
	}
	return b.String()
}

// describeSchedule says in words what the temperature does.
func describeSchedule(c Config) string {
	rc := c.Reweighting("uniform").Schedule
	var what string
	switch rc.Kind {
	case "constant":
		what = fmt.Sprintf("r = %g", rc.R)
	case "step":
		what = fmt.Sprintf("r = %g for %d steps, then %g", rc.Values[0], rc.Boundaries[0], rc.Values[1])
	default:
		what = fmt.Sprintf("r %s from %g to %g over %d steps", rc.Kind, rc.RStart, rc.REnd, rc.Steps)
	}
	s := fmt.Sprintf("%d uniform warm-up steps, then %s; delta %g", c.Warmup(), what, c.Delta)
	if c.Cap > 0 {
		s += fmt.Sprintf(", cap %g/M", c.Cap)
	}
	return s
}
