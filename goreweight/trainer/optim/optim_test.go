package optim

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

func param(name string, decay bool, data ...float32) *nn.Param {
	return &nn.Param{Name: name, Data: data, Grad: make([]float32, len(data)), Shape: []int{len(data)}, Decay: decay}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// TestAdamWHandComputed checks two steps against values from
// torch.optim.AdamW (float64, betas (0.9, 0.95), eps 1e-8, weight decay 0.1
// on w only), which match the update written out by hand: e.g. for w[0] at
// step 1, p = 0.5·(1 − 0.01·0.1) − 0.01/0.1 · 0.01/(sqrt(0.0005)/sqrt(0.05) + 1e-8)
// = 0.4895000009999999.
func TestAdamWHandComputed(t *testing.T) {
	w := param("w", true, 0.5, -1, 2)
	b := param("b", false, 0.25)
	o, err := NewAdamW([]*nn.Param{w, b}, Config{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		gw, gb []float32
		lr     float64
		wantW  []float64
		wantB  float64
	}{
		{[]float32{0.1, -0.2, 0}, []float32{1}, 0.01,
			[]float64{0.4895000009999999, -0.9890000004999999, 1.998}, 0.2400000001},
		{[]float32{0.3, 0.1, -0.5}, []float32{-1}, 0.02,
			[]float64{0.47034715900793916, -0.9816546118794285, 2.008703199635546}, 0.24105263166842106},
	}
	for s, st := range steps {
		copy(w.Grad, st.gw)
		copy(b.Grad, st.gb)
		if err := o.Step(st.lr); err != nil {
			t.Fatal(err)
		}
		for i, want := range st.wantW {
			if !near(float64(w.Data[i]), want, 2e-7) {
				t.Errorf("step %d: w[%d] = %.9g, want %.9g", s+1, i, w.Data[i], want)
			}
		}
		if !near(float64(b.Data[0]), st.wantB, 2e-7) {
			t.Errorf("step %d: b = %.9g, want %.9g", s+1, b.Data[0], st.wantB)
		}
	}
	for i, want := range []float64{0.039, -0.008, -0.05} {
		if !near(float64(o.m[0][i]), want, 1e-6) {
			t.Errorf("m[%d] = %g, want %g", i, o.m[0][i], want)
		}
	}
	for i, want := range []float64{0.004975, 0.0024, 0.0125} {
		if !near(float64(o.v[0][i]), want, 1e-6) {
			t.Errorf("v[%d] = %g, want %g", i, o.v[0][i], want)
		}
	}
	if o.Steps() != 2 {
		t.Fatalf("Steps() = %d", o.Steps())
	}
}

func TestAdamWRejects(t *testing.T) {
	good := DefaultConfig()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Beta1: 1, Beta2: 0.95, Eps: 1e-8}, "Beta1 = 1"},
		{Config{Beta1: 0.9, Beta2: -0.1, Eps: 1e-8}, "Beta2 = -0.1"},
		{Config{Beta1: 0.9, Beta2: 0.95, Eps: 0}, "Eps = 0"},
		{Config{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: math.NaN()}, "WeightDecay = NaN"},
	} {
		if _, err := NewAdamW([]*nn.Param{param("a", true, 1)}, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := NewAdamW(nil, good); err == nil {
		t.Error("no params accepted")
	}
	if _, err := NewAdamW([]*nn.Param{param("a", true, 1), param("a", true, 2)}, good); err == nil || !strings.Contains(err.Error(), `named "a"`) {
		t.Errorf("duplicate names: %v", err)
	}
	p := param("p", true, 1, 2)
	o, _ := NewAdamW([]*nn.Param{p}, good)
	for _, lr := range []float64{-1, math.NaN(), math.Inf(1)} {
		if err := o.Step(lr); err == nil {
			t.Errorf("Step(%g) accepted", lr)
		}
	}
	p.Grad[1] = float32(math.Inf(-1))
	if err := o.Step(0.1); err == nil || !strings.Contains(err.Error(), `"p"[1] is -Inf`) {
		t.Errorf("non-finite gradient: %v", err)
	}
	if o.Steps() != 0 || p.Data[0] != 1 || o.m[0][0] != 0 {
		t.Error("a rejected Step changed the state")
	}
}

func TestLR(t *testing.T) {
	const max, min = 1e-3, 1e-4
	for _, tc := range []struct {
		step, warmup, total int
		want                float64
	}{
		{0, 10, 110, max / 10},
		{4, 10, 110, max / 2},
		{9, 10, 110, max},
		{10, 10, 110, max},
		{60, 10, 110, (max + min) / 2},
		{110, 10, 110, min},
		{500, 10, 110, min},
		{-3, 10, 110, max / 10},
		{0, 0, 100, max},
		{50, 0, 100, (max + min) / 2},
		{5, 10, 10, max * 6 / 10},
		{10, 10, 10, min},
	} {
		if got := LR(tc.step, tc.warmup, tc.total, max, min); !near(got, tc.want, 1e-12) {
			t.Errorf("LR(%d, %d, %d) = %g, want %g", tc.step, tc.warmup, tc.total, got, tc.want)
		}
	}
	// Monotone: up through warm-up, down after.
	prev := 0.0
	for s := 0; s <= 120; s++ {
		lr := LR(s, 10, 110, max, min)
		if (s < 10 && lr <= prev) || (s > 10 && lr > prev) {
			t.Fatalf("LR not monotone at step %d: %g after %g", s, lr, prev)
		}
		prev = lr
	}
}

func TestClipGradNorm(t *testing.T) {
	p, q := param("p", true, 0, 0), param("q", false, 0)
	p.Grad[0], q.Grad[0] = 3, 4
	if n := ClipGradNorm([]*nn.Param{p, q}, 10); n != 5 || p.Grad[0] != 3 || q.Grad[0] != 4 {
		t.Fatalf("below the threshold: norm %g, grads %v %v", n, p.Grad, q.Grad)
	}
	if n := ClipGradNorm([]*nn.Param{p, q}, 0); n != 5 || p.Grad[0] != 3 {
		t.Fatalf("maxNorm 0 must only measure: norm %g grads %v", n, p.Grad)
	}
	if n := ClipGradNorm([]*nn.Param{p, q}, 1); n != 5 {
		t.Fatalf("norm %g, want 5", n)
	}
	// PyTorch clip_grad_norm_ gives 0.6, 0, 0.8 (scale 1/(5+1e-6)).
	if !near(float64(p.Grad[0]), 0.6, 1e-6) || p.Grad[1] != 0 || !near(float64(q.Grad[0]), 0.8, 1e-6) {
		t.Fatalf("clipped grads %v %v", p.Grad, q.Grad)
	}
	q.Grad[0] = float32(math.NaN())
	if n := ClipGradNorm([]*nn.Param{p, q}, 1); !math.IsNaN(n) || !near(float64(p.Grad[0]), 0.6, 1e-6) {
		t.Fatalf("NaN gradient: norm %g, p.Grad %v (must be untouched)", n, p.Grad)
	}
	// A large tensor: many chunks, several threads, same answer as float64 by hand.
	big := param("big", true, make([]float32, 5*grain+17)...)
	var want float64
	for i := range big.Grad {
		big.Grad[i] = float32(i%7) - 3
		want += float64(big.Grad[i]) * float64(big.Grad[i])
	}
	prev := nn.SetThreads(3)
	defer nn.SetThreads(prev)
	if n := ClipGradNorm([]*nn.Param{big}, 0); !near(n, math.Sqrt(want), 1e-12) {
		t.Fatalf("big norm %g, want %g", n, math.Sqrt(want))
	}
}

func TestStateRoundTripAndDeterminism(t *testing.T) {
	mk := func() ([]*nn.Param, *AdamW) {
		ps := []*nn.Param{param("a", true, make([]float32, 3*grain+5)...), param("b", false, 0.5, -0.5)}
		for k, p := range ps {
			for i := range p.Data {
				p.Data[i] = float32(math.Sin(float64(i + k)))
			}
		}
		o, err := NewAdamW(ps, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		return ps, o
	}
	grads := func(ps []*nn.Param, s int) {
		for k, p := range ps {
			for i := range p.Grad {
				p.Grad[i] = float32(math.Cos(float64(i*(s+1) + k)))
			}
		}
	}
	// Run A: 3 steps with 1 thread, save, 2 more steps.
	prev := nn.SetThreads(1)
	psA, oA := mk()
	for s := 0; s < 3; s++ {
		grads(psA, s)
		_ = oA.Step(1e-2)
	}
	var buf bytes.Buffer
	if err := oA.SaveState(&buf); err != nil {
		t.Fatal(err)
	}
	saved := buf.Bytes()
	params := [][]float32{append([]float32(nil), psA[0].Data...), append([]float32(nil), psA[1].Data...)}
	for s := 3; s < 5; s++ {
		grads(psA, s)
		_ = oA.Step(1e-2)
	}
	// Run B: fresh optimiser with 3 threads, restored params and state, 2 steps.
	nn.SetThreads(3)
	defer nn.SetThreads(prev)
	psB, oB := mk()
	copy(psB[0].Data, params[0])
	copy(psB[1].Data, params[1])
	if err := oB.LoadState(bytes.NewReader(saved)); err != nil {
		t.Fatal(err)
	}
	if oB.Steps() != 3 {
		t.Fatalf("restored Steps() = %d", oB.Steps())
	}
	for s := 3; s < 5; s++ {
		grads(psB, s)
		_ = oB.Step(1e-2)
	}
	for k := range psA {
		for i := range psA[k].Data {
			if psA[k].Data[i] != psB[k].Data[i] {
				t.Fatalf("resumed run differs at %s[%d]", psA[k].Name, i)
			}
		}
	}
	// Corrupt, truncated and mismatched states are rejected and change nothing.
	_, oC := mk()
	bad := append([]byte(nil), saved...)
	bad[len(bad)/2] ^= 1
	for name, data := range map[string][]byte{"corrupt": bad, "truncated": saved[:len(saved)-3], "empty": nil} {
		if err := oC.LoadState(bytes.NewReader(data)); err == nil {
			t.Errorf("%s state accepted", name)
		}
	}
	if oC.Steps() != 0 {
		t.Fatal("failed LoadState changed the step")
	}
	other, _ := NewAdamW([]*nn.Param{param("a", true, 1, 2)}, DefaultConfig())
	if err := other.LoadState(bytes.NewReader(saved)); err == nil || !strings.Contains(err.Error(), "2 parameters") {
		t.Errorf("mismatched params: %v", err)
	}
}
