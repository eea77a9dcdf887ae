// Command gostep times training steps of goreweight's Go GPT (package gpt)
// with AdamW (package optim), the Go side of benchmarks/run.py's trainer
// table. It calls the packages directly, so that it measures the model and
// the optimiser and nothing else (no data loading, no logging, no
// checkpoints), exactly as benchmarks/torch_gpt.py does for PyTorch.
//
// One step: Forward (per-sequence losses), the weights (1/B for -weights
// mean, the goreweight core for a strategy name), ZeroGrad, Backward,
// ClipGradNorm(1.0), AdamW.Step. The tokens are uniform random ids from a
// fixed seed, new ones every step, drawn outside the timed step; the speed
// does not depend on their values. It prints one JSON object on stdout.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/nn"
	"github.com/goreweight/goreweight/goreweight/trainer/optim"
)

// result is what gostep prints.
type result struct {
	Impl        string    `json:"impl"`
	Backend     string    `json:"backend"`
	Threads     int       `json:"threads"`
	GOMAXPROCS  int       `json:"gomaxprocs"`
	Params      int       `json:"params"`
	Batch       int       `json:"batch"`
	Seq         int       `json:"seq"`
	Weights     string    `json:"weights"`
	StepSeconds []float64 `json:"step_s"`
	TokensPerS  float64   `json:"tokens_per_s"`
	MaxRSSKiB   int64     `json:"maxrss_kib"`
	VmHWMKiB    int64     `json:"vmhwm_kib"`
	FinalLoss   float64   `json:"final_loss"`
}

func main() {
	var (
		vocab   = flag.Int("vocab", 256, "vocabulary size")
		layers  = flag.Int("layers", 4, "transformer blocks")
		heads   = flag.Int("heads", 4, "attention heads")
		width   = flag.Int("width", 128, "embedding width")
		seq     = flag.Int("seq", 128, "sequence length")
		batch   = flag.Int("batch", 16, "sequences per step")
		steps   = flag.Int("steps", 10, "timed steps")
		warmup  = flag.Int("warmup", 2, "untimed steps first")
		threads = flag.Int("threads", 0, "goroutines per layer (0: GOMAXPROCS)")
		weights = flag.String("weights", "mean", "mean (1/B) or a goreweight strategy name")
		lr      = flag.Float64("lr", 3e-4, "AdamW learning rate")
		prof    = flag.String("cpuprofile", "", "write a CPU profile of the timed steps to this file (go tool pprof)")
	)
	flag.Parse()
	cpuProfile = *prof
	if err := run(*vocab, *layers, *heads, *width, *seq, *batch, *steps, *warmup, *threads, *weights, *lr); err != nil {
		fmt.Fprintln(os.Stderr, "gostep:", err)
		os.Exit(1)
	}
}

func run(vocab, layers, heads, width, seq, batch, steps, warmup, threads int, weights string, lr float64) error {
	if steps < 1 || warmup < 0 {
		return fmt.Errorf("steps = %d must be >= 1 and warmup = %d >= 0", steps, warmup)
	}
	if threads > 0 {
		nn.SetThreads(threads)
	}
	cfg := gpt.Config{Vocab: vocab, Seq: seq, Layers: layers, Heads: heads, Width: width}
	m, err := gpt.New(cfg, 1)
	if err != nil {
		return err
	}
	opt, err := optim.NewAdamW(m.Params(), optim.DefaultConfig())
	if err != nil {
		return err
	}
	var weigher *goreweight.Weigher
	if weights != "mean" {
		o := goreweight.DefaultOptions()
		o.Strategy = weights
		if weigher, err = goreweight.NewWeigher(o); err != nil {
			return err
		}
	}
	B, T := batch, seq
	rng := rand.New(rand.NewPCG(7, 11))
	buf := make([]int32, B*(T+1))
	tokens, targets := make([]int32, B*T), make([]int32, B*T)
	w := make([]float32, B)
	params := m.Params()
	var loss float64
	// nextBatch draws the next tokens; it runs outside the timed step, as
	// torch_gpt.py's make_batch does.
	nextBatch := func() {
		for i := range buf {
			buf[i] = int32(rng.IntN(vocab))
		}
		for b := 0; b < B; b++ {
			copy(tokens[b*T:(b+1)*T], buf[b*(T+1):])
			copy(targets[b*T:(b+1)*T], buf[b*(T+1)+1:])
		}
	}
	step := func() error {
		losses, err := m.Forward(tokens, targets, B, T)
		if err != nil {
			return err
		}
		if weigher == nil {
			for i := range w {
				w[i] = 1 / float32(B)
			}
		} else if _, err := weigher.Weights(w, losses, nil, 1); err != nil {
			return err
		}
		loss = 0
		for i, l := range losses {
			loss += float64(w[i]) * float64(l)
		}
		m.ZeroGrad()
		if err := m.Backward(w); err != nil {
			return err
		}
		optim.ClipGradNorm(params, 1)
		return opt.Step(lr)
	}
	for i := 0; i < warmup; i++ {
		nextBatch()
		if err := step(); err != nil {
			return err
		}
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	times := make([]float64, steps)
	for i := range times {
		nextBatch()
		t0 := time.Now()
		if err := step(); err != nil {
			return err
		}
		times[i] = time.Since(t0).Seconds()
	}
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	sorted := append([]float64(nil), times...)
	sort.Float64s(sorted)
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return json.NewEncoder(os.Stdout).Encode(result{
		Impl: "goreweight-go", Backend: nn.Backend(), Threads: nn.Threads(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Params: m.NumParams(), Batch: B, Seq: T, Weights: weights, StepSeconds: times,
		TokensPerS: float64(B*T) / med, MaxRSSKiB: ru.Maxrss, VmHWMKiB: vmHWM(), FinalLoss: loss,
	})
}

// cpuProfile is the -cpuprofile file, "" for none.
var cpuProfile string

// vmHWM is this process's peak resident set size in KiB from
// /proc/self/status (VmHWM), or -1 where there is none. Unlike getrusage's
// maxrss it starts afresh at exec: a child forked from a large parent (a
// Python process with PyTorch loaded) does not inherit the parent's peak.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return v
				}
			}
		}
	}
	return -1
}
