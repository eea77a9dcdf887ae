package goreweight

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// deferredOracle is an independent float64 implementation of the deferred
// weights of a whole step: the losses normalised with the fixed range
// [lo, hi] and clipped to [-delta, delta], the score written out per
// strategy, and a plain softmax with math.Exp. Non-finite losses get 0.
func deferredOracle(strategy string, losses []float32, lo, hi, delta, r float64) (w []float64, clipped int) {
	w = make([]float64, len(losses))
	logits := make([]float64, len(losses))
	best := math.Inf(-1)
	for i, l32 := range losses {
		l := float64(l32)
		if math.IsNaN(l) || math.IsInf(l, 0) {
			logits[i] = math.Inf(-1)
			continue
		}
		if l < lo || l > hi {
			clipped++
		}
		x := (2*(l-lo)/(hi-lo) - 1) * delta
		x = math.Max(-delta, math.Min(delta, x))
		var s float64
		switch strategy {
		case Uniform:
			s = 0
		case LinUpper:
			s = math.Min(x+delta, delta)
		case Quadratic:
			s = 1 - (x/delta)*(x/delta)
		case Extremes:
			s = math.Abs(x)
		case DROKL:
			s = x
		default:
			panic(strategy)
		}
		logits[i] = s / r
		if math.IsInf(r, 1) {
			logits[i] = 0
		}
		best = math.Max(best, logits[i])
	}
	var z float64
	for i, g := range logits {
		w[i] = math.Exp(g - best)
		z += w[i]
	}
	for i := range w {
		w[i] /= z
	}
	return w, clipped
}

func deferredCfg(strategy string, delta, r float64) DeferredConfig {
	c := DefaultDeferredConfig()
	c.Strategy, c.Delta, c.Schedule = strategy, delta, Constant(r)
	return c
}

func randLosses(rng *rand.Rand, n int, lo, hi float32) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = lo + (hi-lo)*rng.Float32()
	}
	return l
}

// runStep feeds the micro-batches to d and finishes the step alone; it
// returns the weights u_i/Z of all micro-batches in order and the stats.
func runStep(t *testing.T, d *Deferred, micro [][]float32) ([]float64, *DeferredStats) {
	t.Helper()
	var us [][]float32
	zsum := d.Sums().Z // a restored open step's micro-batches so far
	for _, l := range micro {
		u := make([]float32, len(l))
		z, err := d.Micro(u, l)
		if err != nil {
			t.Fatal(err)
		}
		zsum += z
		us = append(us, u)
	}
	st, err := d.Finish(nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(st.Z-zsum) > 1e-12*zsum {
		t.Fatalf("Z = %v, the micro-batches' partial sums add to %v", st.Z, zsum)
	}
	var w []float64
	for _, u := range us {
		for _, v := range u {
			w = append(w, float64(v)*st.Scale)
		}
	}
	return w, st
}

func concat(micro [][]float32) []float32 {
	var all []float32
	for _, m := range micro {
		all = append(all, m...)
	}
	return all
}

func closeRel(t *testing.T, what string, got, want []float64, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d weights, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > rel*math.Abs(want[i])+1e-30 {
			t.Fatalf("%s: weight %d = %.9g, want %.9g", what, i, got[i], want[i])
		}
	}
}

func TestDeferredFixedRangeMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nan := float32(math.NaN())
	for _, strategy := range []string{Uniform, LinUpper, Quadratic, Extremes, DROKL} {
		for _, delta := range []float64{1, 0.5, 3} {
			for _, r := range []float64{0.3, 1, 4, math.Inf(1)} {
				// some losses fall outside the fixed range [2, 5] (clipped)
				micro := [][]float32{randLosses(rng, 7, 1.5, 5.5), append(randLosses(rng, 5, 2, 5), nan), randLosses(rng, 300, 1, 6)}
				cfg := deferredCfg(strategy, delta, r)
				if math.IsInf(r, 1) {
					cfg.Schedule = Constant(1).WithWarmup(10)
				}
				d, err := NewDeferred(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.SetRange(2, 5); err != nil {
					t.Fatal(err)
				}
				got, st := runStep(t, d, micro)
				want, clipped := deferredOracle(strategy, concat(micro), 2, 5, delta, r)
				closeRel(t, strategy, got, want, 2e-6)
				if st.Clipped != clipped || st.Valid != len(got)-1 || st.NonFinite != 1 || st.M != len(got) {
					t.Errorf("%s: clipped/valid/nonfinite/m = %d/%d/%d/%d, want %d/%d/1/%d", strategy, st.Clipped, st.Valid, st.NonFinite, st.M, clipped, len(got)-1, len(got))
				}
				var sum, ess float64
				for _, v := range want {
					sum += v
					ess += v * v
				}
				if math.Abs(sum-1) > 1e-12 || math.Abs(st.ESS-1/ess) > 1e-6/ess {
					t.Errorf("%s: oracle sum %v, ESS %v want %v", strategy, sum, st.ESS, 1/ess)
				}
				if (strategy == Uniform || math.IsInf(r, 1)) != st.Uniform {
					t.Errorf("%s r=%v: uniform = %v", strategy, r, st.Uniform)
				}
			}
		}
	}
}

// With the range equal to the step's own min/max, the deferred weights are
// those of the exact path (Weigher.Weights on the whole step's batch).
func TestDeferredExactRangeEqualsWeigher(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, strategy := range []string{LinUpper, Quadratic, Extremes, DROKL} {
		micro := [][]float32{randLosses(rng, 9, 0.5, 4), randLosses(rng, 600, 1, 3), randLosses(rng, 4, 2, 8)}
		all := concat(micro)
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		for _, l := range all {
			lo, hi = min(lo, l), max(hi, l)
		}
		d, err := NewDeferred(deferredCfg(strategy, 1, 0.4))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.SetRange(float64(lo), float64(hi)); err != nil {
			t.Fatal(err)
		}
		got, st := runStep(t, d, micro)
		o := DefaultOptions()
		o.Strategy = strategy
		w, _ := NewWeigher(o)
		exact := make([]float32, len(all))
		est, err := w.Weights(exact, all, nil, 0.4)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, len(exact))
		for i, v := range exact {
			want[i] = float64(v)
		}
		closeRel(t, strategy, got, want, 2e-6)
		if st.Clipped != 0 {
			t.Errorf("%s: %d clipped with the exact range", strategy, st.Clipped)
		}
		for _, c := range [][3]float64{{st.ESS, est.ESS}, {st.Entropy, est.Entropy}, {st.MaxWM, est.MaxWM}, {st.MinWM, est.MinWM}, {st.Weighted, est.Weighted}, {st.LossMean, est.LossMean}} {
			if math.Abs(c[0]-c[1]) > 1e-9*math.Abs(c[1]) {
				t.Errorf("%s: stat %v, exact %v", strategy, c[0], c[1])
			}
		}
	}
}

func TestDeferredRangeFollowsTheSteps(t *testing.T) {
	d, _ := NewDeferred(deferredCfg(LinUpper, 1, 1))
	if _, _, ok := d.Range(); ok {
		t.Fatal("a range is known before any loss")
	}
	// step 0: the first micro-batch's own range (with a non-finite micro-batch first)
	nan := float32(math.NaN())
	u := make([]float32, 3)
	if _, err := d.Micro(u[:2], []float32{nan, nan}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Micro(u, []float32{2, 4, 3}); err != nil {
		t.Fatal(err)
	}
	if lo, hi, ok := d.Range(); !ok || lo != 2 || hi != 4 {
		t.Fatalf("range [%v, %v] %v, want the first finite micro-batch's [2, 4]", lo, hi, ok)
	}
	if _, err := d.Micro(u[:2], []float32{1, 6}); err != nil {
		t.Fatal(err)
	}
	st, err := d.Finish(nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.RangeLo != 2 || st.RangeHi != 4 || st.Clipped != 2 || st.LossMin != 1 || st.LossMax != 6 || st.Step != 0 || d.Step() != 1 {
		t.Fatalf("stats %+v", st)
	}
	if lo, hi, _ := d.Range(); lo != 1 || hi != 6 {
		t.Fatalf("range after step 0 [%v, %v], want the step's [1, 6]", lo, hi)
	}
	// momentum 0.5: the provisional first range is replaced, later ones blended
	c := deferredCfg(LinUpper, 1, 1)
	c.RangeMomentum = 0.5
	d, _ = NewDeferred(c)
	runStep(t, d, [][]float32{{2, 4}, {1, 6}})
	if lo, hi, _ := d.Range(); lo != 1 || hi != 6 {
		t.Fatalf("momentum: range after the first step [%v, %v], want [1, 6]", lo, hi)
	}
	runStep(t, d, [][]float32{{3, 4}})
	if lo, hi, _ := d.Range(); lo != 2 || hi != 5 {
		t.Fatalf("momentum 0.5: range [%v, %v], want [2, 5]", lo, hi)
	}
	// Discard drops a provisional range and the step
	d, _ = NewDeferred(deferredCfg(LinUpper, 1, 1))
	d.Micro(u[:2], []float32{2, 3})
	d.Discard()
	if _, _, ok := d.Range(); ok || d.Open() || d.Step() != 0 {
		t.Fatal("Discard kept the provisional range or the step")
	}
}

func TestDeferredScheduleAdvancesOncePerStep(t *testing.T) {
	c := deferredCfg(LinUpper, 1, 1)
	c.Schedule = Linear(10, 1, 4).WithWarmup(1)
	d, _ := NewDeferred(c)
	for step := int64(0); step < 6; step++ {
		_, st := runStep(t, d, [][]float32{{1, 2, 3}, {4, 0.5}, {2.5}})
		if st.Step != step || st.R != c.Schedule.At(step) || st.Uniform != (step == 0) {
			t.Fatalf("step %d: stats step %d r %v uniform %v, want r %v", step, st.Step, st.R, st.Uniform, c.Schedule.At(step))
		}
	}
}

// Two ranks that merge their sums get the weights of one process that sees
// both ranks' micro-batches.
func TestDeferredRanksMergeLikeOneProcess(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cfg := deferredCfg(Quadratic, 1, 0.5)
	one, _ := NewDeferred(cfg)
	ranks := [2]*Deferred{}
	for k := range ranks {
		ranks[k], _ = NewDeferred(cfg)
	}
	for step := 0; step < 3; step++ {
		var micro [2][][]float32
		for k := range micro {
			for g := 0; g < 3; g++ {
				micro[k] = append(micro[k], randLosses(rng, 3+k+g, 1, 4))
			}
		}
		if step == 0 { // all ranks start from the same range (as the Python layer does)
			for _, d := range []*Deferred{one, ranks[0], ranks[1]} {
				d.SetRange(1.5, 3.5)
			}
		}
		var rankW [2][]float32
		for k, d := range ranks {
			for _, l := range micro[k] {
				u := make([]float32, len(l))
				if _, err := d.Micro(u, l); err != nil {
					t.Fatal(err)
				}
				rankW[k] = append(rankW[k], u...)
			}
		}
		global := []DeferredSums{ranks[0].Sums(), ranks[1].Sums()}
		var got []float64
		for k, d := range ranks {
			st, err := d.Finish(global)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range rankW[k] {
				got = append(got, float64(u)*st.Scale)
			}
		}
		want, _ := runStep(t, one, append(micro[0], micro[1]...))
		closeRel(t, "ranks", got, want, 1e-12)
		for _, d := range ranks {
			lo, hi, _ := d.Range()
			olo, ohi, _ := one.Range()
			if lo != olo || hi != ohi {
				t.Fatalf("rank range [%v, %v], one process [%v, %v]", lo, hi, olo, ohi)
			}
		}
	}
}

func TestDeferredSumsVector(t *testing.T) {
	d, _ := NewDeferred(deferredCfg(LinUpper, 1, 1))
	d.Micro(make([]float32, 4), []float32{1, 2, float32(math.NaN()), 3})
	s := d.Sums()
	v := s.AppendVector(nil)
	if len(v) != DeferredSumsLen {
		t.Fatalf("vector of %d", len(v))
	}
	back, err := DeferredSumsFromVector(v)
	if err != nil || back != s {
		t.Fatalf("round trip %+v %v, want %+v", back, err, s)
	}
	for i, bad := range []func([]float64){
		func(v []float64) { v[0] = -1 },
		func(v []float64) { v[1] = 2.5 },
		func(v []float64) { v[0] = 9 },                    // m != valid + nonfinite
		func(v []float64) { v[4] = math.NaN() },           // Z
		func(v []float64) { v[11] = 2 },                   // u > 1
		func(v []float64) { v[9], v[10] = 5, 4 },          // lmin > lmax
		func(v []float64) { v[3] = 7 },                    // clipped > valid
		func(v []float64) { v[6] = 1 },                    // Σ u ln u > 0
		func(v []float64) { v[9] = math.Inf(1) },          // no finite min with valid > 0
		func(v []float64) { v[12] = math.NaN() },          // umin
		func(v []float64) { v[8] = math.Inf(-1) },         // lsum
		func(v []float64) { v[2], v[0] = 3, 6; v[1] = 3 }, // consistent counts but still valid (control)
	} {
		w := append([]float64(nil), v...)
		bad(w)
		_, err := DeferredSumsFromVector(w)
		if i == 11 {
			if err != nil {
				t.Errorf("control case refused: %v", err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("case %d: %v accepted (err %v)", i, w, err)
		}
	}
	if _, err := DeferredSumsFromVector(v[:5]); !errors.Is(err, ErrInvalid) {
		t.Error("a short vector was accepted")
	}
	if _, err := d.Finish([]DeferredSums{{M: 1}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Finish with fewer global losses than local: %v", err)
	}
}

// A run saved and restored (between steps or in the middle of one)
// continues bit for bit as the uninterrupted run.
func TestDeferredStateResumes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var steps [][][]float32
	for s := 0; s < 5; s++ {
		steps = append(steps, [][]float32{randLosses(rng, 5, 1, 3), randLosses(rng, 4, 0.5, 3.5)})
	}
	c := deferredCfg(Extremes, 1, 1)
	c.Schedule = Cosine(5, 0.5, 4)
	c.RangeMomentum = 0.3
	ref, _ := NewDeferred(c)
	var want [][]float64
	for _, m := range steps {
		w, _ := runStep(t, ref, m)
		want = append(want, w)
	}
	for _, cut := range []int{0, 2, 4} {
		for _, mid := range []bool{false, true} {
			d, _ := NewDeferred(c)
			for s := 0; s < cut; s++ {
				runStep(t, d, steps[s])
			}
			var u0 []float32
			if mid { // save after the first micro-batch of step cut
				u0 = make([]float32, len(steps[cut][0]))
				d.Micro(u0, steps[cut][0])
			}
			state, err := d.State()
			if err != nil {
				t.Fatal(err)
			}
			r, err := RestoreDeferred(state)
			if err != nil {
				t.Fatalf("restore %s: %v", state, err)
			}
			for s := cut; s < len(steps); s++ {
				micro := steps[s]
				var pre []float32
				if mid && s == cut {
					micro, pre = micro[1:], u0
				}
				w, _ := runStep(t, r, micro)
				if pre != nil {
					st := r.LastStats()
					var w0 []float64
					for _, u := range pre {
						w0 = append(w0, float64(u)*st.Scale)
					}
					w = append(w0, w...)
				}
				closeRel(t, "resumed", w, want[s], 0)
			}
			again, _ := r.State()
			final, _ := ref.State()
			if string(again) != string(final) {
				t.Fatalf("final state %s, uninterrupted %s", again, final)
			}
		}
	}
	// an open step with only non-finite losses round-trips (its identities are null in JSON)
	d, _ := NewDeferred(c)
	d.Micro(make([]float32, 1), []float32{float32(math.Inf(1))})
	st, _ := d.State()
	if r, err := RestoreDeferred(st); err != nil || r.Sums() != d.Sums() {
		t.Fatalf("non-finite open step: %v %+v want %+v", err, r.Sums(), d.Sums())
	}
	good, _ := ref.State()
	for _, bad := range []string{
		strings.Replace(string(good), `"version":1`, `"version":2`, 1),
		strings.Replace(string(good), `"version":1,`, ``, 1),
		strings.Replace(string(good), `"step":5`, `"step":-1`, 1),
		strings.Replace(string(good), `"step":5,`, ``, 1),
		strings.Replace(string(good), `"range_momentum":0.3`, `"range_momentum":1`, 1),
		strings.Replace(string(good), `"strategy":"extremes"`, `"strategy":"topk"`, 1),
		strings.Replace(string(good), `"open":null`, `"open":{"provisional_range":false,"sums":[1]}`, 1),
		strings.Replace(string(good), `"open":null`, `"open":null,"extra":1`, 1),
		strings.Replace(string(good), `,"open":null`, ``, 1),
		strings.Replace(string(good), `"range":[`, `"rang":[`, 1),
		strings.Replace(string(good), `,"range_momentum":0.3`, ``, 1),
		string(good) + " {}",
		`{"version":1,"config":{},"step":0,"range":null,"open":null}`,
	} {
		if _, err := RestoreDeferred([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("state %s accepted (err %v)", bad, err)
		}
	}
}

type deferredUserStrategy struct{}

func (deferredUserStrategy) Name() string                        { return "deferred-test-user" }
func (deferredUserStrategy) Score(s, x []float64, delta float64) { copy(s, x) }

func TestDeferredRefusesWhatItCannotDefer(t *testing.T) {
	_ = Register(deferredUserStrategy{})
	for _, tc := range []struct {
		edit func(*DeferredConfig)
		key  string
		word string
	}{
		{func(c *DeferredConfig) { c.Strategy, c.Q = TopK, 0.5 }, "strategy", "topk"},
		{func(c *DeferredConfig) { c.Strategy, c.Q = Truncate, 0.2 }, "strategy", "truncate"},
		{func(c *DeferredConfig) { c.Strategy = "deferred-test-user" }, "strategy", "deferred-test-user"},
		{func(c *DeferredConfig) { c.Cap = 2 }, "cap", "cap"},
		{func(c *DeferredConfig) { c.DomainMultipliers = []float64{1, 2} }, "domain_multipliers", "domain_multipliers"},
		{func(c *DeferredConfig) { c.RangeMomentum = 1 }, "range_momentum", "range_momentum"},
		{func(c *DeferredConfig) { c.RangeMomentum = math.NaN() }, "range_momentum", "range_momentum"},
		{func(c *DeferredConfig) { c.Delta = 0 }, "delta", "delta"},
		{func(c *DeferredConfig) { c.Schedule = Schedule{} }, "schedule.kind", "kind"},
	} {
		c := deferredCfg(LinUpper, 1, 1)
		tc.edit(&c)
		_, err := NewDeferred(c)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Key != tc.key || !strings.Contains(err.Error(), tc.word) || !errors.Is(err, ErrInvalid) {
			t.Errorf("config %+v: error %v, want an OptionError with key %q naming %q", c, err, tc.key, tc.word)
		}
	}
}

func TestDeferredBadUse(t *testing.T) {
	d, _ := NewDeferred(deferredCfg(LinUpper, 1, 1))
	if _, err := d.Finish(nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no step is open") {
		t.Errorf("Finish before any micro-batch: %v", err)
	}
	if _, err := d.Micro(make([]float32, 2), []float32{1, 2, 3}); !errors.Is(err, ErrInvalid) || d.Open() {
		t.Errorf("length mismatch: %v (open %v)", err, d.Open())
	}
	runStep(t, d, [][]float32{{1, 2}})
	if _, err := d.Finish(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Finish twice: %v", err)
	}
	// empty step, all non-finite step
	d.Micro(nil, nil)
	if _, err := d.Finish(nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty step: %v", err)
	}
	d.Discard()
	nan := float32(math.NaN())
	d.Micro(make([]float32, 2), []float32{nan, nan})
	var ne *NonFiniteError
	if _, err := d.Finish(nil); !errors.As(err, &ne) || !ne.All || ne.Count != 2 || !errors.Is(err, ErrNonFinite) {
		t.Errorf("all non-finite step: %v", err)
	}
	if !d.Open() || d.Step() != 1 {
		t.Error("a failed Finish changed the state")
	}
	if err := d.SetStep(3); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetStep while open: %v", err)
	}
	if err := d.SetRange(0, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetRange while open: %v", err)
	}
	d.Discard()
	for _, r := range [][2]float64{{2, 1}, {math.NaN(), 1}, {0, math.Inf(1)}} {
		if err := d.SetRange(r[0], r[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetRange %v: %v", r, err)
		}
	}
	if err := d.SetStep(-1); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetStep(-1): %v", err)
	}
	// non-finite under raise: an error naming the index, nothing accumulated
	c := deferredCfg(LinUpper, 1, 1)
	c.NonFinite = NonFiniteRaise
	d, _ = NewDeferred(c)
	_, err := d.Micro(make([]float32, 3), []float32{1, float32(math.Inf(-1)), nan})
	if !errors.As(err, &ne) || ne.Count != 2 || ne.First != 1 || ne.All || d.Open() {
		t.Errorf("raise: %v (open %v)", err, d.Open())
	}
	// every weight underflows: r far too small, all losses at the bottom of the range
	d, _ = NewDeferred(deferredCfg(LinUpper, 1, 1e-3))
	d.SetRange(0, 10)
	d.Micro(make([]float32, 2), []float32{0, 0})
	if _, err := d.Finish(nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "underflowed") {
		t.Errorf("underflow: %v", err)
	}
	// the last step
	d, _ = NewDeferred(deferredCfg(LinUpper, 1, 1))
	d.SetStep(math.MaxInt64)
	if _, err := d.Micro(make([]float32, 1), []float32{1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Micro at the largest step: %v", err)
	}
}

func TestDeferredMicroAllocatesNothing(t *testing.T) {
	d, _ := NewDeferred(deferredCfg(Quadratic, 1, 1))
	l := randLosses(rand.New(rand.NewPCG(1, 1)), 1000, 0, 1)
	u := make([]float32, len(l))
	d.Micro(u, l)
	if a := testing.AllocsPerRun(10, func() { d.Micro(u, l) }); a != 0 {
		t.Errorf("Micro allocates %v times per call", a)
	}
}
