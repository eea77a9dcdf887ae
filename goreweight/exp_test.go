package goreweight

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpNegAccuracy checks the documented bound of expNeg against math.Exp
// on a dense grid, random points, and the edges of its domain.
func TestExpNegAccuracy(t *testing.T) {
	const bound = 2e-15
	check := func(x float64) {
		t.Helper()
		got, want := expNeg(x), math.Exp(x)
		if rel := math.Abs(got-want) / want; rel > bound {
			t.Fatalf("expNeg(%v) = %v, want %v (relative error %.3g > %g)", x, got, want, rel, bound)
		}
	}
	for i := 0; i <= 200000; i++ {
		check(-707 * float64(i) / 200000)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500000; i++ {
		check(-rng.Float64() * 707)
		check(-rng.Float64() * 1e-3) // near 0, where the table index wraps
	}
	for _, x := range []float64{0, -0.0, -1e-300, -math.SmallestNonzeroFloat64, -math.Ln2 / 128, -math.Ln2 / 64, -1, -103.3, -706.9999, expMin} {
		check(x)
	}
	for _, x := range []float64{-707.0001, -1000, math.Inf(-1)} {
		if got := expNeg(x); got != 0 {
			t.Fatalf("expNeg(%v) = %v, want 0 below the documented domain", x, got)
		}
	}
}

func BenchmarkExpNeg(b *testing.B) {
	xs := make([]float64, 4096)
	for i := range xs {
		xs[i] = -float64(i) / 100
	}
	var s float64
	for b.Loop() {
		for _, x := range xs {
			s += expNeg(x)
		}
	}
	_ = s
}

func BenchmarkMathExp(b *testing.B) {
	xs := make([]float64, 4096)
	for i := range xs {
		xs[i] = -float64(i) / 100
	}
	var s float64
	for b.Loop() {
		for _, x := range xs {
			s += math.Exp(x)
		}
	}
	_ = s
}
