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
	// Seeds are the seeds trained, in order.
	Seeds []uint64 `json:"seeds"`
	// Runs holds one result per (strategy, seed), in training order: all
	// strategies of the first seed, then of the next.
	Runs []RunSummary `json:"runs"`
	// Strategies aggregates the runs of each strategy over the seeds,
	// keyed by strategy name.
	Strategies map[string]*StrategyStats `json:"strategies"`
	// EvalNoise is how much the finite validation set alone moves the
	// numbers, against how much the seeds do.
	EvalNoise EvalNoise `json:"eval_noise"`
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
	// Config is the run's configuration (with accum, scope, granularity
	// and reference).
	Config Config `json:"config"`
	// Reference describes the reference model of Config.Reference, if any.
	Reference *ReferenceInfo `json:"reference,omitempty"`
}

// RunSummary is the result of one strategy with one seed.
type RunSummary struct {
	Strategy string `json:"strategy"`
	Seed     uint64 `json:"seed"`
	// ValLoss is the final validation loss averaged over the domains (each
	// counts once); Val the final validation loss per domain. Nats per
	// token.
	ValLoss Float            `json:"val_loss"`
	Val     map[string]Float `json:"val"`
	// ValSE is the standard error of ValLoss over the validation windows
	// (the evaluation noise of one model's number).
	ValSE Float `json:"val_se"`
	// DeltaVsBaseline is ValLoss minus the same seed's baseline's
	// (negative: better).
	DeltaVsBaseline Float `json:"delta_vs_baseline"`
	// DeltaSE is the standard error of DeltaVsBaseline over the
	// validation windows (both models on the same windows): the
	// evaluation noise of the paired difference.
	DeltaSE Float `json:"delta_se"`
	// StepToBaseline is the first evaluation step at which ValLoss was at
	// or below the same seed's baseline's final ValLoss; null when it
	// never was.
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

// StrategyStats aggregates one strategy's runs over the seeds. With one
// seed the standard deviations and intervals are null.
type StrategyStats struct {
	// NSeeds is the number of seeds.
	NSeeds int `json:"n_seeds"`
	// ValLossMean and ValLossSD are the mean and sample standard deviation
	// of the final domain-averaged validation loss over seeds.
	ValLossMean Float `json:"val_loss_mean"`
	ValLossSD   Float `json:"val_loss_sd"`
	// DeltaMean is the mean over seeds of the paired difference to the
	// baseline (the same seed's baseline run); DeltaSD its sample sd;
	// DeltaCI95 the 95% t interval of the mean ([low, high], n-1 degrees
	// of freedom). Negative: better than the baseline.
	DeltaMean Float   `json:"delta_mean"`
	DeltaSD   Float   `json:"delta_sd"`
	DeltaCI95 []Float `json:"delta_ci95"`
	// SeedsBetter is the number of seeds on which the strategy's validation
	// loss was below the baseline's.
	SeedsBetter int `json:"seeds_better"`
	// MaxWM is the largest max w·M of any step of any seed.
	MaxWM Float `json:"max_wm"`
	// Domains holds the same per domain.
	Domains map[string]*DomainStats `json:"domains"`
}

// DomainStats aggregates one domain's final validation loss over seeds.
type DomainStats struct {
	ValMean   Float   `json:"val_mean"`
	ValSD     Float   `json:"val_sd"`
	DeltaMean Float   `json:"delta_mean"`
	DeltaSD   Float   `json:"delta_sd"`
	DeltaCI95 []Float `json:"delta_ci95"`
}

// EvalNoise compares the evaluation noise with the seed-to-seed spread.
type EvalNoise struct {
	// ValWindows is the number of validation windows each model is
	// evaluated on (all domains; the same windows within a seed).
	ValWindows int `json:"val_windows"`
	// ValSE is the mean over runs of RunSummary.ValSE; DeltaSE the mean
	// over the non-baseline runs of RunSummary.DeltaSE.
	ValSE   Float `json:"val_se"`
	DeltaSE Float `json:"delta_se"`
	// DeltaSeedSD is the mean over non-baseline strategies of the
	// sample sd of the paired difference over seeds (null with one seed):
	// the spread the confidence intervals are built from.
	DeltaSeedSD Float `json:"delta_seed_sd"`
}

// pickBaseline returns the strategy the others are compared against:
// uniform when it is among them, else the first.
func pickBaseline(names []string) string {
	if slices.Contains(names, "uniform") {
		return "uniform"
	}
	return names[0]
}

func summarize(cfg Config, seeds []seedRun, wall time.Duration) (*Summary, error) {
	e := seeds[0].env
	gcfg := gpt.Config{Vocab: e.ds.Tokenizer().VocabSize(), Seq: cfg.Seq, Layers: cfg.Layers, Heads: cfg.Heads, Width: cfg.Width}
	m, err := gpt.New(gcfg, 0)
	if err != nil {
		return nil, err
	}
	s := &Summary{Out: cfg.Out, Domains: e.domains, Data: e.desc, Params: m.NumParams(), Backend: nn.Backend(),
		Threads: cfg.Threads, WallS: Float(wall.Seconds()), Config: cfg, Strategies: map[string]*StrategyStats{}, Reference: e.refInfo()}
	names := cfg.Strategies()
	s.Baseline = pickBaseline(names)
	for _, sr := range seeds {
		s.Seeds = append(s.Seeds, sr.cfg.Seed)
		bi := slices.Index(names, s.Baseline)
		base := finalVal(sr.results[bi].records)
		for i, r := range sr.results {
			rs := runSummary(sr.cfg, r, base)
			rs.ValSE = Float(sr.evals[i].se())
			rs.DeltaSE = Float(sr.evals[i].pairedSE(sr.evals[bi]))
			s.Runs = append(s.Runs, rs)
		}
	}
	for _, d := range seeds[0].env.val {
		for _, b := range d {
			s.EvalNoise.ValWindows += len(b.IDs)
		}
	}
	aggregate(s, names)
	return s, nil
}

// runSummary summarises one strategy's run of one seed; base is the final
// validation record of the same seed's baseline (nil if unknown).
func runSummary(cfg Config, r runResult, base *Record) RunSummary {
	rs := RunSummary{Strategy: r.strategy, Seed: cfg.Seed, ValLoss: nan, DeltaVsBaseline: nan, TrainLoss: nan, MaxWM: nan,
		ValSE: nan, DeltaSE: nan, TrainS: Float(r.trainS), WallS: Float(r.wallS)}
	if r.trainS > 0 {
		rs.TokensPerS = Float(float64(cfg.Steps*cfg.Accum*cfg.Batch*cfg.Seq) / r.trainS)
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
	return rs
}

// aggregate fills in s.Strategies and the seed spread of s.EvalNoise from
// s.Runs.
func aggregate(s *Summary, names []string) {
	var valSE, deltaSE, seedSD []float64
	for _, name := range names {
		st := &StrategyStats{Domains: map[string]*DomainStats{}}
		var vals, deltas []float64
		dv := map[string][]float64{}
		dd := map[string][]float64{}
		mx := math.Inf(-1)
		for _, r := range s.Runs {
			if r.Strategy != name {
				continue
			}
			st.NSeeds++
			vals = append(vals, float64(r.ValLoss))
			deltas = append(deltas, float64(r.DeltaVsBaseline))
			if r.DeltaVsBaseline < 0 {
				st.SeedsBetter++
			}
			if r.MaxWM.Valid() {
				mx = max(mx, float64(r.MaxWM))
			}
			valSE = append(valSE, float64(r.ValSE))
			if name != s.Baseline {
				deltaSE = append(deltaSE, float64(r.DeltaSE))
			}
			var base *RunSummary
			for i := range s.Runs {
				if s.Runs[i].Seed == r.Seed && s.Runs[i].Strategy == s.Baseline {
					base = &s.Runs[i]
				}
			}
			for _, d := range s.Domains {
				v, ok := r.Val[d]
				if !ok {
					v = nan
				}
				dv[d] = append(dv[d], float64(v))
				bv := nan
				if base != nil {
					if b, ok := base.Val[d]; ok {
						bv = b
					}
				}
				dd[d] = append(dd[d], float64(v)-float64(bv))
			}
		}
		st.ValLossMean, st.ValLossSD = Float(mean(vals)), Float(sampleSD(vals))
		st.DeltaMean, st.DeltaSD, st.DeltaCI95 = Float(mean(deltas)), Float(sampleSD(deltas)), ci95(deltas)
		st.MaxWM = Float(mx)
		for _, d := range s.Domains {
			st.Domains[d] = &DomainStats{ValMean: Float(mean(dv[d])), ValSD: Float(sampleSD(dv[d])),
				DeltaMean: Float(mean(dd[d])), DeltaSD: Float(sampleSD(dd[d])), DeltaCI95: ci95(dd[d])}
		}
		if name != s.Baseline {
			seedSD = append(seedSD, sampleSD(deltas))
		}
		s.Strategies[name] = st
	}
	s.EvalNoise.ValSE, s.EvalNoise.DeltaSE, s.EvalNoise.DeltaSeedSD = Float(mean(valSE)), Float(mean(deltaSE)), Float(mean(seedSD))
}

// writeSummary writes the plots, summary.md and summary.json, and fills in
// s.Files.
func writeSummary(cfg Config, s *Summary, seeds []seedRun, warn io.Writer) error {
	files := []string{configName}
	for _, sr := range seeds {
		rel, _ := filepath.Rel(cfg.Out, sr.cfg.Out)
		files = append(files, filepath.Join(rel, metricsName))
		for _, r := range sr.results {
			files = append(files, filepath.Join(rel, r.strategy, samplesName), filepath.Join(rel, r.strategy, checkpointName))
		}
	}
	plots, err := writePlots(cfg, s, seeds, warn)
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

// fmtCI formats a 95% interval, or "—".
func fmtCI(ci []Float) string {
	if len(ci) != 2 || !ci[0].Valid() || !ci[1].Valid() {
		return "—"
	}
	return fmt.Sprintf("[%+.4f, %+.4f]", float64(ci[0]), float64(ci[1]))
}

// fmtDelta formats a signed difference, or "—".
func fmtDelta(f Float) string {
	if !f.Valid() {
		return "—"
	}
	return fmt.Sprintf("%+.4f", float64(f))
}

// fmtMeanSD formats "mean ± sd" (just the mean when sd is unknown).
func fmtMeanSD(m, sd Float) string {
	if !sd.Valid() {
		return fmtLoss(m)
	}
	return fmt.Sprintf("%s ± %.4f", fmtLoss(m), float64(sd))
}

// SeedTable returns the results over seeds as Markdown: per strategy the
// mean ± sd of the final validation loss, the mean paired difference to
// the baseline with its 95% t interval, on how many seeds it beat the
// baseline; then the difference per domain; then every run.
func (s *Summary) SeedTable() string {
	var b strings.Builder
	names := s.strategyOrder()
	n := len(s.Seeds)
	fmt.Fprintf(&b, "| strategy | val loss (avg), mean ± sd | Δ vs %s, mean | 95%% CI of Δ (t, %d dof) | seeds better | max w·M |\n|---|---|---|---|---|---|\n", s.Baseline, n-1)
	for _, name := range names {
		st := s.Strategies[name]
		if name == s.Baseline {
			fmt.Fprintf(&b, "| %s | %s | (baseline) | | | %.2f |\n", name, fmtMeanSD(st.ValLossMean, st.ValLossSD), float64(st.MaxWM))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d/%d | %.2f |\n", name, fmtMeanSD(st.ValLossMean, st.ValLossSD),
			fmtDelta(st.DeltaMean), fmtCI(st.DeltaCI95), st.SeedsBetter, st.NSeeds, float64(st.MaxWM))
	}
	fmt.Fprintf(&b, "\nPer domain: Δ vs %s, mean [95%% CI]; below it the domain's validation loss, mean ± sd.\n\n", s.Baseline)
	head := append([]string{"strategy"}, s.Domains...)
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, name := range names {
		st := s.Strategies[name]
		row := []string{name}
		for _, d := range s.Domains {
			ds := st.Domains[d]
			if name == s.Baseline {
				row = append(row, fmtMeanSD(ds.ValMean, ds.ValSD))
				continue
			}
			row = append(row, fmt.Sprintf("%s %s<br>%s", fmtDelta(ds.DeltaMean), fmtCI(ds.DeltaCI95), fmtMeanSD(ds.ValMean, ds.ValSD)))
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintf(&b, "\nEvery run:\n\n| strategy | seed | val loss (avg) | ± eval se | Δ vs %s | ± eval se of Δ | train loss | max w·M | tokens/s | train time |\n|---|---|---|---|---|---|---|---|---|---|\n", s.Baseline)
	for _, r := range s.Runs {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %.2f | %s | %s |\n", r.Strategy, r.Seed, fmtLoss(r.ValLoss), fmtLoss(r.ValSE),
			fmtDelta(r.DeltaVsBaseline), fmtLoss(r.DeltaSE), fmtLoss(r.TrainLoss), float64(r.MaxWM),
			fmtCount(float64(r.TokensPerS)), fmtDuration(time.Duration(float64(r.TrainS)*float64(time.Second))))
	}
	return b.String()
}

// strategyOrder returns the strategies in training order.
func (s *Summary) strategyOrder() []string {
	var names []string
	for _, r := range s.Runs {
		if !slices.Contains(names, r.Strategy) {
			names = append(names, r.Strategy)
		}
	}
	return names
}

// NoiseLine says in words how large the evaluation noise is against the
// seed-to-seed spread.
func (s *Summary) NoiseLine() string {
	en := s.EvalNoise
	line := fmt.Sprintf("Evaluation noise: each model is evaluated on the same %d validation windows per seed; the standard error of one model's averaged validation loss over those windows is %s nats",
		en.ValWindows, fmtLoss(en.ValSE))
	if en.DeltaSE.Valid() {
		line += fmt.Sprintf(", of a paired difference to %s on the same windows %s", s.Baseline, fmtLoss(en.DeltaSE))
	}
	if en.DeltaSeedSD.Valid() {
		line += fmt.Sprintf("; the differences vary from seed to seed with sd %s (the t intervals come from that spread, which includes the evaluation noise)", fmtLoss(en.DeltaSeedSD))
	} else {
		line += "; with one seed there is no seed-to-seed spread: train with --seeds 1,2,3 for confidence intervals"
	}
	return line + ".\n"
}

// Markdown returns summary.md: the setup, the table and how to read it.
func (s *Summary) Markdown() string {
	c := s.Config
	var b strings.Builder
	names := s.strategyOrder()
	seeds := fmt.Sprintf("seed %d", c.Seed)
	if len(c.Seeds) > 0 {
		seeds = "seeds " + c.Seeds.String()
	}
	title := strings.Join(names, " vs ")
	if len(s.Seeds) > 1 {
		title += fmt.Sprintf(", %d seeds", len(s.Seeds))
	}
	fmt.Fprintf(&b, "# goreweight-train: %s\n\n", title)
	if c.Preset != "" {
		fmt.Fprintf(&b, "- preset %s (then the keys given with it)\n", c.Preset)
	}
	fmt.Fprintf(&b, "- %s\n", s.Data)
	fmt.Fprintf(&b, "- model: GPT, %d layers, %d heads, width %d, context %d, %d parameters; %s, %d steps (%d tokens per strategy and seed)\n",
		c.Layers, c.Heads, c.Width, c.Seq, s.Params, describeStep(c), c.Steps, c.Steps*c.Accum*c.Batch*c.Seq)
	if c.Accum > 1 || c.Granularity == GranularityToken || c.Reference != "" {
		fmt.Fprintf(&b, "- weights: %s\n", describeWeights(c, s.Reference))
	}
	fmt.Fprintf(&b, "- AdamW lr %g (warm-up %d steps, cosine to %g), weight decay %g, clip %g; %s; noise %g\n",
		c.LR, c.LRWarmup, c.LRMin, c.WeightDecay, c.Clip, seeds, c.Noise)
	fmt.Fprintf(&b, "- reweighting: %s\n", describeSchedule(c))
	fmt.Fprintf(&b, "- %s backend, %d threads; wall time %s\n\n", s.Backend, s.Threads, fmtDuration(time.Duration(float64(s.WallS)*float64(time.Second))))
	if len(s.Seeds) > 1 {
		b.WriteString(s.SeedTable())
	} else {
		b.WriteString(s.Table())
	}
	fmt.Fprintf(&b, `
Validation loss is the mean token cross-entropy (nats) on held-out windows after the last step;
"avg" counts each domain once. Lower is better; Δ < 0 means better than %s.
`, s.Baseline)
	if len(s.Seeds) > 1 {
		fmt.Fprintf(&b, `Within a seed all strategies share initialisation, split, noise and batch order, so Δ is a
paired difference; its mean, sd and 95%% t interval (n-1 degrees of freedom) are over the %d
seeds. An interval that contains 0 means these seeds cannot tell the strategy from %s.
`, len(s.Seeds), s.Baseline)
	} else {
		fmt.Fprintf(&b, `"reached %s's final at step" is the first evaluation step (every %d steps) at which a
strategy's averaged validation loss was at or below %s's final one.
`, s.Baseline, c.EvalEvery, s.Baseline)
	}
	fmt.Fprintf(&b, `"max w·M" is the largest weight times the batch size at any step (1 = uniform; Theorem 1 of
the paper wants at most 2).

%s`, s.NoiseLine())
	var plots []string
	for _, f := range s.Files {
		if strings.HasSuffix(f, ".png") {
			plots = append(plots, filepath.Base(f))
		}
	}
	if len(plots) > 0 {
		fmt.Fprintf(&b, "\nPlots: %s", strings.Join(plots, ", "))
		if len(s.Seeds) > 1 {
			b.WriteString(" (validation: each strategy's mean over seeds, the band from the seeds' minimum to their maximum; temperature and weights: the first seed)")
		}
		b.WriteString(".\n")
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

// describeWeights says in words what one optimiser step's weights range
// over and what they score.
func describeWeights(c Config, ref *ReferenceInfo) string {
	unit := "sequence (its mean token loss)"
	if c.Granularity == GranularityToken {
		unit = "target token (its cross-entropy)"
	}
	over := fmt.Sprintf("the %d sequences of the step", c.Batch)
	if c.Accum > 1 && c.Scope == ScopeGlobal {
		over = fmt.Sprintf("all %d·%d sequences of the optimiser step (global scope)", c.Accum, c.Batch)
	} else if c.Scope == ScopeDeferred {
		over = fmt.Sprintf("all %d·%d sequences of the optimiser step, normalised with the previous step's loss range (deferred scope, approximate)", c.Accum, c.Batch)
	} else if c.Accum > 1 {
		over = fmt.Sprintf("each micro-batch of %d sequences alone, scaled by 1/%d (micro scope)", c.Batch, c.Accum)
	}
	d := fmt.Sprintf("one per %s, over %s", unit, over)
	if ref != nil {
		d += fmt.Sprintf("; scored by the excess loss over the reference %s (%s step %d, %d layers, width %d, %d parameters)",
			ref.Path, ref.Strategy, ref.Step, ref.Layers, ref.Width, ref.Params)
	}
	return d
}
