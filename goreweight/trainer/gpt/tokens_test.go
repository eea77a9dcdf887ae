package gpt

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestTokenLossesMatchSequenceLosses: the per-token losses of Forward are
// NaN exactly at the ignored targets, their row means are Forward's
// per-sequence losses, and EvaluateTokens gives them bit for bit.
func TestTokenLossesMatchSequenceLosses(t *testing.T) {
	m := mustNew(t, tiny, 11)
	randomise(m, 11)
	const B, T = 3, 6
	tokens, targets := randBatch(12, tiny.Vocab, B, T)
	targets[1], targets[T+4] = -1, -1
	seq, err := m.Forward(tokens, targets, B, T)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.TokenLosses()
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != B*T {
		t.Fatalf("len(TokenLosses) = %d, want %d", len(tok), B*T)
	}
	for b := range B {
		var s float64
		n := 0
		for i := b * T; i < (b+1)*T; i++ {
			if isNaN := math.IsNaN(float64(tok[i])); isNaN != (targets[i] < 0) {
				t.Fatalf("token %d: loss %v with target %d", i, tok[i], targets[i])
			}
			if targets[i] >= 0 {
				s += float64(tok[i])
				n++
			}
		}
		if got := float32(s / float64(n)); got != seq[b] {
			t.Errorf("sequence %d: mean token loss %v, Forward %v", b, got, seq[b])
		}
	}
	ev, err := m.EvaluateTokens(tokens, targets, B, T)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ev {
		if math.Float32bits(ev[i]) != math.Float32bits(tok[i]) {
			t.Fatalf("EvaluateTokens[%d] = %v, TokenLosses %v", i, ev[i], tok[i])
		}
	}
}

// TestBackwardTokensEqualsSequenceBackward: per-token weights w_b/count_b
// give bitwise Backward(w)'s gradient (the same dL/dl_bt reach the same
// backward pass), so the per-token path is the sequence path's
// generalisation.
func TestBackwardTokensEqualsSequenceBackward(t *testing.T) {
	m := mustNew(t, tiny, 13)
	randomise(m, 13)
	const B, T = 4, 5
	tokens, targets := randBatch(14, tiny.Vocab, B, T)
	targets[3] = -1
	for i := 2 * T; i < 3*T; i++ {
		targets[i] = -1
	}
	w := []float32{0.3, 1.1, 0, 0.45}
	if _, err := m.Forward(tokens, targets, B, T); err != nil {
		t.Fatal(err)
	}
	m.ZeroGrad()
	if err := m.Backward(w); err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), m.grad...)
	wt := make([]float32, B*T)
	for b := range B {
		n := 0
		for i := b * T; i < (b+1)*T; i++ {
			if targets[i] >= 0 {
				n++
			}
		}
		for i := b * T; i < (b+1)*T; i++ {
			if targets[i] >= 0 && w[b] != 0 {
				wt[i] = float32(float64(w[b]) / float64(n))
			}
		}
	}
	m.ZeroGrad()
	if err := m.BackwardTokens(wt); err != nil {
		t.Fatal(err)
	}
	for i, g := range m.grad {
		if math.Float32bits(g) != math.Float32bits(want[i]) {
			t.Fatalf("grad[%d] = %v, Backward gives %v", i, g, want[i])
		}
	}
}

// TestBackwardTokensFiniteDifference checks every parameter's gradient of
// Σ_bt w_bt·l_bt with arbitrary per-token weights (one ignored target, one
// zero weight) against central differences of the float64 weighted sum of
// EvaluateTokens' losses.
func TestBackwardTokensFiniteDifference(t *testing.T) {
	m := mustNew(t, tiny, 15)
	randomise(m, 15)
	const B, T = 3, 6
	tokens, targets := randBatch(16, tiny.Vocab, B, T)
	targets[4] = -1
	r := rand.New(rand.NewPCG(17, 1))
	w := make([]float32, B*T)
	for i := range w {
		if targets[i] >= 0 && i != 7 {
			w[i] = float32(0.1 + r.Float64())
		}
	}
	var sum float64
	for _, wi := range w {
		sum += float64(wi)
	}
	for i := range w {
		w[i] = float32(2 * float64(w[i]) / sum) // Σw = 2, the scale of TestGradientFiniteDifference
	}
	if _, err := m.Forward(tokens, targets, B, T); err != nil {
		t.Fatal(err)
	}
	m.ZeroGrad()
	if err := m.BackwardTokens(w); err != nil {
		t.Fatal(err)
	}
	f := func() float64 {
		l, err := m.EvaluateTokens(tokens, targets, B, T)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for i, wi := range w {
			if wi != 0 {
				s += float64(wi) * float64(l[i])
			}
		}
		return s
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
		// float32 forward passes: central differences of one token's
		// weighted loss are noisier than of sequence means (a wrong
		// gradient is off by O(1)).
		if worst > 3e-2 {
			t.Errorf("%s: worst relative error %.3g", p.Name, worst)
		}
	}
}

// TestBackwardTokensChecksWeights: a wrong length, a non-finite weight, a
// weight on an ignored target, and no Forward are errors.
func TestBackwardTokensChecksWeights(t *testing.T) {
	m := mustNew(t, tiny, 18)
	if err := m.BackwardTokens(make([]float32, 4)); err == nil || !strings.Contains(err.Error(), "needs a successful Forward") {
		t.Fatalf("BackwardTokens before Forward: %v", err)
	}
	if _, err := m.TokenLosses(); err == nil {
		t.Fatal("TokenLosses before Forward: no error")
	}
	const B, T = 2, 3
	tokens, targets := randBatch(19, tiny.Vocab, B, T)
	targets[2] = -1
	if _, err := m.Forward(tokens, targets, B, T); err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	for _, tc := range []struct {
		w    []float32
		want string
	}{
		{make([]float32, B), "want B*T = 2*3 = 6"},
		{[]float32{0, 0, 0, nan, 0, 0}, "weights[3] = NaN (sequence 1, position 0) is not finite"},
		{[]float32{0, 0, 0.5, 0, 0, 0}, "target of sequence 0, position 2 is ignored"},
	} {
		if err := m.BackwardTokens(tc.w); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("BackwardTokens(%v) = %v, want an error containing %q", tc.w, err, tc.want)
		}
	}
}
