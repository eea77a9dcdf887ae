package goreweight

import (
	"math"
	"math/rand/v2"
	"testing"
)

// logCapOracle is an independent float64 oracle of the capped weights,
// in log space: the log-weights g_i = score_i/r of the paper's formula
// (linupper), then log λ found by bisection so that Σ min(T, e^(log λ +
// g_i)) = 1. No exponential of a raw g_i is ever taken, so it holds for
// every r > 0.
func logCapOracle(losses []float64, r, capv float64) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range losses {
		lo, hi = math.Min(lo, l), math.Max(hi, l)
	}
	M := len(losses)
	g := make([]float64, M)
	gmax := math.Inf(-1)
	for i, l := range losses {
		x := 2*(l-lo)/(hi-lo) - 1 // delta = 1
		g[i] = math.Min(x+1, 1) / r
		gmax = math.Max(gmax, g[i])
	}
	T := capv / float64(M)
	total := func(ll float64) float64 {
		var s float64
		for _, v := range g {
			s += math.Min(T, math.Exp(ll+v))
		}
		return s
	}
	// total(a) < 1 <= total(b): at a every term is below T/(e·M), at b
	// every term is T and M·T >= 1.
	gmin := math.Inf(1)
	for _, v := range g {
		gmin = math.Min(gmin, v)
	}
	a, b := math.Log(T)-gmax-math.Log(float64(M))-1, math.Log(T)-gmin+1
	for range 200 {
		mid := (a + b) / 2
		if total(mid) < 1 {
			a = mid
		} else {
			b = mid
		}
	}
	w := make([]float64, M)
	for i, v := range g {
		w[i] = math.Min(T, math.Exp(b+v))
	}
	return w
}

// TestCapSmallR is issue 13 item 4: at small r the exponentials of a
// plain projection underflow and a feasible cap was called infeasible.
func TestCapSmallR(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 4))
	cases := []struct {
		M      int
		r, cap float64
		random bool
	}{
		{64, 0.001, 1.1, false}, {64, 1e-6, 1.1, false}, {64, 1e-300, 2, false}, {64, 0.05, 1.5, false},
		{1000, 1e-4, 1.01, true}, {333, 0.3, 3, true}, {50, 1e-9, 1.7, true},
	}
	for _, c := range cases {
		l32 := make([]float32, c.M)
		l64 := make([]float64, c.M)
		for i := range l32 {
			v := 2 + 2*float64(i)/float64(c.M-1) // linspace(2, 4, M)
			if c.random {
				v = 2 + rng.NormFloat64()
			}
			l32[i] = float32(v)
			l64[i] = float64(l32[i])
		}
		o := DefaultOptions()
		o.Cap = c.cap
		w, err := NewWeigher(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, pure := range []bool{false, true} {
			dst := make([]float32, c.M)
			run := func() { _, err = w.Weights(dst, l32, nil, c.r) }
			if pure {
				withPureGo(run)
			} else {
				run()
			}
			if err != nil {
				t.Fatalf("M=%d r=%v cap=%v: %v (the cap is feasible: every sample has a positive weight)", c.M, c.r, c.cap, err)
			}
			want := logCapOracle(l64, c.r, c.cap)
			var sum float64
			for i := range dst {
				sum += float64(dst[i])
				if d := math.Abs(float64(dst[i]) - want[i]); d > 1e-6*want[i]+1e-12 {
					t.Fatalf("M=%d r=%v cap=%v pure=%v: weight %d = %v, oracle %v", c.M, c.r, c.cap, pure, i, dst[i], want[i])
				}
				if float64(dst[i]) > c.cap/float64(c.M) {
					t.Fatalf("weight %d = %v above the cap %v", i, dst[i], c.cap/float64(c.M))
				}
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Fatalf("M=%d r=%v: weights sum to %v", c.M, c.r, sum)
			}
		}
	}
}

// TestCapOneIsUniform: cap = 1 allows only the uniform weights, exactly,
// at any temperature.
func TestCapOneIsUniform(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 9))
	for _, s := range []string{LinUpper, Quadratic, DROKL} {
		o := dflt(Options{Strategy: s, Cap: 1})
		w, _ := NewWeigher(o)
		for _, r := range []float64{10, 1, 1e-3, 1e-200} {
			l := randomBatch(rng, 37)
			dst := make([]float32, len(l))
			if _, err := w.Weights(dst, l, nil, r); err != nil {
				t.Fatalf("%s r=%v: %v", s, r, err)
			}
			for i := range dst {
				if dst[i] != dst[0] || math.Abs(float64(dst[i])*37-1) > 1e-6 {
					t.Fatalf("%s r=%v: weight %d = %v, weight 0 = %v: not uniform", s, r, i, dst[i], dst[0])
				}
			}
		}
	}
}
