// Command goreweight-train trains a small GPT in pure Go with goreweight's
// dynamic loss-based sample reweighting in the loop, and compares
// strategies with numbers and plots. With no flags it compares uniform,
// linupper and quadratic on the built-in corpus with seeds 1, 2 and 3, and
// reports each difference to uniform with a 95% interval over the seeds,
// in under 10 minutes on two cores:
//
//	goreweight-train
//	goreweight-train --compare uniform,linupper,quadratic --noise 0.2 --steps 1000
//	goreweight-train --strategy linupper --schedule constant --r-end 0.5
//	goreweight-train --seeds 1,2,3 --compare uniform,linupper,quadratic
//	goreweight-train --preset paper-quadratic --seeds 1,2,3
//	goreweight-train --batch 8 --accum 4 --scope global --granularity token
//	goreweight-train --batch 8 --accum 4 --scope deferred
//	goreweight-train --strategy topk --q 0.6 --granularity token --reference runs/small/uniform
//	goreweight-train --resume runs/20250101-120000
//
// Flags may also come from a JSON file (--config run.json) with the same
// names ("r_start" or "r-start"); flags given on the command line win.
// Ctrl-C stops after the current step, writes a checkpoint and exits with
// status 130; --resume continues. See docs/trainer.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/train"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// bind defines the flags of the trainer on fs, bound to c's fields.
func bind(fs *flag.FlagSet, c *train.Config) {
	fs.StringVar(&c.Data, "data", c.Data, `training data: "builtin" (Go source tree + synthetic documents) or a path (text file, directory, .jsonl[.zst], .parquet, llm.c .bin)`)
	fs.IntVar(&c.DataBytes, "data-bytes", c.DataBytes, "size of the built-in corpus in bytes")
	fs.StringVar(&c.Tokenizer, "tokenizer", c.Tokenizer, "tokenizer: byte or gpt2")
	fs.StringVar(&c.Strategy, "strategy", c.Strategy, "train one model with this strategy ("+strings.Join(goreweight.Strategies(), ", ")+")")
	fs.Var(&c.Compare, "compare", "comma-separated `strategies`, one model each on the same data order and seed (default uniform,linupper,quadratic)")
	fs.StringVar(&c.Schedule, "schedule", c.Schedule, "temperature schedule: constant (r = r-end), linear, cosine, exponential (r-start -> r-end) or step")
	fs.Float64Var(&c.RStart, "r-start", c.RStart, "temperature at the start of the schedule")
	fs.Float64Var(&c.REnd, "r-end", c.REnd, "temperature at the end of the schedule (constant: the temperature)")
	fs.IntVar(&c.RSteps, "r-steps", c.RSteps, "steps of the annealing after the warm-up (step: when r switches); 0: half of the steps after the warm-up, then r-end")
	fs.IntVar(&c.WarmupR, "warmup-r", c.WarmupR, "uniform-weight steps before the schedule starts (-1: steps/10)")
	fs.Float64Var(&c.Cap, "cap", c.Cap, "cap every weight at cap/M (>= 1; 0: no cap)")
	fs.Float64Var(&c.Delta, "delta", c.Delta, "half-width of the normalised loss range")
	fs.Float64Var(&c.Q, "q", c.Q, "fraction for the topk and truncate strategies")
	fs.IntVar(&c.Steps, "steps", c.Steps, "optimiser steps per strategy")
	fs.IntVar(&c.Batch, "batch", c.Batch, "sequences per step (M); with --accum, per micro-batch")
	fs.IntVar(&c.Accum, "accum", c.Accum, "micro-batches of --batch sequences per optimiser step (gradient accumulation; --steps counts optimiser steps, r advances once per step)")
	fs.StringVar(&c.Scope, "scope", c.Scope, "weights per micro-batch, each scaled by 1/accum (micro), or of the whole optimiser step: exact (global: one extra forward per micro-batch without gradients) or approximate (deferred: no extra forward; each micro-batch normalised with the previous step's loss range, the gradient scaled by 1/Z before clipping; not topk, truncate or cap; see docs/scope.md)")
	fs.StringVar(&c.Granularity, "granularity", c.Granularity, "one weight per sequence (sequence) or per target token (token; loss = Σ w_ij·l_ij)")
	fs.StringVar(&c.Reference, "reference", c.Reference, "score by the excess loss over this goreweight-train run/strategy directory or checkpoint's model (any size, same tokenizer, context >= seq; one extra forward without gradients per micro-batch)")
	fs.IntVar(&c.Seq, "seq", c.Seq, "sequence length (context) in tokens")
	fs.IntVar(&c.Layers, "layers", c.Layers, "transformer blocks")
	fs.IntVar(&c.Heads, "heads", c.Heads, "attention heads")
	fs.IntVar(&c.Width, "width", c.Width, "embedding width (a multiple of heads)")
	fs.Float64Var(&c.LR, "lr", c.LR, "peak learning rate (AdamW)")
	fs.Float64Var(&c.LRMin, "lr-min", c.LRMin, "learning rate at the last step (cosine decay)")
	fs.IntVar(&c.LRWarmup, "lr-warmup", c.LRWarmup, "linear learning-rate warm-up steps")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "AdamW weight decay")
	fs.Float64Var(&c.Clip, "clip", c.Clip, "gradient-norm clipping threshold (0: none)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the initialisation, split, noise and batch order")
	fs.Var(&c.Seeds, "seeds", "comma-separated `seeds`: every strategy trained once per seed (paired within a seed), summary with mean, sd and 95% t intervals; default 1,2,3; --seed N alone trains one seed")
	fs.StringVar(&c.Preset, "preset", c.Preset, "apply a preset first, then the other flags ("+presetNames()+"; see docs/trainer.md)")
	fs.Float64Var(&c.Noise, "noise", c.Noise, "fraction of training windows replaced by random tokens, in [0, 1)")
	fs.Float64Var(&c.ValFraction, "val-fraction", c.ValFraction, "fraction of each domain's windows held out for validation")
	fs.IntVar(&c.ValMax, "val-max", c.ValMax, "validation windows evaluated per domain (0: all)")
	fs.StringVar(&c.Out, "out", c.Out, "run directory (default runs/<YYYYMMDD-HHMMSS>)")
	fs.StringVar(&c.Resume, "resume", c.Resume, "continue the run in this directory from its last checkpoints; with --seeds listing more seeds after the run's own, also train those")
	fs.IntVar(&c.EvalEvery, "eval-every", c.EvalEvery, "steps between validation evaluations")
	fs.IntVar(&c.CkptEvery, "ckpt-every", c.CkptEvery, "steps between checkpoints")
	fs.IntVar(&c.LogEvery, "log-every", c.LogEvery, "steps between metrics records")
	fs.IntVar(&c.Threads, "threads", c.Threads, "threads (0: all CPUs); the same seed and threads give the same run")
	fs.BoolVar(&c.Quiet, "quiet", c.Quiet, "no progress output")
}

// parse turns the arguments into a configuration: the defaults, then the
// --config file, then the flags given. keys are the keys set by the file
// or the flags.
func parse(args []string, stderr io.Writer) (train.Config, []string, error) {
	scratch := train.DefaultConfig()
	fs := flag.NewFlagSet("goreweight-train", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage only on --help
	bind(fs, &scratch)
	configFile := fs.String("config", "", "JSON file setting any of these flags (keys with '_' or '-'); flags given win")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: goreweight-train [flags]\n\nTrains a small GPT with dynamic loss-based sample reweighting and compares strategies\n(default: uniform vs linupper vs quadratic, seeds 1,2,3, on the built-in corpus). Writes everything under --out.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.Usage()
			return train.Config{}, nil, err
		}
		return train.Config{}, nil, fmt.Errorf("%w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return train.Config{}, nil, fmt.Errorf("unexpected argument %q (flags start with --; see --help)", fs.Arg(0))
	}
	cfg := train.DefaultConfig()
	var keys []string
	// A preset goes first: the file and the other flags override it.
	if scratch.Preset != "" {
		var err error
		if cfg, err = cfg.WithPreset(scratch.Preset); err != nil {
			return train.Config{}, nil, err
		}
	}
	if *configFile != "" {
		var err error
		if cfg, keys, err = train.LoadConfigFile(cfg, *configFile); err != nil {
			return train.Config{}, nil, err
		}
	}
	// Re-apply the flags given on top of the file.
	final := flag.NewFlagSet("", flag.ContinueOnError)
	final.SetOutput(io.Discard)
	bind(final, &cfg)
	var err error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" || err != nil {
			return
		}
		if e := final.Set(f.Name, f.Value.String()); e != nil {
			err = fmt.Errorf("flag --%s: %w", f.Name, e)
		}
		keys = append(keys, strings.ReplaceAll(f.Name, "-", "_"))
	})
	// --seed without --seeds trains that one seed (the default is several).
	if slices.Contains(keys, "seed") && !slices.Contains(keys, "seeds") {
		cfg.Seeds = nil
	}
	slices.Sort(keys)
	return cfg, slices.Compact(keys), err
}

// presetNames lists the built-in presets for --help.
func presetNames() string {
	var names []string
	for _, p := range train.Presets() {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "export" {
		return runExport(args[1:], stdout, stderr)
	}
	cfg, keys, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "goreweight-train: %v\n", err)
		return 2
	}
	if cfg.Resume != "" {
		if cfg, err = train.ResumeConfig(cfg.Resume, cfg, keys); err != nil {
			fmt.Fprintf(stderr, "goreweight-train: %v\n", err)
			return 2
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "goreweight-train: %v\n", err)
		return 2
	}
	if cfg.Out == "" {
		cfg.Out = train.DefaultOut(time.Now())
	}

	// Ctrl-C or SIGTERM: finish the step, write a checkpoint, exit 130. A
	// second Ctrl-C kills the process at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		signal.Stop(sigs)
		fmt.Fprintln(stderr, "\ngoreweight-train: stopping after this step to write a checkpoint (Ctrl-C again to abort)")
		cancel()
	}()

	if !cfg.Quiet {
		fmt.Fprintf(stderr, "goreweight-train: writing to %s\n", cfg.Out)
	}
	sum, err := train.Run(ctx, cfg, train.Options{Progress: stderr})
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(stderr, "goreweight-train: %v\n", err)
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "goreweight-train: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\n%s\n", strings.TrimRight(sum.Markdown(), "\n"))
	fmt.Fprintf(stdout, "\nFiles written:\n")
	for _, f := range sum.Files {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	return 0
}
