package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/nn"
	"github.com/goreweight/goreweight/goreweight/trainer/optim"
)

// runResult is what one strategy's training leaves for the summary.
type runResult struct {
	strategy string
	records  []Record
	samples  *sampleRows
	trainS   float64 // training time over all sessions
	wallS    float64 // wall time over all sessions
}

// trainer is one strategy's training run.
type trainer struct {
	cfg      Config
	env      *env
	strategy string
	dir      string
	st       trainState
	params   []*nn.Param
	ref      *gpt.Model // the reference model, or nil
	step     int
	records  []Record
	samples  *sampleRows
	trainS   float64 // before this session
	wallS    float64
	session  time.Time     // start of this session
	trainDur time.Duration // training time in this session
	lg       *logs
}

// trainStrategy trains (or resumes, or just reloads when finished) the
// model of one strategy. prior holds the strategy's records from an
// earlier session's metrics.jsonl.
func trainStrategy(ctx context.Context, cfg Config, e *env, strategy string, prior []Record, lg *logs, prog io.Writer, onStep func(string, int)) (runResult, error) {
	t, err := newTrainer(cfg, e, strategy, lg)
	if err != nil {
		return runResult{}, err
	}
	model, gcfg := t.st.model, t.st.model.Config()
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return runResult{}, fmt.Errorf("train: %w", err)
	}
	resumed, err := t.resume(prior)
	if err != nil {
		return runResult{}, err
	}
	label := fmt.Sprintf("[%s]", strategy)
	p := newProgress(prog, label, cfg.Steps, cfg.Accum*cfg.Batch*cfg.Seq, t.step)
	switch {
	case t.step == cfg.Steps:
		p.printf("%s finished earlier (step %d/%d): reusing its checkpoint and logs\n", label, t.step, cfg.Steps)
	case resumed:
		p.printf("%s resuming at step %d/%d from %s\n", label, t.step, cfg.Steps, filepath.Join(t.dir, checkpointName))
	default:
		p.printf("%s %v, %d parameters, %s backend, %d threads; %d steps of %s\n", label, gcfg, model.NumParams(), nn.Backend(), nn.Threads(), cfg.Steps, describeStep(cfg))
		rec := emptyRecord(strategy, 0)
		rec.ElapsedS = 0
		t.evaluate(&rec)
		t.records = append(t.records, rec)
		p.update(0, rec.Loss, rec.R, rec.MaxWM, true, rec.ValLoss)
	}
	finished := t.step == cfg.Steps
	if err := t.loop(ctx, p, onStep); err != nil {
		return runResult{}, err
	}
	// Final logs and checkpoint; a run that had finished keeps its
	// checkpoint, and its logs are rewritten with the same content.
	save := t.save
	if finished {
		save = t.flushLogs
	}
	if err := save(); err != nil {
		return runResult{}, err
	}
	return runResult{strategy: strategy, records: t.records, samples: t.samples,
		trainS: t.trainS + t.trainDur.Seconds(), wallS: t.wallS + time.Since(t.session).Seconds()}, nil
}

// newTrainer returns the trainer of one strategy's run at step 0: its
// model initialised from cfg.Seed, AdamW, the core reweighter and the data
// iterator.
func newTrainer(cfg Config, e *env, strategy string, lg *logs) (*trainer, error) {
	t := &trainer{cfg: cfg, env: e, strategy: strategy, dir: filepath.Join(cfg.Out, strategy), lg: lg, session: time.Now()}
	gcfg := gpt.Config{Vocab: e.ds.Tokenizer().VocabSize(), Seq: cfg.Seq, Layers: cfg.Layers, Heads: cfg.Heads, Width: cfg.Width}
	model, err := gpt.New(gcfg, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t.params = model.Params()
	oc := optim.DefaultConfig()
	oc.WeightDecay = cfg.WeightDecay
	opt, err := optim.NewAdamW(t.params, oc)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	rw, err := goreweight.New(cfg.Reweighting(strategy))
	if err != nil {
		return nil, fmt.Errorf("train: strategy %q: %w", strategy, err)
	}
	t.st = trainState{model: model, opt: opt, rw: rw, it: e.ds.NewIterator()}
	if cfg.Scope == ScopeDeferred {
		if t.st.def, err = goreweight.NewDeferred(cfg.deferredConfig(strategy)); err != nil {
			return nil, fmt.Errorf("train: strategy %q: %w", strategy, deferredError(cfg, strategy, err))
		}
	}
	if e.ref != nil {
		t.ref = e.ref.model
	}
	t.samples = &sampleRows{domains: e.domains}
	return t, nil
}

// resume restores the trainer from its checkpoint, if the run is resumed
// and one exists, and keeps the records and samples up to its step.
func (t *trainer) resume(prior []Record) (bool, error) {
	if t.cfg.Resume == "" {
		return false, nil
	}
	removeStaleTemps(t.cfg.Out, metricsName)
	removeStaleTemps(t.dir, checkpointName, samplesName)
	path := filepath.Join(t.dir, checkpointName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // this strategy had not started
	}
	if err != nil {
		return false, fmt.Errorf("train: %w", err)
	}
	meta, err := loadCheckpoint(b, path, t.strategy, t.cfg.Reweighting(t.strategy), t.st)
	if err != nil {
		return false, err
	}
	if err := checkSameReference(meta.Reference, t.env.ref); err != nil {
		return false, checkpointErr(path, err)
	}
	t.step, t.trainS, t.wallS = meta.Step, meta.TrainS, meta.WallS
	for _, r := range prior {
		if r.Step <= t.step {
			t.records = append(t.records, r)
		}
	}
	if len(t.records) == 0 || t.records[0].Step != 0 || t.records[len(t.records)-1].Step != t.lastRecordStep(t.step) {
		return false, fmt.Errorf("train: resume %s: %s lacks the records of %s up to step %d that the checkpoint needs; it was changed or removed",
			t.cfg.Out, filepath.Join(t.cfg.Out, metricsName), t.strategy, t.step)
	}
	if t.step > 0 {
		sp := filepath.Join(t.dir, samplesName)
		s, err := readSampleLog(sp, t.env.domains)
		if err != nil {
			return false, fmt.Errorf("train: resume: %w", err)
		}
		s.truncate(int64(t.step))
		if want := t.step * t.cfg.Accum * t.cfg.Batch; s.len() != want {
			return false, fmt.Errorf("train: resume: %s holds %d rows up to step %d, want %d; it was changed or removed", sp, s.len(), t.step, want)
		}
		t.samples = s
	}
	return true, nil
}

// removeStaleTemps removes the temporary files that writes of the named
// files in dir left when the process was killed (see atomicfile.Write).
func removeStaleTemps(dir string, names ...string) {
	for _, n := range names {
		tmps, _ := filepath.Glob(filepath.Join(dir, "."+n+".tmp-*"))
		for _, p := range tmps {
			os.Remove(p)
		}
	}
}

// lastRecordStep returns the step of the last record written at or before
// step.
func (t *trainer) lastRecordStep(step int) int {
	for s := step; s > 0; s-- {
		if t.logsAt(s) {
			return s
		}
	}
	return 0
}

func (t *trainer) evalAt(s int) bool { return s%t.cfg.EvalEvery == 0 || s == t.cfg.Steps }
func (t *trainer) logsAt(s int) bool { return s%t.cfg.LogEvery == 0 || t.evalAt(s) }
func (t *trainer) ckptAt(s int) bool { return s%t.cfg.CkptEvery == 0 || s == t.cfg.Steps }

// loop runs the training steps.
func (t *trainer) loop(ctx context.Context, p *progress, onStep func(string, int)) error {
	cfg, st := t.cfg, t.st
	tokensPerStep := cfg.Accum * cfg.Batch * cfg.Seq
	var sinceTokens int
	var sinceDur time.Duration
	for t.step < cfg.Steps {
		if ctx.Err() != nil {
			if err := t.save(); err != nil {
				return err
			}
			p.printf("[%s] interrupted at step %d/%d: checkpoint written\n", t.strategy, t.step, cfg.Steps)
			return fmt.Errorf("%w at step %d/%d of strategy %s; checkpoint and logs are written; continue by resuming %s (goreweight-train --resume DIR, or the resume key)", ErrInterrupted, t.step, cfg.Steps, t.strategy, cfg.Out)
		}
		t0 := time.Now()

		// 1-4. The next Accum micro-batches of the seeded, resumable order;
		//    their losses (per sequence or per token, minus the reference
		//    model's with one); the core reweighter turns them into
		//    weights summing to 1 over the step at this step's temperature
		//    (uniform: equal weights); backward of Σ w·l with the weights
		//    held constant, accumulated over the micro-batches.
		so, err := t.accumulate()
		if err != nil {
			return fmt.Errorf("train: step %d: %w", t.step+1, err)
		}
		stats := so.stats
		// 5. Clip the global gradient norm.
		norm := optim.ClipGradNorm(t.params, cfg.Clip)
		// 6. AdamW at the warm-up + cosine learning rate.
		lr := optim.LR(t.step, cfg.LRWarmup, cfg.Steps, cfg.LR, cfg.LRMin)
		if err := st.opt.Step(lr); err != nil {
			return fmt.Errorf("train: step %d: training diverged (gradient norm %g): %w; try a lower lr", t.step+1, norm, err)
		}
		t.step++
		d := time.Since(t0)
		t.trainDur += d
		sinceDur += d
		sinceTokens += tokensPerStep

		// 7. Metrics and the per-sample log.
		i := 0
		for _, b := range so.batches {
			for j, id := range b.IDs {
				t.samples.add(int64(t.step), id, b.Domains[j], t.env.kind[id], so.losses[i], so.weights[i])
				i++
			}
		}
		if t.logsAt(t.step) {
			rec := t.record(stats, lr, norm)
			if ds := so.deferred; ds != nil {
				lo, hi, frac := Float(ds.RangeLo), Float(ds.RangeHi), Float(float64(ds.Clipped)/float64(ds.Valid))
				rec.RangeLo, rec.RangeHi, rec.ClippedFrac = &lo, &hi, &frac
			}
			rec.TokensPerS = Float(float64(sinceTokens) / sinceDur.Seconds())
			sinceTokens, sinceDur = 0, 0
			if t.evalAt(t.step) {
				t.evaluate(&rec)
			}
			rec.ElapsedS = Float(t.wallS + time.Since(t.session).Seconds())
			t.records = append(t.records, rec)
			p.update(t.step, rec.Loss, rec.R, rec.MaxWM, rec.Uniform, rec.ValLoss)
		}
		if t.ckptAt(t.step) && t.step < cfg.Steps {
			if err := t.save(); err != nil {
				return err
			}
		} else if t.evalAt(t.step) && t.step < cfg.Steps {
			if err := t.flushLogs(); err != nil {
				return err
			}
		}
		if onStep != nil {
			onStep(t.strategy, t.step)
		}
	}
	return nil
}

// record makes the metrics record of the step just taken.
func (t *trainer) record(s *goreweight.Stats, lr, norm float64) Record {
	r := emptyRecord(t.strategy, t.step)
	r.Tokens = int64(t.step) * int64(t.cfg.Accum*t.cfg.Batch*t.cfg.Seq)
	r.LR = Float(lr)
	r.Loss, r.LossWeighted = Float(s.LossMean), Float(s.Weighted)
	r.R, r.Uniform = Float(s.R), s.Uniform
	r.MaxWM, r.MinWM, r.ESS, r.ESSFrac, r.Entropy = Float(s.MaxWM), Float(s.MinWM), Float(s.ESS), Float(s.ESSFrac), Float(s.Entropy)
	r.Capped, r.NonFinite = s.Capped, s.NonFinite
	r.GradNorm = Float(norm)
	r.DomainLoss = map[string]Float{}
	r.DomainWM = map[string]Float{}
	for _, ds := range s.Domains {
		if d := int(ds.ID); d < len(t.env.domains) {
			r.DomainLoss[t.env.domains[d]] = Float(ds.MeanLoss)
			r.DomainWM[t.env.domains[d]] = Float(ds.MeanWM)
		}
	}
	return r
}

// evaluate fills in the validation losses: the mean loss over each
// domain's evaluated windows, and their average over the domains.
func (t *trainer) evaluate(r *Record) {
	r.Val = map[string]Float{}
	var sum float64
	n := 0
	for d, batches := range t.env.val {
		var s float64
		cnt := 0
		for _, b := range batches {
			losses, err := t.st.model.Evaluate(b.Tokens, b.Targets, len(b.IDs), t.cfg.Seq)
			if err != nil {
				continue // cannot happen: the batches were checked when built
			}
			for _, l := range losses {
				s += float64(l)
				cnt++
			}
		}
		if cnt == 0 {
			continue
		}
		v := s / float64(cnt)
		r.Val[t.env.domains[d]] = Float(v)
		sum += v
		n++
	}
	avg := Float(math.NaN())
	if n > 0 {
		avg = Float(sum / float64(n))
	}
	r.ValLoss = &avg
}

// flushLogs writes metrics.jsonl and the strategy's samples.arrow.
func (t *trainer) flushLogs() error {
	t.lg.cur = t.records
	if err := t.lg.flush(); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(t.dir, samplesName), t.samples.write)
}

// save writes the logs, then the checkpoint. The logs go first: a
// checkpoint never refers to records that are not on disk, and records
// past the checkpoint are dropped on resume.
func (t *trainer) save() error {
	if err := t.flushLogs(); err != nil {
		return err
	}
	meta := checkpointMeta{Strategy: t.strategy, Step: t.step, Config: t.cfg, Reference: t.env.refInfo(),
		TrainS: t.trainS + t.trainDur.Seconds(), WallS: t.wallS + time.Since(t.session).Seconds()}
	return saveCheckpoint(filepath.Join(t.dir, checkpointName), meta, t.st)
}

// describeStep describes one optimiser step of cfg, e.g. "batch 16" or
// "4 micro-batches of 8 (global scope, token level)".
func describeStep(cfg Config) string {
	var what []string
	if cfg.Accum > 1 || cfg.Scope == ScopeDeferred {
		what = append(what, cfg.Scope+" scope")
	}
	if cfg.Granularity == GranularityToken {
		what = append(what, "token level")
	}
	if cfg.Reference != "" {
		what = append(what, "excess loss over a reference model")
	}
	d := fmt.Sprintf("batch %d", cfg.Batch)
	if cfg.Accum > 1 {
		d = fmt.Sprintf("%d micro-batches of %d", cfg.Accum, cfg.Batch)
	}
	if len(what) > 0 {
		d += " (" + strings.Join(what, ", ") + ")"
	}
	return d
}

// checkSameReference reports whether the reference model a checkpoint was
// trained with (saved) is the one loaded now (cur).
func checkSameReference(saved *ReferenceInfo, cur *reference) error {
	switch {
	case saved == nil && cur == nil:
		return nil
	case saved == nil || cur == nil:
		return fmt.Errorf("%w: the checkpoint and this run disagree on whether there is one", errReferenceChanged)
	case saved.SHA256 != cur.info.SHA256:
		return fmt.Errorf("%w: %s has SHA-256 %s, the run started with %s (SHA-256 %s)", errReferenceChanged, cur.info.Path, cur.info.SHA256, saved.Path, saved.SHA256)
	}
	return nil
}
