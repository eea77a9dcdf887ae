package gpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

var tiny = Config{Vocab: 11, Seq: 8, Layers: 2, Heads: 2, Width: 8}

func mustNew(t testing.TB, cfg Config, seed uint64) *Model {
	t.Helper()
	m, err := New(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomise gives every parameter a sizeable random value so that every path
// of the network carries gradient signal (the GPT-2 init is nearly uniform).
func randomise(m *Model, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	for _, p := range m.params {
		for i := range p.Data {
			v := r.NormFloat64()
			switch {
			case isLNWeight(p.Name):
				p.Data[i] = float32(1 + 0.2*v)
			case !p.Decay:
				p.Data[i] = float32(0.2 * v)
			default:
				p.Data[i] = float32(0.4 * v)
			}
		}
	}
}

func randBatch(seed uint64, V, B, T int) (tokens, targets []int32) {
	r := rand.New(rand.NewPCG(seed, 3))
	tokens, targets = make([]int32, B*T), make([]int32, B*T)
	for i := range tokens {
		tokens[i] = int32(r.IntN(V))
		targets[i] = int32(r.IntN(V))
	}
	return tokens, targets
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Vocab: 0, Seq: 8, Layers: 1, Heads: 1, Width: 8}, "Vocab = 0"},
		{Config{Vocab: 5, Seq: -1, Layers: 1, Heads: 1, Width: 8}, "Seq = -1"},
		{Config{Vocab: 5, Seq: 8, Layers: 0, Heads: 1, Width: 8}, "Layers = 0"},
		{Config{Vocab: 5, Seq: 8, Layers: 1, Heads: 3, Width: 8}, "not a multiple of Heads"},
		{Config{Vocab: 1 << 30, Seq: 8, Layers: 1, Heads: 1, Width: 1 << 20}, "too large"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to mention %q", tc.cfg, err, tc.want)
		}
		if _, err := New(tc.cfg, 1); err == nil {
			t.Errorf("New(%+v) succeeded", tc.cfg)
		}
	}
	if err := tiny.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParamsLayoutAndInit(t *testing.T) {
	cfg := Config{Vocab: 256, Seq: 64, Layers: 3, Heads: 4, Width: 64}
	m := mustNew(t, cfg, 42)
	C := cfg.Width
	if want := 256*C + 64*C + 3*(12*C*C+13*C) + 2*C; m.NumParams() != want {
		t.Fatalf("NumParams = %d, want %d", m.NumParams(), want)
	}
	total := 0
	for _, p := range m.Params() {
		total += len(p.Data)
		size := 1
		for _, d := range p.Shape {
			size *= d
		}
		if size != len(p.Data) || len(p.Grad) != len(p.Data) {
			t.Fatalf("%s: shape %v, %d values, %d grads", p.Name, p.Shape, len(p.Data), len(p.Grad))
		}
		if p.Decay != (len(p.Shape) == 2) {
			t.Errorf("%s: Decay = %v for shape %v", p.Name, p.Decay, p.Shape)
		}
		mean, std := stats(p.Data)
		switch {
		case isLNWeight(p.Name):
			if mean != 1 || std != 0 {
				t.Errorf("%s: mean %g std %g, want all ones", p.Name, mean, std)
			}
		case !p.Decay:
			if mean != 0 || std != 0 {
				t.Errorf("%s: not zero", p.Name)
			}
		default:
			want := 0.02
			if isResidualProj(p.Name) {
				want = 0.02 / math.Sqrt(2*3)
			}
			if math.Abs(std-want) > 0.1*want || math.Abs(mean) > 0.1*want {
				t.Errorf("%s: mean %g std %g, want N(0, %g)", p.Name, mean, std, want)
			}
		}
	}
	if total != m.NumParams() {
		t.Fatalf("params hold %d values, NumParams %d", total, m.NumParams())
	}
	if ps := m.Params(); ps[0].Name != "wte" || ps[1].Name != "wpe" || ps[len(ps)-1].Name != "ln_f.bias" || ps[4].Name != "h.0.attn.c_attn.weight" {
		t.Fatalf("unexpected order: %s %s %s", ps[0].Name, ps[1].Name, ps[4].Name)
	}
	if m.Config() != cfg {
		t.Fatalf("Config() = %+v", m.Config())
	}
}

func stats(x []float32) (mean, std float64) {
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	for _, v := range x {
		std += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(std / float64(len(x)))
}

func TestForwardRejectsBadInput(t *testing.T) {
	m := mustNew(t, tiny, 1)
	ok := make([]int32, 2*4)
	bad := func(v int32, at int) []int32 { s := make([]int32, 8); s[at] = v; return s }
	for _, tc := range []struct {
		tokens, targets []int32
		B, T            int
		want            string
	}{
		{ok, ok, 0, 4, "batch size"},
		{ok, ok, 1, 9, "sequence length T = 9"},
		{ok, ok, 2, 0, "sequence length T = 0"},
		{ok[:7], ok, 2, 4, "len(tokens) = 7"},
		{ok, ok[:5], 2, 4, "len(targets) = 5"},
		{bad(11, 5), ok, 2, 4, "tokens[5] = 11 (sequence 1, position 1)"},
		{bad(-1, 0), ok, 2, 4, "tokens[0] = -1"},
		{ok, bad(-2, 3), 2, 4, "targets[3] = -2"},
		{ok, bad(11, 3), 2, 4, "targets[3] = 11"},
	} {
		_, err := m.Forward(tc.tokens, tc.targets, tc.B, tc.T)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to mention %q", err, tc.want)
		}
		if _, err2 := m.Evaluate(tc.tokens, tc.targets, tc.B, tc.T); err2 == nil {
			t.Errorf("Evaluate accepted what Forward rejects (%q)", tc.want)
		}
	}
	if err := m.Backward([]float32{1, 1}); err == nil || !strings.Contains(err.Error(), "Forward first") {
		t.Fatalf("Backward after a failed Forward: %v", err)
	}
}

func TestBackwardChecksWeights(t *testing.T) {
	m := mustNew(t, tiny, 1)
	tokens, targets := randBatch(1, tiny.Vocab, 3, 5)
	for i := 5; i < 10; i++ {
		targets[i] = -1 // sequence 1 has no target
	}
	losses, err := m.Forward(tokens, targets, 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(losses[1])) || math.IsNaN(float64(losses[0])) || math.IsNaN(float64(losses[2])) {
		t.Fatalf("losses %v: want NaN exactly for the all-ignored sequence 1", losses)
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		w    []float32
		want string
	}{
		{[]float32{1, 0}, "len(weights) = 2"},
		{[]float32{1, 0, nan}, "weights[2] = NaN is not finite"},
		{[]float32{inf, 0, 1}, "weights[0] = +Inf is not finite"},
		{[]float32{1, 0.5, 1}, "sequence 1 has no non-ignored target"},
	} {
		err := m.Backward(tc.w)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Backward(%v): error %v, want it to mention %q", tc.w, err, tc.want)
		}
	}
	m.ZeroGrad()
	if err := m.Backward([]float32{0.3, 0, 0.7}); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.params {
		for _, g := range p.Grad {
			if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
				t.Fatalf("%s: non-finite gradient with a NaN-loss sequence at weight 0", p.Name)
			}
		}
	}
}

// loss64 is Σ_b w_b·loss_b of the latest forward in float64, skipping zero weights.
func loss64(a *acts, w []float32) float64 {
	var s float64
	for b, wb := range w {
		if wb != 0 {
			s += float64(wb) * a.loss[b]
		}
	}
	return s
}

// TestGradientFiniteDifference checks every parameter's gradient against
// central differences of the weighted loss on a tiny model, with
// non-uniform weights, a zero weight, partly ignored targets and a sequence
// whose targets are all ignored.
func TestGradientFiniteDifference(t *testing.T) {
	m := mustNew(t, tiny, 3)
	randomise(m, 3)
	const B, T = 4, 7 // T < Seq
	tokens, targets := randBatch(4, tiny.Vocab, B, T)
	targets[2], targets[5] = -1, -1 // sequence 0: partly ignored
	for i := 2 * T; i < 3*T; i++ {
		targets[i] = -1 // sequence 2: all ignored, loss NaN, weight 0
	}
	w := []float32{0.6, 1.7, 0, 0.25}
	if _, err := m.Forward(tokens, targets, B, T); err != nil {
		t.Fatal(err)
	}
	m.ZeroGrad()
	if err := m.Backward(w); err != nil {
		t.Fatal(err)
	}
	f := func() float64 {
		if _, err := m.Evaluate(tokens, targets, B, T); err != nil {
			t.Fatal(err)
		}
		return loss64(&m.eval, w)
	}
	for _, p := range m.params {
		var scale float64
		for _, g := range p.Grad {
			scale = math.Max(scale, math.Abs(float64(g)))
		}
		if scale == 0 {
			t.Fatalf("%s: zero gradient", p.Name)
		}
		worst := 0.0
		const h = 1e-2
		for i := range p.Data {
			x := p.Data[i]
			p.Data[i] = x + h
			fp := f()
			p.Data[i] = x - h
			fm := f()
			p.Data[i] = x
			num := (fp - fm) / float64((x+h)-(x-h))
			an := float64(p.Grad[i])
			den := math.Max(math.Max(math.Abs(num), math.Abs(an)), 1e-2*scale)
			worst = math.Max(worst, math.Abs(num-an)/den)
		}
		if worst > 1e-2 {
			t.Errorf("%s: worst relative error %.3g", p.Name, worst)
		} else {
			t.Logf("%s: worst relative error %.2g (max |grad| %.3g)", p.Name, worst, scale)
		}
	}
}

// TestGradientIsLinearInWeights: Backward(w) equals Σ_b w_b·Backward(e_b), and
// Backward accumulates.
func TestGradientIsLinearInWeights(t *testing.T) {
	m := mustNew(t, tiny, 5)
	randomise(m, 5)
	const B, T = 3, 8
	tokens, targets := randBatch(6, tiny.Vocab, B, T)
	if _, err := m.Forward(tokens, targets, B, T); err != nil {
		t.Fatal(err)
	}
	w := []float32{0.5, -1.25, 2}
	m.ZeroGrad()
	if err := m.Backward(w); err != nil {
		t.Fatal(err)
	}
	full := append([]float32(nil), m.grad...)
	sum := make([]float64, len(full))
	for b := range w {
		e := make([]float32, B)
		e[b] = 1
		m.ZeroGrad()
		if err := m.Backward(e); err != nil {
			t.Fatal(err)
		}
		for i, g := range m.grad {
			sum[i] += float64(w[b]) * float64(g)
		}
	}
	var maxRef, maxErr float64
	for i := range full {
		maxRef = math.Max(maxRef, math.Abs(sum[i]))
		maxErr = math.Max(maxErr, math.Abs(sum[i]-float64(full[i])))
	}
	if maxErr > 1e-5*maxRef {
		t.Fatalf("Backward(w) differs from Σ w_b Backward(e_b) by %g (scale %g)", maxErr, maxRef)
	}
	// Accumulation: a second Backward doubles the gradient (up to rounding:
	// wte receives two contributions per pass).
	m.ZeroGrad()
	_ = m.Backward(w)
	_ = m.Backward(w)
	for i, g := range m.grad {
		if math.Abs(float64(g-2*full[i])) > 1e-6*maxRef {
			t.Fatalf("grad[%d]: %g after two Backward calls, want %g", i, g, 2*full[i])
		}
	}
}

// TestDeterminism: the same seed and thread count give bitwise the same
// parameters, losses and gradients (3 threads exercises uneven splits).
func TestDeterminism(t *testing.T) {
	for _, threads := range []int{1, 3} {
		prev := nn.SetThreads(threads)
		testDeterminism(t)
		nn.SetThreads(prev)
	}
}

func testDeterminism(t *testing.T) {
	run := func() ([]float32, []float32, []float32) {
		m := mustNew(t, tiny, 99)
		tokens, targets := randBatch(7, tiny.Vocab, 3, 8)
		losses, err := m.Forward(tokens, targets, 3, 8)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Backward([]float32{0.2, 0.3, 0.5}); err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), m.data...), losses, append([]float32(nil), m.grad...)
	}
	p1, l1, g1 := run()
	p2, l2, g2 := run()
	for i := range p1 {
		if p1[i] != p2[i] {
			t.Fatal("same seed gave different parameters")
		}
	}
	for i := range l1 {
		if l1[i] != l2[i] {
			t.Fatal("same seed gave different losses")
		}
	}
	for i := range g1 {
		if g1[i] != g2[i] {
			t.Fatal("same seed gave different gradients")
		}
	}
	other := mustNew(t, tiny, 100)
	if other.data[0] == p1[0] && other.data[1] == p1[1] {
		t.Fatal("different seeds gave the same parameters")
	}
}

func TestEvaluateMatchesForward(t *testing.T) {
	m := mustNew(t, tiny, 8)
	randomise(m, 8)
	tokens, targets := randBatch(9, tiny.Vocab, 2, 8)
	lf, err := m.Forward(tokens, targets, 2, 8)
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Backward([]float32{0.5, 0.5})
	want := append([]float32(nil), m.grad...)
	// Evaluate on another batch shape must not disturb what Backward sees.
	tok2, tgt2 := randBatch(10, tiny.Vocab, 5, 3)
	if _, err := m.Evaluate(tok2, tgt2, 5, 3); err != nil {
		t.Fatal(err)
	}
	le, err := m.Evaluate(tokens, targets, 2, 8)
	if err != nil {
		t.Fatal(err)
	}
	for b := range lf {
		if lf[b] != le[b] {
			t.Fatalf("Evaluate loss %g, Forward %g", le[b], lf[b])
		}
	}
	m.ZeroGrad()
	_ = m.Backward([]float32{0.5, 0.5})
	for i := range want {
		if m.grad[i] != want[i] {
			t.Fatal("Evaluate changed the state Backward differentiates")
		}
	}
}

func TestVaryingBatchShapes(t *testing.T) {
	// Buffers are reused across shapes; results must not depend on history.
	m := mustNew(t, tiny, 11)
	tokens, targets := randBatch(12, tiny.Vocab, 2, 5)
	first, _ := m.Forward(tokens, targets, 2, 5)
	big, bigT := randBatch(13, tiny.Vocab, 6, 8)
	if _, err := m.Forward(big, bigT, 6, 8); err != nil {
		t.Fatal(err)
	}
	again, _ := m.Forward(tokens, targets, 2, 5)
	for b := range first {
		if first[b] != again[b] {
			t.Fatalf("loss changed after a larger batch: %g then %g", first[b], again[b])
		}
	}
}

func TestSaveLoadParams(t *testing.T) {
	m := mustNew(t, tiny, 21)
	var buf bytes.Buffer
	if err := m.SaveParams(&buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()

	m2 := mustNew(t, tiny, 22)
	if err := m2.LoadParams(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	m3, err := Load(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.data {
		if m2.data[i] != m.data[i] || m3.data[i] != m.data[i] {
			t.Fatal("round trip changed a parameter")
		}
	}
	if m3.Config() != tiny {
		t.Fatalf("Load config %+v", m3.Config())
	}

	orig := append([]float32(nil), m2.data...)
	check := func(name string, data []byte, target *Model, want string) {
		t.Helper()
		err := target.LoadParams(bytes.NewReader(data))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, want)
		}
		for i := range orig {
			if target == m2 && m2.data[i] != orig[i] {
				t.Fatalf("%s: failed load modified the model", name)
			}
		}
	}
	check("truncated", raw[:len(raw)-9], m2, "truncated")
	check("empty", nil, m2, "truncated")
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)/2] ^= 0x10
	check("corrupt", flipped, m2, "checksum")
	badMagic := append([]byte(nil), raw...)
	badMagic[7] = 'X'
	check("magic", badMagic, m2, "header length")
	check("old format", append([]byte("GRWGPT\x1a\n"), raw...), m2, "version 1 format")
	// A changed config in the metadata fails the checksum before it is used.
	badHeader := bytes.Replace(raw, []byte(`"layers":"2"`), []byte(`"layers":"3"`), 1)
	if bytes.Equal(badHeader, raw) {
		t.Fatal("metadata not found in the file")
	}
	check("header", badHeader, m2, "checksum mismatch")
	if _, err := Load(bytes.NewReader(badHeader)); !errors.Is(err, ErrParamsFile) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("Load of a corrupt header: %v", err)
	}
	other := mustNew(t, Config{Vocab: 11, Seq: 8, Layers: 1, Heads: 2, Width: 8}, 1)
	check("config", raw, other, "layers=2")
}

// ---- PyTorch parity ---------------------------------------------------------

type fixture struct {
	Config Config `json:"config"`
	Params []struct {
		Name  string    `json:"name"`
		Shape []int     `json:"shape"`
		Data  []float32 `json:"data"`
	} `json:"params"`
	Cases []struct {
		Name    string               `json:"name"`
		B       int                  `json:"B"`
		T       int                  `json:"T"`
		Mean    bool                 `json:"mean"`
		Tokens  []int32              `json:"tokens"`
		Targets []int32              `json:"targets"`
		Weights []float64            `json:"weights"`
		Losses  []*float64           `json:"losses"`
		Grads   map[string][]float64 `json:"grads"`
	} `json:"cases"`
}

// TestPyTorchParity compares losses and gradients with PyTorch (float64) on
// the fixture written by scripts/make_gpt_fixture.py.
func TestPyTorchParity(t *testing.T) {
	raw, err := os.ReadFile("testdata/gpt_fixture.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	m, err := newModel(fx.Config)
	if err != nil {
		t.Fatal(err)
	}
	if len(fx.Params) != len(m.params) {
		t.Fatalf("fixture has %d tensors, model %d", len(fx.Params), len(m.params))
	}
	for i, p := range m.params {
		fp := fx.Params[i]
		if fp.Name != p.Name || len(fp.Data) != len(p.Data) {
			t.Fatalf("fixture tensor %d is %s (%d values), model has %s (%d)", i, fp.Name, len(fp.Data), p.Name, len(p.Data))
		}
		copy(p.Data, fp.Data)
	}
	for _, c := range fx.Cases {
		t.Run(c.Name, func(t *testing.T) {
			losses, err := m.Forward(c.Tokens, c.Targets, c.B, c.T)
			if err != nil {
				t.Fatal(err)
			}
			for b, want := range c.Losses {
				got := float64(losses[b])
				if want == nil {
					if !math.IsNaN(got) {
						t.Errorf("loss[%d] = %g, want NaN", b, got)
					}
					continue
				}
				if rel := math.Abs(got-*want) / math.Abs(*want); rel > 1e-5 {
					t.Errorf("loss[%d] = %.7g, PyTorch %.7g (relative error %.2g)", b, got, *want, rel)
				}
			}
			w := make([]float32, c.B)
			for b := range w {
				w[b] = float32(c.Weights[b])
				if c.Mean {
					w[b] = float32(1 / float64(c.B))
				}
			}
			m.ZeroGrad()
			if err := m.Backward(w); err != nil {
				t.Fatal(err)
			}
			if len(c.Grads) != len(m.params) {
				t.Fatalf("fixture has gradients for %d tensors, model has %d", len(c.Grads), len(m.params))
			}
			for _, p := range m.params {
				name, ref := p.Name, c.Grads[p.Name]
				if len(ref) != len(p.Grad) {
					t.Fatalf("%s: fixture gradient has %d values, want %d", name, len(ref), len(p.Grad))
				}
				var maxRef, maxErr float64
				for i, r := range ref {
					maxRef = math.Max(maxRef, math.Abs(r))
					maxErr = math.Max(maxErr, math.Abs(float64(p.Grad[i])-r))
				}
				if rel := maxErr / maxRef; rel > 1e-4 || maxRef == 0 {
					t.Errorf("%s: max error %.3g relative to max |grad| %.3g = %.2g", name, maxErr, maxRef, rel)
				} else {
					t.Logf("%s: relative error %.2g", name, rel)
				}
			}
		})
	}
}
