package train

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/goreweight/goreweight/goreweight/trainer/data"
	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

// ErrInterrupted is returned (wrapped) by Run when its context was
// cancelled: the run stopped after a complete step, wrote a checkpoint and
// its logs, and can be continued with Config.Resume.
var ErrInterrupted = errors.New("train: interrupted")

// Options tune how Run reports; they never change what is computed.
type Options struct {
	// Progress receives the progress output: a bar redrawn in place when it
	// is a terminal, plain lines otherwise. nil means os.Stderr; use
	// io.Discard (or Config.Quiet) for none.
	Progress io.Writer
	// OnStep, when set, is called after every optimiser step with the
	// strategy and the number of steps taken (of the current seed), once the step's logs are in
	// memory and any checkpoint due at that step has been written.
	OnStep func(strategy string, step int)
}

// File names under the run directory.
const (
	configName   = "config.json"
	metricsName  = "metrics.jsonl"
	samplesName  = "samples.arrow"
	summaryMD    = "summary.md"
	summaryJSON  = "summary.json"
	plotValLoss  = "val_loss.png"
	plotTemp     = "temperature.png"
	plotWeightVL = "weight_vs_loss.png"
)

func configPath(dir string) string { return filepath.Join(dir, configName) }

// DefaultOut returns the default run directory: runs/<YYYYMMDD-HHMMSS>.
func DefaultOut(now time.Time) string { return filepath.Join("runs", now.Format("20060102-150405")) }

// Run trains one model per strategy of cfg (Config.Strategies), in order,
// on the same data, data order and initialisation, writing everything
// under cfg.Out (see docs/trainer.md for the files), then writes the
// summary and the plots. With cfg.Seeds it does so once per seed, in
// order, each seed under cfg.Out/seed-<n>, and the summary aggregates over
// the seeds. With cfg.Resume it continues the run in that
// directory from each strategy's last checkpoint; the result equals an
// uninterrupted run bit for bit (timings aside). When ctx is cancelled it
// stops after the current step, writes a checkpoint and returns an error
// wrapping ErrInterrupted.
//
// With cfg.Resume set, the configuration comes from the run directory's
// config.json; of cfg only Threads, CkptEvery (when non-zero) and Quiet are
// used, and Seeds when it extends the run's seeds (the run's seeds followed
// by more): the new seeds are trained, the config.json records them and the
// summary covers them all. Check a full configuration against the saved one
// with ResumeConfig first.
func Run(ctx context.Context, cfg Config, opt Options) (*Summary, error) {
	wallStart := time.Now()
	moreSeeds := false
	if cfg.Resume != "" {
		var keys []string
		if cfg.Threads != 0 {
			keys = append(keys, "threads")
		}
		if cfg.CkptEvery != 0 {
			keys = append(keys, "ckpt_every")
		}
		if cfg.Quiet {
			keys = append(keys, "quiet")
		}
		before := savedSeeds(cfg.Resume)
		if extendsSeeds(before, cfg.Seeds) {
			keys = append(keys, "seeds")
		}
		c, err := ResumeConfig(cfg.Resume, cfg, keys)
		if err != nil {
			return nil, err
		}
		cfg = c
		moreSeeds = len(cfg.Seeds) > len(before)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Out == "" {
		cfg.Out = DefaultOut(time.Now())
	}
	cfg.Threads = cfg.threads()
	if cfg.Strategy == "" && len(cfg.Compare) == 0 {
		cfg.Compare = append(StrategyList(nil), DefaultCompare...)
	}
	prog := opt.Progress
	if prog == nil {
		prog = os.Stderr
	}
	if cfg.Quiet {
		prog = nil
	}

	if cfg.Resume == "" {
		if err := checkRunDir(cfg.Out); err != nil {
			return nil, err
		}
	}

	oldThreads := nn.SetThreads(cfg.Threads)
	oldProcs := runtime.GOMAXPROCS(cfg.Threads)
	defer func() {
		nn.SetThreads(oldThreads)
		runtime.GOMAXPROCS(oldProcs)
	}()

	corpus, err := readCorpus(cfg)
	if err != nil {
		return nil, err
	}
	ref, err := loadReference(cfg, corpus.tok.VocabSize())
	if err != nil {
		return nil, err
	}
	multi := len(cfg.Seeds) > 0
	seeds := cfg.RunSeeds()
	if multi && prog != nil {
		fmt.Fprintf(prog, "goreweight-train: seed %d (1 of %d) in %s\n", seeds[0], len(seeds), seedDir(cfg.Out, seeds[0]))
	}
	// The first seed's data, built before the run directory exists so that
	// a data error leaves nothing behind.
	first, err := newEnv(cfg.forSeed(seeds[0]), corpus, prog)
	if err != nil {
		return nil, err
	}
	first.ref = ref

	// The run directory, once the data is known to load; a resumed run
	// given more seeds records them, so that a later --resume trains them too.
	if cfg.Resume == "" {
		if err := newRunDir(cfg.Out); err != nil {
			return nil, err
		}
	}
	unlock, err := lockRunDir(cfg.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if cfg.Resume == "" || moreSeeds {
		saved := cfg
		saved.Resume = ""
		b, _ := json.MarshalIndent(saved, "", "  ")
		if err := writeFileAtomic(configPath(cfg.Out), append(b, '\n')); err != nil {
			return nil, err
		}
	}

	var runs []seedRun
	for k, seed := range seeds {
		sc := cfg.forSeed(seed)
		e := first
		if k > 0 {
			if prog != nil {
				fmt.Fprintf(prog, "goreweight-train: seed %d (%d of %d) in %s\n", seed, k+1, len(seeds), sc.Out)
			}
			if e, err = newEnv(sc, corpus, prog); err != nil {
				return nil, err
			}
			e.ref = ref
		}
		sr, err := trainSeed(ctx, sc, e, prog, opt.OnStep)
		if err != nil {
			if multi && errors.Is(err, ErrInterrupted) {
				return nil, interruptedAt(cfg, sc, err)
			}
			return nil, err
		}
		runs = append(runs, sr)
	}
	sum, err := summarize(cfg, runs, time.Since(wallStart))
	if err != nil {
		return nil, err
	}
	if err := writeSummary(cfg, sum, runs, prog); err != nil {
		return nil, err
	}
	return sum, nil
}

// seedRun is one seed's part of a run: its configuration (Seed and Out
// set), its data, and one result and one final evaluation per strategy,
// in training order.
type seedRun struct {
	cfg     Config
	env     *env
	results []runResult
	evals   []windowLosses
}

// forSeed returns the configuration of one seed's runs. Without Seeds it
// is c itself (the run's files are directly under Out); with Seeds the
// seed's files go to Out/seed-<seed>.
func (c Config) forSeed(seed uint64) Config {
	if len(c.Seeds) == 0 {
		return c
	}
	sc := c
	sc.Seed, sc.Seeds = seed, nil
	sc.Out = seedDir(c.Out, seed)
	if c.Resume != "" {
		sc.Resume = sc.Out
	}
	return sc
}

// seedDir is the directory of one seed's runs.
func seedDir(out string, seed uint64) string { return filepath.Join(out, fmt.Sprintf("seed-%d", seed)) }

// trainSeed trains (or resumes, or reloads) every strategy of one seed and
// evaluates each final model window by window.
func trainSeed(ctx context.Context, cfg Config, e *env, prog io.Writer, onStep func(string, int)) (seedRun, error) {
	sr := seedRun{cfg: cfg, env: e}
	// Earlier records of a resumed run.
	var prior []Record
	if cfg.Resume != "" {
		if _, err := os.Stat(filepath.Join(cfg.Out, metricsName)); err == nil {
			if prior, err = readRecords(filepath.Join(cfg.Out, metricsName)); err != nil {
				return sr, err
			}
		}
	}
	lg := &logs{out: cfg.Out}
	for _, s := range cfg.Strategies() {
		var mine []Record
		for _, r := range prior {
			if r.Strategy == s {
				mine = append(mine, r)
			}
		}
		res, err := trainStrategy(ctx, cfg, e, s, mine, lg, prog, onStep)
		if err != nil {
			return sr, err
		}
		wl, err := evalWindows(cfg, e, s)
		if err != nil {
			return sr, err
		}
		sr.results = append(sr.results, res)
		sr.evals = append(sr.evals, wl)
		lg.done = append(lg.done, lg.cur...)
		lg.cur = nil
	}
	return sr, nil
}

// interruptedAt rewords the interruption of one seed's run so that it
// names the seed and the directory to resume (the run's, not the seed's).
func interruptedAt(cfg, sc Config, err error) error {
	where := ""
	for _, s := range sc.Strategies() {
		path := filepath.Join(sc.Out, s, checkpointName)
		if z, zerr := zip.OpenReader(path); zerr == nil {
			meta, merr := readCheckpointMeta(&z.Reader, path)
			z.Close()
			if merr == nil && meta.Step < sc.Steps {
				where = fmt.Sprintf(" at step %d/%d of strategy %s", meta.Step, sc.Steps, s)
				break
			}
		}
	}
	return fmt.Errorf("%w%s, seed %d; checkpoints and logs are written; continue by resuming %s (goreweight-train --resume DIR, or the resume key)",
		ErrInterrupted, where, sc.Seed, cfg.Out)
}

// newRunDir creates dir, which must not exist or be empty.
func newRunDir(dir string) error {
	if err := checkRunDir(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: creating out directory: %w", err)
	}
	return nil
}

// checkRunDir reports whether dir can hold a new run: it must not exist
// or be empty (but for the lock file of a run that failed to start).
func checkRunDir(dir string) error {
	ents, err := os.ReadDir(dir)
	ents = slices.DeleteFunc(ents, func(e os.DirEntry) bool { return e.Name() == lockName }) // a run that failed before its config
	if err == nil && len(ents) > 0 {
		if _, err := os.Stat(configPath(dir)); err == nil {
			return fmt.Errorf("train: out directory %s already holds a run; continue it with resume (--resume %s) or choose another out directory", dir, dir)
		}
		return fmt.Errorf("train: out directory %s is not empty; choose a new or empty directory", dir)
	}
	return nil
}

// env is the data side of a run, shared by its strategies.
type env struct {
	ds      *data.Dataset
	domains []string
	kind    []uint8 // kind index of every sample id
	val     [][]data.Batch
	desc    string     // one line describing the data
	ref     *reference // the reference model, shared by the seeds, or nil
}

// refInfo describes the reference model, or is nil without one.
func (e *env) refInfo() *ReferenceInfo {
	if e.ref == nil {
		return nil
	}
	info := e.ref.info
	return &info
}

// corpus is the data as read, before the seed's split.
type corpus struct {
	docs []data.Document
	tok  data.Tokenizer
	took time.Duration
}

// readCorpus reads the documents and makes the tokenizer.
func readCorpus(cfg Config) (*corpus, error) {
	t0 := time.Now()
	var docs []data.Document
	var err error
	if cfg.Data == data.BuiltinPath {
		bc := data.DefaultBuiltinConfig()
		bc.MaxBytes = cfg.DataBytes
		docs, _, err = data.Builtin(bc)
	} else {
		docs, err = data.Open(cfg.Data)
	}
	if err != nil {
		return nil, fmt.Errorf("train: data %q: %w", cfg.Data, err)
	}
	tok, err := data.NewTokenizer(cfg.Tokenizer)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return &corpus{docs: docs, tok: tok, took: time.Since(t0)}, nil
}

// newEnv builds the dataset of cfg.Seed (split, noise) and the
// validation batches.
func newEnv(cfg Config, c *corpus, prog io.Writer) (*env, error) {
	t0 := time.Now()
	ds, err := data.NewDataset(c.docs, c.tok, data.DatasetConfig{SeqLen: cfg.Seq, ValFraction: cfg.ValFraction, NoiseFraction: cfg.Noise, Seed: cfg.Seed})
	if err != nil {
		return nil, fmt.Errorf("train: data %q: %w", cfg.Data, err)
	}
	if ds.NumTrain() < 1 {
		return nil, fmt.Errorf("train: data %q has no training window of %d tokens", cfg.Data, cfg.Seq+1)
	}
	e := &env{ds: ds, domains: ds.Domains(), kind: make([]uint8, ds.NumSamples())}
	for id := range e.kind {
		s, _ := ds.Sample(id)
		e.kind[id] = uint8(slices.Index(data.Kinds, s.Kind))
	}
	evalB := max(cfg.Batch, 16)
	nVal := 0
	for d := range e.domains {
		ids := ds.ValIDs(d)
		if cfg.ValMax > 0 && len(ids) > cfg.ValMax {
			sub := make([]int, cfg.ValMax)
			for i := range sub {
				sub[i] = ids[i*len(ids)/cfg.ValMax]
			}
			ids = sub
		}
		var bs []data.Batch
		for lo := 0; lo < len(ids); lo += evalB {
			b, err := ds.Batch(ids[lo:min(lo+evalB, len(ids))])
			if err != nil {
				return nil, err
			}
			bs = append(bs, b)
		}
		e.val = append(e.val, bs)
		nVal += len(ids)
	}
	if nVal == 0 {
		return nil, fmt.Errorf("train: data %q has no validation window (too little data for val_fraction %v)", cfg.Data, cfg.ValFraction)
	}
	byKind := map[string]int{}
	for _, s := range ds.Stats() {
		for k, n := range s.ByKind {
			byKind[k] += n
		}
	}
	var kinds string
	for _, k := range data.Kinds {
		if byKind[k] > 0 {
			kinds += fmt.Sprintf(" %s %d,", k, byKind[k])
		}
	}
	e.desc = fmt.Sprintf("data %s: %d windows of %d tokens (%s), %d train, %d val evaluated; domains %v; %s tokenizer",
		cfg.Data, ds.NumSamples(), cfg.Seq, kinds[1:len(kinds)-1], ds.NumTrain(), nVal, e.domains, cfg.Tokenizer)
	if prog != nil {
		fmt.Fprintf(prog, "goreweight-train: %s (%.1fs)\n", e.desc, (c.took + time.Since(t0)).Seconds())
	}
	return e, nil
}

// logs holds the metrics records of the finished strategies and of the
// current one; flush writes them to OUT/metrics.jsonl.
type logs struct {
	out       string
	done, cur []Record
}

func (l *logs) flush() error {
	return writeAtomic(filepath.Join(l.out, metricsName), func(w io.Writer) error {
		if err := writeRecords(w, l.done); err != nil {
			return err
		}
		return writeRecords(w, l.cur)
	})
}

// loadData reads the corpus and builds the dataset of cfg.Seed.
func loadData(cfg Config, prog io.Writer) (*env, error) {
	c, err := readCorpus(cfg)
	if err != nil {
		return nil, err
	}
	return newEnv(cfg, c, prog)
}
