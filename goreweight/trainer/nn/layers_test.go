package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/nn/internal/fastmath"
)

// ---- helpers ----------------------------------------------------------------

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

func randn(r *rand.Rand, n int, std float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * std)
	}
	return x
}

func randParam(r *rand.Rand, name string, std, mean float64, shape ...int) *Param {
	p := NewParam(name, false, shape...)
	for i := range p.Data {
		p.Data[i] = float32(mean + std*r.NormFloat64())
	}
	return p
}

// dot64 is Σ a·b accumulated in float64: the scalar objective of the checks.
func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// fdCheck compares analytic[i] = ∂f/∂x[i] with a central difference of f for
// every i. The error is relative to max(|numeric|, |analytic|, floor) with
// floor = 1e-2 * max|analytic|: the objective is computed from float32
// outputs, whose rounding makes central differences of entries far below
// the largest one noisy, while a real backward bug is wrong by O(1).
func fdCheck(t *testing.T, what string, x, analytic []float32, f func() float64, h float32, tol float64) {
	t.Helper()
	if len(x) != len(analytic) {
		t.Fatalf("%s: %d values, %d gradients", what, len(x), len(analytic))
	}
	var scale float64
	for _, g := range analytic {
		scale = math.Max(scale, math.Abs(float64(g)))
	}
	if scale == 0 {
		t.Fatalf("%s: analytic gradient is identically zero; the check would be vacuous", what)
	}
	worst, worstI := 0.0, -1
	for i := range x {
		xi := x[i]
		xp, xm := xi+h, xi-h
		x[i] = xp
		fp := f()
		x[i] = xm
		fm := f()
		x[i] = xi
		num := (fp - fm) / float64(xp-xm)
		an := float64(analytic[i])
		den := math.Max(math.Max(math.Abs(num), math.Abs(an)), 1e-2*scale)
		if e := math.Abs(num-an) / den; e > worst {
			worst, worstI = e, i
		}
		if math.IsNaN(num) || math.IsNaN(an) {
			t.Fatalf("%s[%d]: NaN (numeric %g analytic %g)", what, i, num, an)
		}
	}
	if worst > tol {
		i := worstI
		xi := x[i]
		x[i] = xi + h
		fp := f()
		x[i] = xi - h
		fm := f()
		x[i] = xi
		t.Errorf("%s[%d]: relative error %.3g > %.3g (numeric %.6g, analytic %.6g)", what, i, worst, tol, (fp-fm)/float64(2*h), analytic[i])
	} else {
		t.Logf("%s: worst relative error %.2g over %d entries", what, worst, len(x))
	}
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// withThreads runs fn once per thread count, so every layer's split is exercised.
func withThreads(t *testing.T, fn func(t *testing.T)) {
	for _, n := range []int{1, 3} {
		prev := SetThreads(n)
		t.Run([]string{"", "threads1", "", "threads3"}[n], fn)
		SetThreads(prev)
	}
}

// ---- Linear -----------------------------------------------------------------

func naiveLinear(out, in []float32, W, B []float32, n, nIn, nOut int) {
	for i := 0; i < n; i++ {
		for o := 0; o < nOut; o++ {
			var s float64
			for j := 0; j < nIn; j++ {
				s += float64(in[i*nIn+j]) * float64(W[o*nIn+j])
			}
			if B != nil {
				s += float64(B[o])
			}
			out[i*nOut+o] = float32(s)
		}
	}
}

func TestLinear(t *testing.T) {
	withThreads(t, func(t *testing.T) {
		for _, bias := range []bool{true, false} {
			r := newRand(1)
			const n, nIn, nOut = 37, 9, 20
			l := &Linear{W: randParam(r, "w", 0.5, 0, nOut, nIn)}
			if bias {
				l.B = randParam(r, "b", 0.5, 0, nOut)
			}
			x := randn(r, n*nIn, 1)
			dOut := randn(r, n*nOut, 1)
			out := make([]float32, n*nOut)
			l.Forward(out, x, n)
			want := make([]float32, n*nOut)
			var bd []float32
			if bias {
				bd = l.B.Data
			}
			naiveLinear(want, x, l.W.Data, bd, n, nIn, nOut)
			if d := maxAbsDiff(out, want); d > 1e-5 {
				t.Fatalf("bias=%v: forward differs from naive by %g", bias, d)
			}
			f := func() float64 { l.Forward(out, x, n); return dot64(out, dOut) }
			dx := make([]float32, n*nIn)
			l.Backward(dx, dOut, x, n)
			fdCheck(t, "Linear dIn", x, dx, f, 0.25, 1e-3)
			fdCheck(t, "Linear dW", l.W.Data, l.W.Grad, f, 0.25, 1e-3)
			if bias {
				fdCheck(t, "Linear dB", l.B.Data, l.B.Grad, f, 0.25, 1e-3)
			}
			// A second Backward accumulates: everything doubles.
			dx1, dw1 := append([]float32(nil), dx...), append([]float32(nil), l.W.Grad...)
			l.Backward(dx, dOut, x, n)
			for i := range dx {
				if math.Abs(float64(dx[i]-2*dx1[i])) > 1e-5*(1+math.Abs(float64(dx1[i]))) {
					t.Fatalf("dIn does not accumulate: %g then %g", dx1[i], dx[i])
				}
			}
			for i := range dw1 {
				if math.Abs(float64(l.W.Grad[i]-2*dw1[i])) > 1e-5*(1+math.Abs(float64(dw1[i]))) {
					t.Fatalf("dW does not accumulate: %g then %g", dw1[i], l.W.Grad[i])
				}
			}
		}
	})
}

// ---- LayerNorm --------------------------------------------------------------

func TestLayerNorm(t *testing.T) {
	withThreads(t, func(t *testing.T) {
		r := newRand(2)
		const n, C = 19, 12
		l := &LayerNorm{W: randParam(r, "w", 0.3, 1, C), B: randParam(r, "b", 0.3, 0, C)}
		x := randn(r, n*C, 1.5)
		for j := 0; j < C; j++ {
			x[3*C+j] += 40 // a row with a large offset: the variance must not cancel
		}
		out := make([]float32, n*C)
		mean, rstd := make([]float32, n), make([]float32, n)
		l.Forward(out, mean, rstd, x, n)
		for i := 0; i < n; i++ {
			var m, v float64
			for j := 0; j < C; j++ {
				m += float64(x[i*C+j])
			}
			m /= C
			for j := 0; j < C; j++ {
				d := float64(x[i*C+j]) - m
				v += d * d
			}
			v /= C
			for j := 0; j < C; j++ {
				want := (float64(x[i*C+j])-m)/math.Sqrt(v+LayerNormEps)*float64(l.W.Data[j]) + float64(l.B.Data[j])
				if d := math.Abs(float64(out[i*C+j]) - want); d > 1e-5 {
					t.Fatalf("row %d col %d: got %g want %g", i, j, out[i*C+j], want)
				}
			}
		}
		dOut := randn(r, n*C, 1)
		f := func() float64 { l.Forward(out, mean, rstd, x, n); return dot64(out, dOut) }
		f()
		dx := make([]float32, n*C)
		l.Backward(dx, dOut, x, mean, rstd, n)
		fdCheck(t, "LayerNorm dIn", x, dx, f, 1e-2, 5e-3)
		fdCheck(t, "LayerNorm dW", l.W.Data, l.W.Grad, f, 1e-2, 2e-3)
		fdCheck(t, "LayerNorm dB", l.B.Data, l.B.Grad, f, 1e-2, 2e-3)
	})
}

// ---- GELU and Residual ------------------------------------------------------

func TestGELU(t *testing.T) {
	withThreads(t, func(t *testing.T) {
		r := newRand(3)
		x := randn(r, 9000, 2.5) // above geluGrain, so the split runs
		x[0], x[1], x[2] = 0, 12, -12
		out := make([]float32, len(x))
		th := make([]float32, len(x))
		GELU{}.Forward(out, th, x)
		for i, v := range x {
			u := float64(v)
			want := 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
			if d := math.Abs(float64(out[i]) - want); d > 2e-6*(1+math.Abs(want)) {
				t.Fatalf("gelu(%g) = %g, want %g", v, out[i], want)
			}
		}
		out2 := make([]float32, len(x))
		GELU{}.Forward(out2, nil, x)
		if maxAbsDiff(out, out2) != 0 {
			t.Fatal("Forward with and without tanhU differ")
		}
		xs := x[:300]
		dOut := randn(r, len(xs), 1)
		o := out[:len(xs)]
		f := func() float64 { GELU{}.Forward(o, nil, xs); return dot64(o, dOut) }
		dx := make([]float32, len(xs))
		GELU{}.Backward(dx, dOut, xs, nil)
		fdCheck(t, "GELU dIn", xs, dx, f, 1e-2, 3e-3)
		dx2 := make([]float32, len(xs))
		GELU{}.Forward(o, th[:len(xs)], xs)
		GELU{}.Backward(dx2, dOut, xs, th[:len(xs)])
		var scale float64
		for _, v := range dx {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		if d := maxAbsDiff(dx, dx2); d > 1e-5*scale {
			t.Fatalf("Backward with stored tanhU differs from recomputing it by %g", d)
		}
	})
}

func TestResidual(t *testing.T) {
	r := newRand(4)
	a, b := randn(r, 50, 1), randn(r, 50, 1)
	out := make([]float32, 50)
	Residual{}.Forward(out, a, b)
	dOut := randn(r, 50, 1)
	f := func() float64 { Residual{}.Forward(out, a, b); return dot64(out, dOut) }
	da, db := make([]float32, 50), make([]float32, 50)
	Residual{}.Backward(da, db, dOut)
	fdCheck(t, "Residual dA", a, da, f, 0.25, 1e-3)
	fdCheck(t, "Residual dB", b, db, f, 0.25, 1e-3)
}

// ---- Embedding --------------------------------------------------------------

func TestEmbedding(t *testing.T) {
	withThreads(t, func(t *testing.T) {
		r := newRand(5)
		const V, maxT, C, B, T = 7, 9, 10, 3, 6
		e := &Embedding{Tok: randParam(r, "wte", 1, 0, V, C), Pos: randParam(r, "wpe", 1, 0, maxT, C)}
		ids := []int32{0, 1, 1, 6, 2, 1, 3, 3, 3, 0, 6, 6, 5, 1, 0, 0, 2, 3}
		out := make([]float32, B*T*C)
		e.Forward(out, ids, B, T)
		for i, id := range ids {
			for j := 0; j < C; j++ {
				if want := e.Tok.Data[int(id)*C+j] + e.Pos.Data[(i%T)*C+j]; out[i*C+j] != want {
					t.Fatalf("out[%d,%d] = %g, want %g", i, j, out[i*C+j], want)
				}
			}
		}
		dOut := randn(r, B*T*C, 1)
		f := func() float64 { e.Forward(out, ids, B, T); return dot64(out, dOut) }
		e.Backward(dOut, ids, B, T)
		// Token 4 never occurs and positions >= T are unused: their gradient is exactly 0.
		for j := 0; j < C; j++ {
			if e.Tok.Grad[4*C+j] != 0 {
				t.Fatalf("unused token row has gradient %g", e.Tok.Grad[4*C+j])
			}
		}
		for _, g := range e.Pos.Grad[T*C:] {
			if g != 0 {
				t.Fatalf("unused position row has gradient %g", g)
			}
		}
		fdCheck(t, "Embedding dTok", e.Tok.Data, e.Tok.Grad, f, 0.25, 1e-3)
		fdCheck(t, "Embedding dPos", e.Pos.Data, e.Pos.Grad, f, 0.25, 1e-3)
	})
}

// ---- Attention --------------------------------------------------------------

// naiveAttention is a float64 reference that materialises the masked scores.
func naiveAttention(qkv []float32, B, T, C, H int) []float32 {
	hs := C / H
	out := make([]float32, B*T*C)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			for t := 0; t < T; t++ {
				s := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					var d float64
					for c := 0; c < hs; c++ {
						d += float64(qkv[(b*T+t)*3*C+h*hs+c]) * float64(qkv[(b*T+j)*3*C+C+h*hs+c])
					}
					s[j] = d / math.Sqrt(float64(hs))
					mx = math.Max(mx, s[j])
				}
				var z float64
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					z += s[j]
				}
				for c := 0; c < hs; c++ {
					var y float64
					for j := range s {
						y += s[j] / z * float64(qkv[(b*T+j)*3*C+2*C+h*hs+c])
					}
					out[(b*T+t)*C+h*hs+c] = float32(y)
				}
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	withThreads(t, func(t *testing.T) {
		for _, block := range []int{0, 1, 3, 7} {
			r := newRand(6)
			const B, T, C, H = 2, 7, 12, 3
			a := &Attention{Heads: H, block: block}
			qkv := randn(r, B*T*3*C, 1)
			out := make([]float32, B*T*C)
			att := make([]float32, B*H*T*T)
			for i := range att {
				att[i] = float32(math.NaN()) // Forward must define every entry
			}
			a.Forward(out, att, qkv, B, T)
			if d := maxAbsDiff(out, naiveAttention(qkv, B, T, C, H)); d > 2e-6 {
				t.Fatalf("block %d: forward differs from naive by %g", block, d)
			}
			for bh := 0; bh < B*H; bh++ {
				for i := 0; i < T; i++ {
					var s float64
					for j := 0; j < T; j++ {
						p := att[(bh*T+i)*T+j]
						if j > i && p != 0 {
							t.Fatalf("att[%d,%d,%d] = %g above the diagonal", bh, i, j, p)
						}
						s += float64(p)
					}
					if math.Abs(s-1) > 1e-6 {
						t.Fatalf("attention row sums to %g", s)
					}
				}
			}
			dOut := randn(r, B*T*C, 1)
			f := func() float64 { a.Forward(out, att, qkv, B, T); return dot64(out, dOut) }
			f()
			dqkv := make([]float32, len(qkv))
			a.Backward(dqkv, dOut, qkv, att, B, T)
			fdCheck(t, "Attention dQKV", qkv, dqkv, f, 1e-2, 5e-3)
		}
	})
}

// ---- SoftmaxCrossEntropy ----------------------------------------------------

func TestSoftmaxCrossEntropy(t *testing.T) {
	withThreads(t, func(t *testing.T) {
		r := newRand(7)
		const V = 11
		targets := []int32{3, -1, 0, 10, 10, 5, -1, 2, 7, 1, 4, 9, 0, 6, 8, 3, 2, 1, 5, 4}
		n := len(targets)
		logits := randn(r, n*V, 2)
		logits[5*V+5] = 60 // a near-certain row
		probs := make([]float32, n*V)
		losses := make([]float32, n)
		SoftmaxCrossEntropy{}.Forward(probs, losses, logits, targets, V)
		for i, tg := range targets {
			row := logits[i*V : (i+1)*V]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v) - mx)
			}
			for j, v := range row {
				if d := math.Abs(float64(probs[i*V+j]) - math.Exp(float64(v)-mx)/z); d > 1e-6 {
					t.Fatalf("probs[%d,%d] off by %g", i, j, d)
				}
			}
			want := 0.0
			if tg >= 0 {
				want = math.Log(z) + mx - float64(row[tg])
			}
			if d := math.Abs(float64(losses[i]) - want); d > 1e-5*(1+want) {
				t.Fatalf("loss[%d] = %g, want %g", i, losses[i], want)
			}
		}
		// In place (probs aliasing logits) gives the same answer.
		inPlace := append([]float32(nil), logits...)
		l2 := make([]float32, n)
		SoftmaxCrossEntropy{}.Forward(inPlace, l2, inPlace, targets, V)
		if maxAbsDiff(inPlace, probs) != 0 || maxAbsDiff(l2, losses) != 0 {
			t.Fatal("in-place forward differs")
		}
		dLoss := randn(r, n, 1)
		dLoss[7] = 0
		f := func() float64 {
			SoftmaxCrossEntropy{}.Forward(probs, losses, logits, targets, V)
			return dot64(losses, dLoss)
		}
		f()
		dLogits := make([]float32, n*V)
		SoftmaxCrossEntropy{}.Backward(dLogits, dLoss, probs, targets, V)
		for j := 0; j < V; j++ {
			if dLogits[1*V+j] != 0 || dLogits[7*V+j] != 0 {
				t.Fatal("ignored or zero-weight rows received a gradient")
			}
		}
		fdCheck(t, "SoftmaxCrossEntropy dLogits", logits, dLogits, f, 1e-2, 5e-3)
	})
}

// TestLayersWithoutSIMD reruns the layers that use fastmath's kernels on the
// scalar path.
func TestLayersWithoutSIMD(t *testing.T) {
	if !fastmath.UseSIMD {
		t.Skip("the scalar path is the only one here")
	}
	fastmath.UseSIMD = false
	defer func() { fastmath.UseSIMD = true }()
	t.Run("GELU", TestGELU)
	t.Run("LayerNorm", TestLayerNorm)
	t.Run("Attention", TestAttention)
	t.Run("SoftmaxCrossEntropy", TestSoftmaxCrossEntropy)
}
