package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
)

// scopeTrainer returns the trainer of strategy for c at optimiser step
// step (past the uniform warm-up of tinyConfig), with ref as its
// reference model.
func scopeTrainer(t testing.TB, c Config, strategy string, ref *reference, step int) *trainer {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := loadData(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.ref = ref
	tr, err := newTrainer(c, e, strategy, &logs{out: c.Out})
	if err != nil {
		t.Fatal(err)
	}
	tr.step = step
	if err := tr.st.rw.SetStep(int64(step)); err != nil {
		t.Fatal(err)
	}
	return tr
}

// testReference is a reference model of another shape than tinyConfig's
// (2 layers, width 24, context 32), randomly initialised.
func testReference(t testing.TB, seed uint64) *reference {
	t.Helper()
	m, err := gpt.New(gpt.Config{Vocab: 256, Seq: 32, Layers: 2, Heads: 3, Width: 24}, seed)
	if err != nil {
		t.Fatal(err)
	}
	return &reference{model: m, info: ReferenceInfo{SHA256: "test"}}
}

// grads returns a copy of every parameter gradient.
func grads(tr *trainer) []float32 {
	var g []float32
	for _, p := range tr.params {
		g = append(g, p.Grad...)
	}
	return g
}

// relDiff is max|a-b| / max|b|.
func relDiff(a, b []float32) float64 {
	var d, s float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = math.Max(s, math.Abs(float64(b[i])))
	}
	return d / s
}

// TestGlobalScopeEqualsOneBigBatch: with scope global, the gradient
// accumulated over G micro-batches of m sequences equals the gradient of
// one step with G = 1 on the batch of G·m sequences (the same sequences,
// as the data order is the same), and so do the weights, for several
// strategies, per sequence and per token, with and without a reference
// model. micro scope with the same G gives a different gradient (it
// weights each micro-batch alone), so the check can fail.
func TestGlobalScopeEqualsOneBigBatch(t *testing.T) {
	const G, m, step = 4, 3, 10
	base := tinyConfig(t)
	for _, tc := range []struct {
		strategy, gran string
		ref            bool
	}{
		{goreweight.LinUpper, GranularitySequence, false},
		{goreweight.Quadratic, GranularitySequence, false},
		{goreweight.DROKL, GranularitySequence, true},
		{goreweight.LinUpper, GranularityToken, false},
		{goreweight.TopK, GranularityToken, true},
	} {
		t.Run(tc.strategy+"/"+tc.gran, func(t *testing.T) {
			c := base
			c.Granularity, c.Q = tc.gran, 0.5
			var ref *reference
			if tc.ref {
				ref = testReference(t, 77)
			}
			c.Accum, c.Batch, c.Scope = G, m, ScopeGlobal
			glob := scopeTrainer(t, c, tc.strategy, ref, step)
			gs, err := glob.accumulate()
			if err != nil {
				t.Fatal(err)
			}
			c.Scope = ScopeMicro
			micro := scopeTrainer(t, c, tc.strategy, ref, step)
			if _, err := micro.accumulate(); err != nil {
				t.Fatal(err)
			}
			c.Accum, c.Batch, c.Scope = 1, G*m, ScopeMicro
			big := scopeTrainer(t, c, tc.strategy, ref, step)
			bs, err := big.accumulate()
			if err != nil {
				t.Fatal(err)
			}
			if gs.stats.Uniform || bs.stats.Uniform {
				t.Fatal("uniform weights: the test would not test the scope")
			}
			if d := relDiff(gs.entryWeights, bs.entryWeights); d > 1e-6 {
				t.Errorf("weights: global scope differs from one big batch by %.3g (relative)", d)
			}
			gg, bg, mg := grads(glob), grads(big), grads(micro)
			if d := relDiff(gg, bg); d > 1e-5 {
				t.Errorf("gradient: global scope G=%d×%d differs from one batch of %d by %.3g (relative)", G, m, G*m, d)
			} else {
				t.Logf("global vs one batch: relative gradient difference %.2g", d)
			}
			if d := relDiff(mg, bg); d < 1e-3 {
				t.Errorf("micro scope's gradient is within %.3g of the one-batch gradient: the batches do not discriminate", d)
			}
			// r advanced once for the step, in every scope.
			for _, tr := range []*trainer{glob, micro, big} {
				if got := tr.st.rw.Step(); got != step+1 {
					t.Errorf("reweighter at step %d after one optimiser step from %d", got, step)
				}
			}
			// The step's statistics describe the global batch.
			n := G * m
			if tc.gran == GranularityToken {
				n *= c.Seq
			}
			if gs.stats.Valid != n || bs.stats.Valid != n {
				t.Errorf("stats: M = %d (global) and %d (one batch), want %d", gs.stats.Valid, bs.stats.Valid, n)
			}
			if math.Abs(gs.stats.MaxWM-bs.stats.MaxWM) > 1e-5*bs.stats.MaxWM || math.Abs(gs.stats.ESS-bs.stats.ESS) > 1e-5*bs.stats.ESS {
				t.Errorf("stats: max w·M %v, ESS %v; one batch: %v, %v", gs.stats.MaxWM, gs.stats.ESS, bs.stats.MaxWM, bs.stats.ESS)
			}
			if math.Abs(gs.stats.LossMean-bs.stats.LossMean) > 1e-6*bs.stats.LossMean {
				t.Errorf("stats: mean loss %v, one batch %v", gs.stats.LossMean, bs.stats.LossMean)
			}
		})
	}
}

// TestMicroScopeWeights: in micro scope every micro-batch's weights are the
// core's weights of that micro-batch alone at the step's temperature,
// divided by G, so that the step's weights sum to 1; the recorded
// statistics are those of the step's weights over all G·m sequences.
func TestMicroScopeWeights(t *testing.T) {
	const G, m, step = 3, 4, 9
	c := tinyConfig(t)
	c.Accum, c.Batch = G, m
	tr := scopeTrainer(t, c, goreweight.LinUpper, nil, step)
	probe := scopeTrainer(t, c, goreweight.LinUpper, nil, step) // same data order and model
	so, err := tr.accumulate()
	if err != nil {
		t.Fatal(err)
	}
	rw, err := goreweight.New(c.Reweighting(goreweight.LinUpper))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	maxWM := 0.0
	for k := range G {
		b := probe.st.it.Next(m)
		l, err := probe.st.model.Evaluate(b.Tokens, b.Targets, m, c.Seq)
		if err != nil {
			t.Fatal(err)
		}
		w := make([]float32, m)
		if err := rw.SetStep(step); err != nil {
			t.Fatal(err)
		}
		if _, err := rw.Weights(w, l, b.Domains); err != nil {
			t.Fatal(err)
		}
		for i := range w {
			want := float32(float64(w[i]) / G)
			if got := so.weights[k*m+i]; got != want {
				t.Fatalf("micro-batch %d, sequence %d: weight %v, want the core's %v / %d", k, i, got, w[i], G)
			}
			sum += float64(so.weights[k*m+i])
			maxWM = math.Max(maxWM, float64(want)*G*m)
		}
	}
	if math.Abs(sum-1) > 1e-6 {
		t.Errorf("the step's weights sum to %v", sum)
	}
	if so.stats.Valid != G*m || math.Abs(so.stats.MaxWM-maxWM) > 1e-9*maxWM {
		t.Errorf("stats: M = %d, max w·M = %v; want %d, %v", so.stats.Valid, so.stats.MaxWM, G*m, maxWM)
	}
	if tr.st.rw.Step() != step+1 {
		t.Errorf("reweighter at step %d, want %d", tr.st.rw.Step(), step+1)
	}
}

// TestExcessLossWeights: the token-level weights of a global-scope
// step with a reference model are exactly the core's weights of the
// per-token excess losses (the model's token losses minus the reference's,
// computed here from the gpt package directly), the loss statistics are
// those of the real losses, and each sequence's logged weight is the sum
// of its token weights. Likewise per sequence.
func TestExcessLossWeights(t *testing.T) {
	for _, gran := range []string{GranularityToken, GranularitySequence} {
		t.Run(gran, func(t *testing.T) { testWeightsWithReference(t, gran) })
	}
}

func testWeightsWithReference(t *testing.T, gran string) {
	const G, m, step = 2, 3, 10
	c := tinyConfig(t)
	c.Accum, c.Batch, c.Scope, c.Granularity = G, m, ScopeGlobal, gran
	tok := gran == GranularityToken
	ref := testReference(t, 5)
	tr := scopeTrainer(t, c, goreweight.Quadratic, ref, step)
	probe := scopeTrainer(t, c, goreweight.Quadratic, nil, step)
	so, err := tr.accumulate()
	if err != nil {
		t.Fatal(err)
	}
	var loss, excess []float32
	var doms []int32
	T := c.Seq
	for range G {
		b := probe.st.it.Next(m)
		eval, per := probe.st.model.Evaluate, 1
		refEval := ref.model.Evaluate
		if tok {
			eval, per, refEval = probe.st.model.EvaluateTokens, T, ref.model.EvaluateTokens
		}
		l, err := eval(b.Tokens, b.Targets, m, T)
		if err != nil {
			t.Fatal(err)
		}
		r, err := refEval(b.Tokens, b.Targets, m, T)
		if err != nil {
			t.Fatal(err)
		}
		for i := range l {
			loss = append(loss, l[i])
			excess = append(excess, l[i]-r[i])
			doms = append(doms, b.Domains[i/per])
		}
	}
	rw, err := goreweight.New(c.Reweighting(goreweight.Quadratic))
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.SetStep(step); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, len(excess))
	stp, err := rw.Weights(want, excess, doms)
	if err != nil {
		t.Fatal(err)
	}
	st := *stp // the next call overwrites the reweighter's stats
	if !slices.Equal(so.entryWeights, want) {
		t.Fatalf("weights differ from the core's weights of the excess losses (relative %.3g)", relDiff(so.entryWeights, want))
	}
	// The weights differ from those of the plain losses: the reference matters.
	plain := make([]float32, len(loss))
	if err := rw.SetStep(step); err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Weights(plain, loss, doms); err != nil {
		t.Fatal(err)
	}
	if relDiff(plain, want) < 1e-3 {
		t.Fatal("the reference does not change the weights: the test would not test it")
	}
	var lsum, wl float64
	for i, l := range loss {
		lsum += float64(l)
		wl += float64(want[i]) * float64(l)
	}
	if got := so.stats.LossMean; math.Abs(got-lsum/float64(len(loss))) > 1e-9 {
		t.Errorf("stats: mean loss %v, want the real losses' %v (the excess' mean is %v)", got, lsum/float64(len(loss)), st.LossMean)
	}
	if got := so.stats.Weighted; math.Abs(got-wl) > 1e-9 {
		t.Errorf("stats: weighted loss %v, want Σ w·l = %v", got, wl)
	}
	if math.Abs(so.stats.MaxWM-st.MaxWM) > 1e-6*st.MaxWM || math.Abs(so.stats.ESS-st.ESS) > 1e-6*st.ESS || math.Abs(so.stats.Entropy-st.Entropy) > 1e-6 {
		t.Errorf("stats: max w·M %v, ESS %v, entropy %v; the core's: %v, %v, %v", so.stats.MaxWM, so.stats.ESS, so.stats.Entropy, st.MaxWM, st.ESS, st.Entropy)
	}
	if !tok {
		return
	}
	for i := range G * m {
		var s float64
		for _, w := range want[i*T : (i+1)*T] {
			s += float64(w)
		}
		if so.weights[i] != float32(s) {
			t.Errorf("sequence %d: logged weight %v, want Σ of its token weights %v", i, so.weights[i], s)
		}
	}
}

// TestStepStatsMatchCore: the trainer's statistics of combined weights,
// applied to a single core call of plain losses, reproduce the core's.
func TestStepStatsMatchCore(t *testing.T) {
	c := tinyConfig(t)
	c.Batch = 12
	tr := scopeTrainer(t, c, goreweight.LinUpper, nil, 10)
	b := tr.st.it.Next(c.Batch)
	l, err := tr.st.model.Evaluate(b.Tokens, b.Targets, c.Batch, c.Seq)
	if err != nil {
		t.Fatal(err)
	}
	l[3] = float32(math.NaN())
	e, _ := tr.entriesOf(b, l)
	w := make([]float32, len(l))
	core, err := tr.weigh(w, e)
	if err != nil {
		t.Fatal(err)
	}
	got := stepStats([]goreweight.Stats{core}, w, e)
	// The core computes its statistics from the float64 weights before
	// rounding them to float32; the trainer from the float32 weights.
	near := func(name string, a, b float64) {
		if !(math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b))) {
			t.Errorf("%s: %v, core %v", name, a, b)
		}
	}
	near("max_wm", got.MaxWM, core.MaxWM)
	near("min_wm", got.MinWM, core.MinWM)
	near("ess", got.ESS, core.ESS)
	near("ess_frac", got.ESSFrac, core.ESSFrac)
	near("entropy", got.Entropy, core.Entropy)
	near("loss_mean", got.LossMean, core.LossMean)
	near("loss_weighted", got.Weighted, core.Weighted)
	near("loss_min", got.LossMin, core.LossMin)
	near("loss_max", got.LossMax, core.LossMax)
	if got.Valid != core.Valid || got.NonFinite != 1 || len(got.Domains) != len(core.Domains) {
		t.Fatalf("counts: valid %d nonfinite %d domains %d; core %d %d %d", got.Valid, got.NonFinite, len(got.Domains), core.Valid, core.NonFinite, len(core.Domains))
	}
	for i, d := range core.Domains {
		g := got.Domains[i]
		if g.ID != d.ID || g.Count != d.Count || g.NonFinite != d.NonFinite {
			t.Errorf("domain %d: %+v, core %+v", d.ID, g, d)
		}
		near("domain mean_loss", g.MeanLoss, d.MeanLoss)
		near("domain mean_wm", g.MeanWM, d.MeanWM)
		near("domain weight_sum", g.WeightSum, d.WeightSum)
	}
}

// TestScopeConfigErrors: bad accum, scope, granularity and reference
// values are refused with an error naming the key, which unwraps to a
// *goreweight.OptionError with that key.
func TestScopeConfigErrors(t *testing.T) {
	base := tinyConfig(t)
	for _, tc := range []struct {
		key  string
		set  func(*Config)
		want string
	}{
		{"accum", func(c *Config) { c.Accum = 0 }, "accum = 0: must be an integer in [1, 65536]"},
		{"accum", func(c *Config) { c.Accum = -2 }, "accum = -2"},
		{"accum", func(c *Config) { c.Accum, c.Batch, c.Seq = 65536, 1<<12, 16 }, "tokens per optimiser step is too many"},
		{"scope", func(c *Config) { c.Scope = "step" }, `scope = "step": must be "micro"`},
		{"granularity", func(c *Config) { c.Granularity = "" }, `granularity = "": must be "sequence"`},
		{"reference", func(c *Config) { c.Reference = filepath.Join(t.TempDir(), "nope") }, "nope"},
	} {
		c := base
		tc.set(&c)
		err := c.Validate()
		var oe *goreweight.OptionError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &oe) || oe.Key != tc.key || !errors.Is(err, goreweight.ErrInvalid) {
			t.Errorf("%s: Validate() = %v, want an OptionError for %q containing %q", tc.key, err, tc.key, tc.want)
		}
	}
	// JSON: a wrong type and an unknown key name their key too.
	for _, tc := range []struct{ js, key string }{
		{`{"accum": 1.5}`, "accum"},
		{`{"accum": "2"}`, "accum"},
		{`{"scope": 1}`, "scope"},
		{`{"granularity_": "token"}`, "granularity_"},
	} {
		_, _, err := DefaultConfig().ParseJSON([]byte(tc.js))
		var oe *goreweight.OptionError
		if err == nil || !errors.As(err, &oe) || oe.Key != tc.key {
			t.Errorf("ParseJSON(%s) = %v, want an OptionError for %q", tc.js, err, tc.key)
		}
	}
	c, keys, err := DefaultConfig().ParseJSON([]byte(`{"accum": 4, "scope": "global", "granularity": "token"}`))
	if err != nil || c.Accum != 4 || c.Scope != ScopeGlobal || c.Granularity != GranularityToken || !slices.Equal(keys, []string{"accum", "granularity", "scope"}) {
		t.Errorf("ParseJSON: %+v %v %v", c, keys, err)
	}
}

// TestGlobalScopeG1IsMicro: with G = 1 the global scope's first pass
// (Evaluate) gives bitwise Forward's losses, so the whole run equals the
// micro-scope run bit for bit: the extra forward changes nothing but the
// time.
func TestGlobalScopeG1IsMicro(t *testing.T) {
	c := tinyConfig(t)
	c.Compare = StrategyList{goreweight.LinUpper}
	c.Steps = 6
	a := c
	b := c
	b.Scope = ScopeGlobal
	b.Out = filepath.Join(filepath.Dir(c.Out), "global")
	for _, r := range []Config{a, b} {
		if _, err := Run(context.Background(), r, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	compareRuns(t, readRun(t, a), readRun(t, b))
}

// TestReferenceChecks: a reference of another tokenizer or vocabulary is
// refused naming the mismatch, and a resumed run refuses a reference
// checkpoint that changed since the run started.
func TestReferenceChecks(t *testing.T) {
	rc := tinyConfig(t)
	rc.Strategy, rc.Compare, rc.Steps = goreweight.Uniform, nil, 3
	if _, err := Run(context.Background(), rc, Options{}); err != nil {
		t.Fatal(err)
	}
	c := tinyConfig(t)
	c.Reference = rc.Out
	for _, tc := range []struct {
		tokenizer string
		vocab     int
		want      string
	}{
		{"gpt2", 50257, `its tokenizer is "byte", this run's is "gpt2"`},
		{"byte", 300, `its vocabulary has 256 tokens, this run's tokenizer "byte" has 300`},
	} {
		cc := c
		cc.Tokenizer = tc.tokenizer
		_, err := loadReference(cc, tc.vocab)
		var oe *goreweight.OptionError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &oe) || oe.Key != "reference" {
			t.Errorf("loadReference(tokenizer %s, vocab %d) = %v, want an OptionError for reference containing %q", tc.tokenizer, tc.vocab, err, tc.want)
		}
	}
	ref, err := loadReference(c, 256)
	if err != nil || ref.info.Strategy != goreweight.Uniform || ref.info.Step != 3 {
		t.Fatalf("loadReference = %+v, %v", ref, err)
	}

	// Interrupt a run with the reference, change the reference, resume.
	c.Compare, c.Steps = StrategyList{goreweight.LinUpper}, 8
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := Run(ctx, c, Options{OnStep: func(_ string, step int) {
		if step == 2 {
			cancel()
		}
	}}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v, want ErrInterrupted", err)
	}
	rc2 := rc
	rc2.Out, rc2.Seed = filepath.Join(t.TempDir(), "other"), 9
	if _, err := Run(context.Background(), rc2, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(CheckpointPath(rc2.Out, goreweight.Uniform))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(CheckpointPath(rc.Out, goreweight.Uniform), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Config{Resume: c.Out, Quiet: true}, Options{})
	if !errors.Is(err, errReferenceChanged) {
		t.Fatalf("resume with a changed reference: %v, want errReferenceChanged", err)
	}
}
