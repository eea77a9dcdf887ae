package train

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goreweight/goreweight/goreweight"
)

// stepScores computes, independently of the trainer (straight from the gpt
// package), the losses and scores (losses minus the reference's, when ref
// is set) of the next G micro-batches of m sequences of a fresh trainer
// of c at the run's granularity, concatenated in micro-batch order.
func stepScores(t *testing.T, c Config, strategy string, ref *reference, step, G, m int) (loss, score []float32) {
	t.Helper()
	probe := scopeTrainer(t, c, strategy, nil, step)
	for range G {
		b := probe.st.it.Next(m)
		eval := probe.st.model.Evaluate
		if c.Granularity == GranularityToken {
			eval = probe.st.model.EvaluateTokens
		}
		l, err := eval(b.Tokens, b.Targets, m, c.Seq)
		if err != nil {
			t.Fatal(err)
		}
		r := make([]float32, len(l))
		if ref != nil {
			refEval := ref.model.Evaluate
			if c.Granularity == GranularityToken {
				refEval = ref.model.EvaluateTokens
			}
			if r, err = refEval(b.Tokens, b.Targets, m, c.Seq); err != nil {
				t.Fatal(err)
			}
		}
		for i := range l {
			loss = append(loss, l[i])
			score = append(score, l[i]-r[i])
		}
	}
	return loss, score
}

func minMax(x []float32) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range x {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	return lo, hi
}

// TestDeferredScopeAtOwnRangeEqualsGlobal: when the deferred scope's range
// is the step's own global min/max (computed here from the gpt package),
// its accumulated gradient (Σ u·∇l over the micro-batches, times 1/Z) and
// its weights equal the exact global scope's, per sequence and per token,
// with and without a reference model; the Deferred and the reweighter
// both advance to the next step, and the next step's range is the step's
// own min/max.
func TestDeferredScopeAtOwnRangeEqualsGlobal(t *testing.T) {
	const G, m, step = 4, 3, 10
	base := tinyConfig(t)
	for _, tc := range []struct {
		strategy, gran string
		ref            bool
	}{
		{goreweight.LinUpper, GranularitySequence, false},
		{goreweight.Quadratic, GranularitySequence, true},
		{goreweight.DROKL, GranularitySequence, false},
		{goreweight.LinUpper, GranularityToken, true},
		{goreweight.Quadratic, GranularityToken, false},
	} {
		t.Run(tc.strategy+"/"+tc.gran, func(t *testing.T) {
			c := base
			c.Granularity, c.Accum, c.Batch = tc.gran, G, m
			var ref *reference
			if tc.ref {
				ref = testReference(t, 31)
			}
			_, score := stepScores(t, c, tc.strategy, ref, step, G, m)
			lo, hi := minMax(score)

			c.Scope = ScopeGlobal
			glob := scopeTrainer(t, c, tc.strategy, ref, step)
			gs, err := glob.accumulate()
			if err != nil {
				t.Fatal(err)
			}
			c.Scope = ScopeDeferred
			def := scopeTrainer(t, c, tc.strategy, ref, step)
			if err := def.st.def.SetRange(lo, hi); err != nil {
				t.Fatal(err)
			}
			ds, err := def.accumulate()
			if err != nil {
				t.Fatal(err)
			}
			if gs.stats.Uniform || ds.stats.Uniform {
				t.Fatal("uniform weights: the test would not test the scope")
			}
			if d := relDiff(ds.entryWeights, gs.entryWeights); d > 1e-5 {
				t.Errorf("weights: deferred at the step's own range differs from global scope by %.3g (relative)", d)
			}
			if d := relDiff(grads(def), grads(glob)); d > 1e-5 {
				t.Errorf("gradient: deferred at the step's own range differs from global scope by %.3g (relative)", d)
			} else {
				t.Logf("deferred vs global: relative gradient difference %.2g", d)
			}
			if ds.deferred == nil || ds.deferred.Clipped != 0 || ds.deferred.RangeLo != lo || ds.deferred.RangeHi != hi {
				t.Errorf("deferred stats %+v, want range [%v, %v] and nothing clipped", ds.deferred, lo, hi)
			}
			if math.Abs(ds.stats.MaxWM-gs.stats.MaxWM) > 1e-5*gs.stats.MaxWM || math.Abs(ds.stats.ESS-gs.stats.ESS) > 1e-5*gs.stats.ESS ||
				ds.stats.Valid != gs.stats.Valid || math.Abs(ds.stats.LossMean-gs.stats.LossMean) > 1e-6*gs.stats.LossMean {
				t.Errorf("stats: max w·M %v, ESS %v, M %d, mean loss %v; global scope %v, %v, %d, %v",
					ds.stats.MaxWM, ds.stats.ESS, ds.stats.Valid, ds.stats.LossMean, gs.stats.MaxWM, gs.stats.ESS, gs.stats.Valid, gs.stats.LossMean)
			}
			if def.st.def.Step() != step+1 || def.st.rw.Step() != step+1 {
				t.Errorf("after one step from %d: Deferred at step %d, reweighter at %d", step, def.st.def.Step(), def.st.rw.Step())
			}
			if nlo, nhi, ok := def.st.def.Range(); !ok || nlo != lo || nhi != hi {
				t.Errorf("next range [%v, %v], want the step's own [%v, %v]", nlo, nhi, lo, hi)
			}
		})
	}
}

// TestDeferredScopeOracle: with G > 1 and a known range from before the
// step (narrower than the step's losses, so that some are clipped), the
// deferred scope's weights equal a float64 oracle written here from the
// formulas of docs/scope.md (normalise with that range, clip to ±δ, score,
// softmax over the whole step at the step's r), the clipped count is the
// oracle's, and the accumulated gradient equals that of one batch of all
// G·m sequences backpropagated with the oracle's weights.
func TestDeferredScopeOracle(t *testing.T) {
	const G, m, step = 3, 4, 9
	base := tinyConfig(t)
	scores := map[string]func(x, delta float64) float64{
		goreweight.LinUpper:  func(x, d float64) float64 { return math.Min(x+d, d) },
		goreweight.Quadratic: func(x, d float64) float64 { return 1 - x*x/(d*d) },
	}
	for _, tc := range []struct {
		strategy, gran string
		ref            bool
	}{
		{goreweight.LinUpper, GranularitySequence, false},
		{goreweight.Quadratic, GranularitySequence, true},
		{goreweight.LinUpper, GranularityToken, false},
		{goreweight.Quadratic, GranularityToken, true},
	} {
		t.Run(tc.strategy+"/"+tc.gran, func(t *testing.T) {
			c := base
			c.Granularity, c.Accum, c.Batch, c.Scope = tc.gran, G, m, ScopeDeferred
			var ref *reference
			if tc.ref {
				ref = testReference(t, 8)
			}
			loss, score := stepScores(t, c, tc.strategy, ref, step, G, m)
			smin, smax := minMax(score)
			lo, hi := smin+0.25*(smax-smin), smax-0.15*(smax-smin)
			tr := scopeTrainer(t, c, tc.strategy, ref, step)
			if err := tr.st.def.SetRange(lo, hi); err != nil {
				t.Fatal(err)
			}
			so, err := tr.accumulate()
			if err != nil {
				t.Fatal(err)
			}
			// The oracle.
			delta, r := c.Delta, c.Reweighting(tc.strategy).Schedule.At(step)
			want := make([]float64, len(score))
			var z float64
			clipped := 0
			for i, l := range score {
				x := ((float64(l)-lo)*2/(hi-lo) - 1) * delta
				if x < -delta || x > delta {
					clipped++
				}
				want[i] = math.Exp(scores[tc.strategy](math.Max(-delta, math.Min(delta, x)), delta) / r)
				z += want[i]
			}
			var maxErr, maxW float64
			w32 := make([]float32, len(want))
			for i := range want {
				want[i] /= z
				w32[i] = float32(want[i])
				maxErr = math.Max(maxErr, math.Abs(float64(so.entryWeights[i])-want[i]))
				maxW = math.Max(maxW, want[i])
			}
			if maxErr > 2e-6*maxW {
				t.Errorf("weights differ from the float64 oracle by %.3g (max weight %.3g)", maxErr, maxW)
			}
			if clipped == 0 || clipped == len(score) {
				t.Fatalf("%d of %d clipped: the range does not test the clipping", clipped, len(score))
			}
			if so.deferred.Clipped != clipped || so.deferred.RangeLo != lo || so.deferred.RangeHi != hi {
				t.Errorf("deferred stats: clipped %d, range [%v, %v]; oracle %d, [%v, %v]", so.deferred.Clipped, so.deferred.RangeLo, so.deferred.RangeHi, clipped, lo, hi)
			}
			var wl float64
			for i := range loss {
				wl += want[i] * float64(loss[i])
			}
			if math.Abs(so.stats.Weighted-wl) > 1e-5*wl {
				t.Errorf("stats: weighted loss %v, oracle Σ w·l = %v", so.stats.Weighted, wl)
			}
			// The gradient: one batch of all G·m sequences with the oracle's weights.
			cb := c
			cb.Accum, cb.Batch, cb.Scope = 1, G*m, ScopeMicro
			big := scopeTrainer(t, cb, tc.strategy, nil, step)
			b := big.st.it.Next(G * m)
			big.st.model.ZeroGrad()
			if _, err := big.st.model.Forward(b.Tokens, b.Targets, G*m, c.Seq); err != nil {
				t.Fatal(err)
			}
			if tc.gran == GranularityToken {
				err = big.st.model.BackwardTokens(w32)
			} else {
				err = big.st.model.Backward(w32)
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := relDiff(grads(tr), grads(big)); d > 1e-5 {
				t.Errorf("gradient differs from the oracle weights' one-batch gradient by %.3g (relative)", d)
			}
			// The next step normalises with this step's own min/max.
			if nlo, nhi, _ := tr.st.def.Range(); nlo != smin || nhi != smax {
				t.Errorf("next range [%v, %v], want the step's [%v, %v]", nlo, nhi, smin, smax)
			}
		})
	}
}

// TestDeferredScopeConfigErrors: strategies and options the deferred mode
// cannot honour are refused by Validate, before any training, with an
// error naming the key.
func TestDeferredScopeConfigErrors(t *testing.T) {
	base := tinyConfig(t)
	base.Scope, base.Accum = ScopeDeferred, 2
	for _, tc := range []struct {
		key  string
		set  func(*Config)
		want string
	}{
		{"strategy", func(c *Config) { c.Strategy, c.Compare, c.Q = goreweight.TopK, nil, 0.5 }, `strategy = "topk": not available with scope = "deferred"`},
		{"compare", func(c *Config) { c.Compare, c.Q = StrategyList{goreweight.Uniform, goreweight.Truncate}, 0.5 }, `compare = "uniform,truncate": not available with scope = "deferred"`},
		{"cap", func(c *Config) { c.Cap = 2 }, `cap = 2: not available with scope = "deferred"`},
	} {
		c := base
		tc.set(&c)
		err := c.Validate()
		var oe *goreweight.OptionError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &oe) || oe.Key != tc.key || !errors.Is(err, goreweight.ErrInvalid) {
			t.Errorf("%s: Validate() = %v, want an OptionError for %q containing %q", tc.key, err, tc.key, tc.want)
		}
		if _, err := Run(context.Background(), c, Options{}); err == nil || !errors.As(err, &oe) || oe.Key != tc.key {
			t.Errorf("%s: Run = %v, want the same OptionError", tc.key, err)
		}
	}
	c := base
	c.Compare = StrategyList{goreweight.Uniform, goreweight.LinUpper, goreweight.Quadratic, goreweight.Extremes, goreweight.DROKL}
	if err := c.Validate(); err != nil {
		t.Errorf("the softmax strategies in deferred scope: %v", err)
	}
}

// TestDeferredScopeRun: a deferred-scope run records the range each step
// normalised with and the fraction of its losses clipped, and a run
// cancelled and resumed equals an uninterrupted one bit for bit (the
// running range is in the checkpoint).
func TestDeferredScopeRun(t *testing.T) {
	c := tinyConfig(t)
	c.Compare = StrategyList{goreweight.LinUpper}
	c.Accum, c.Batch, c.Scope, c.Steps = 3, 4, ScopeDeferred, 9
	if _, err := Run(context.Background(), c, Options{}); err != nil {
		t.Fatal(err)
	}
	want := readRun(t, c)
	recs, err := readRecords(filepath.Join(c.Out, metricsName))
	if err != nil {
		t.Fatal(err)
	}
	clippedSome := false
	for _, r := range recs[1:] {
		if r.RangeLo == nil || r.RangeHi == nil || r.ClippedFrac == nil || !(*r.RangeLo <= *r.RangeHi) || !(*r.ClippedFrac >= 0 && *r.ClippedFrac <= 1) {
			t.Fatalf("step %d: range [%v, %v], clipped_frac %v", r.Step, r.RangeLo, r.RangeHi, r.ClippedFrac)
		}
		clippedSome = clippedSome || *r.ClippedFrac > 0
	}
	if !clippedSome {
		t.Error("no step clipped a loss: the range is not the previous step's")
	}
	ic := c
	ic.Out = filepath.Join(filepath.Dir(c.Out), "cut")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := Run(ctx, ic, Options{OnStep: func(_ string, step int) {
		if step == 5 {
			cancel()
		}
	}}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v, want ErrInterrupted", err)
	}
	if _, err := Run(context.Background(), Config{Resume: ic.Out, Threads: c.Threads, Quiet: true}, Options{}); err != nil {
		t.Fatal(err)
	}
	compareRuns(t, want, readRun(t, ic))
}
