package goreweight

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestScheduleEndpointsAndShape(t *testing.T) {
	const n = 1000
	for _, s := range []Schedule{Linear(100, 1, n), Cosine(100, 1, n), Exponential(100, 1, n)} {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		if s.At(0) != 100 || s.At(n) != 1 || s.At(5*n) != 1 {
			t.Fatalf("%s: r(0)=%v r(n)=%v r(5n)=%v, want 100, 1, 1", s.Kind, s.At(0), s.At(n), s.At(5*n))
		}
		for k := int64(1); k <= n; k++ {
			if s.At(k) > s.At(k-1) {
				t.Fatalf("%s: r increases at step %d", s.Kind, k)
			}
		}
	}
	// midpoints from the closed forms
	mid := map[string]float64{ScheduleLinear: 50.5, ScheduleCosine: 50.5, ScheduleExponential: 10}
	for _, s := range []Schedule{Linear(100, 1, 1000), Cosine(100, 1, 1000), Exponential(100, 1, 1000)} {
		if got := s.At(500); math.Abs(got-mid[s.Kind]) > 1e-12 {
			t.Fatalf("%s: r(500) = %v, want %v", s.Kind, got, mid[s.Kind])
		}
	}
	// cosine at a quarter: 1 + 99·(1+cos(π/4))/2
	if got, want := Cosine(100, 1, 1000).At(250), 1+99*(1+math.Sqrt2/2)/2; math.Abs(got-want) > 1e-12 {
		t.Fatalf("cosine r(250) = %v, want %v", got, want)
	}
	// annealing upward works too
	if s := Linear(1, 3, 2); s.At(1) != 2 {
		t.Fatalf("linear up: %v", s.At(1))
	}
	st := StepSchedule([]int64{10, 20}, []float64{100, 5, 1})
	for step, want := range map[int64]float64{0: 100, 9: 100, 10: 5, 19: 5, 20: 1, 1e9: 1} {
		if st.At(step) != want {
			t.Fatalf("step schedule r(%d) = %v, want %v", step, st.At(step), want)
		}
	}
}

func TestWarmupAndOfficialVariants(t *testing.T) {
	burnIn := Constant(0.4).WithWarmup(1000)
	if !math.IsInf(burnIn.At(0), 1) || !math.IsInf(burnIn.At(999), 1) || burnIn.At(1000) != 0.4 {
		t.Fatalf("burn-in: %v %v %v", burnIn.At(0), burnIn.At(999), burnIn.At(1000))
	}
	fsdp := StepSchedule([]int64{2000}, []float64{100, 0.6})
	if fsdp.At(1999) != 100 || fsdp.At(2000) != 0.6 {
		t.Fatal("r = 100 for 2000 steps then 0.6")
	}
	lw := Linear(10, 1, 100).WithWarmup(50)
	if !math.IsInf(lw.At(49), 1) || lw.At(50) != 10 || lw.At(150) != 1 || lw.At(100) != 5.5 {
		t.Fatalf("warm-up then anneal: %v %v %v %v", lw.At(49), lw.At(50), lw.At(100), lw.At(150))
	}
	// a warm-up step gives uniform weights through the Reweighter
	rw, err := New(Config{Options: dflt(Options{Strategy: LinUpper}), Schedule: burnIn})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 3)
	st, _ := rw.Weights(dst, []float32{1, 2, 30}, nil)
	if !st.Uniform || dst[2] != float32(1.0/3) || !math.IsInf(st.R, 1) {
		t.Fatalf("warm-up step must be uniform: %v %+v", dst, st)
	}
}

func TestScheduleValidation(t *testing.T) {
	for _, s := range []Schedule{
		{}, {Kind: "warp"}, Constant(0), Constant(math.Inf(1)), Constant(math.NaN()), Linear(1, 0, 10), Linear(1, 2, 0),
		Exponential(-1, 1, 5), StepSchedule([]int64{5}, []float64{1}), StepSchedule([]int64{5, 5}, []float64{1, 2, 3}),
		StepSchedule([]int64{0}, []float64{1, 2}), Constant(1).WithWarmup(-1),
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("schedule %+v accepted", s)
		}
	}
}

func TestResumeEqualsUninterrupted(t *testing.T) {
	cfg := Config{Options: dflt(Options{Strategy: Quadratic, Cap: 3, DomainMultipliers: []float64{1, 2}}),
		Schedule: Cosine(50, 0.3, 40).WithWarmup(5)}
	rng := rand.New(rand.NewPCG(4, 4))
	batches := make([][]float32, 60)
	doms := make([][]int32, 60)
	for i := range batches {
		batches[i] = randomBatch(rng, 200)
		doms[i] = make([]int32, 200)
		for j := range doms[i] {
			doms[i][j] = int32(rng.IntN(2))
		}
	}
	a, _ := New(cfg)
	full := make([][]float32, 60)
	for i := range batches {
		full[i] = make([]float32, 200)
		if _, err := a.Weights(full[i], batches[i], doms[i]); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := New(cfg)
	for i := 0; i < 23; i++ {
		b.Weights(make([]float32, 200), batches[i], doms[i])
	}
	state, err := b.State()
	if err != nil {
		t.Fatal(err)
	}
	// the state is JSON a person can read
	var m map[string]any
	if err := json.Unmarshal(state, &m); err != nil || m["step"].(float64) != 23 {
		t.Fatalf("state %s: %v", state, err)
	}
	c, err := Restore(state)
	if err != nil {
		t.Fatal(err)
	}
	for i := 23; i < 60; i++ {
		dst := make([]float32, 200)
		st, err := c.Weights(dst, batches[i], doms[i])
		if err != nil {
			t.Fatal(err)
		}
		if st.Step != int64(i) {
			t.Fatalf("resumed step %d, want %d", st.Step, i)
		}
		for j := range dst {
			if dst[j] != full[i][j] {
				t.Fatalf("step %d: resumed weight %d = %v, uninterrupted %v", i, j, dst[j], full[i][j])
			}
		}
	}
	if _, err := Restore([]byte(`{"version": 99}`)); err == nil {
		t.Fatal("unknown state version accepted")
	}
	if _, err := Restore([]byte(`{"version": 1, "config": {"strategy": "nope", "schedule": {"kind": "constant", "r": 1}}}`)); err == nil {
		t.Fatal("invalid state config accepted")
	}
	if _, err := Restore([]byte(`not json`)); err == nil {
		t.Fatal("garbage state accepted")
	}
}

func TestStepDoesNotAdvanceOnError(t *testing.T) {
	rw, _ := New(Config{Options: DefaultOptions(), Schedule: Constant(1)})
	if _, err := rw.Weights(nil, nil, nil); err == nil {
		t.Fatal("empty batch accepted")
	}
	if rw.Step() != 0 {
		t.Fatalf("step advanced to %d on error", rw.Step())
	}
	if err := rw.SetStep(-1); err == nil {
		t.Fatal("negative step accepted")
	}
}

func TestConfigJSON(t *testing.T) {
	c := DefaultConfig() // keys left out take their defaults
	js := `{"strategy":"topk","q":0.25,"cap":2,"schedule":{"kind":"linear","r_start":100,"r_end":1,"steps":10,"warmup":3}}`
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	rw, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	got := rw.Config()
	if got.Strategy != TopK || got.Q != 0.25 || got.Cap != 2 || got.Delta != 1 || got.NonFinite != NonFiniteZero || got.Schedule.Warmup != 3 {
		t.Fatalf("config from JSON: %+v", got)
	}
}

// Stats must marshal to JSON during a warm-up (r = +Inf) and with a domain
// whose losses are all non-finite (mean loss NaN): both become null.
func TestStatsJSON(t *testing.T) {
	rw, _ := New(Config{Options: DefaultOptions(), Schedule: Constant(1).WithWarmup(2)})
	nan := float32(math.NaN())
	st, err := rw.Weights(make([]float32, 3), []float32{1, 2, nan}, []int32{0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["r"] != nil || back["m"].(float64) != 3 || back["uniform"] != true {
		t.Fatalf("stats JSON %s", b)
	}
	doms := back["domains"].([]any)
	if doms[1].(map[string]any)["mean_loss"] != nil || doms[0].(map[string]any)["mean_loss"].(float64) != 1.5 {
		t.Fatalf("domain stats JSON %s", b)
	}
}

// TestRestoreIsStrict is issue 13 item 8's root: a state is validated as
// strictly as a new configuration, with nothing defaulted; a typo or a
// zero that New would refuse is refused, not loaded silently.
func TestRestoreIsStrict(t *testing.T) {
	rw, err := New(Config{Options: DefaultOptions(), Schedule: Constant(1)})
	if err != nil {
		t.Fatal(err)
	}
	good, err := rw.State()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(good); err != nil {
		t.Fatalf("own state: %v", err)
	}
	for name, js := range map[string]string{
		"unknown key":  `{"version":1,"config":{"strategy":"linupper","delta":1,"nonfinite":"zero","capp":2,"schedule":{"kind":"constant","r":1}},"step":0}`,
		"delta 0":      `{"version":1,"config":{"strategy":"linupper","delta":0,"nonfinite":"zero","schedule":{"kind":"constant","r":1}},"step":0}`,
		"no delta":     `{"version":1,"config":{"strategy":"linupper","nonfinite":"zero","schedule":{"kind":"constant","r":1}},"step":0}`,
		"no strategy":  `{"version":1,"config":{"delta":1,"nonfinite":"zero","schedule":{"kind":"constant","r":1}},"step":0}`,
		"trailing":     string(good) + ` {}`,
		"unknown top":  `{"version":1,"config":{"strategy":"linupper","delta":1,"nonfinite":"zero","schedule":{"kind":"constant","r":1}},"step":0,"stepp":3}`,
		"bad schedule": `{"version":1,"config":{"strategy":"linupper","delta":1,"nonfinite":"zero","schedule":{"kind":"constant","r":0}},"step":0}`,
	} {
		if _, err := Restore([]byte(js)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: restored (err %v)", name, err)
		}
		if err := rw.LoadState([]byte(js)); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
