package goreweight

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refScore is the paper's score of a normalised loss x in [-d, d], written
// independently of strategy.go (method.md, step 2).
func refScore(name string, x, d float64) float64 {
	switch name {
	case Uniform:
		return 0
	case LinUpper:
		return math.Min(x+d, d)
	case Quadratic:
		return 1 - x*x/(d*d)
	case Extremes:
		return math.Abs(x)
	case DROKL:
		return x
	}
	panic("no reference score for " + name)
}

// refRange is the range of refScore over [-d, d], by hand.
func refRange(name string, d float64) (lo, hi float64) {
	switch name {
	case Uniform:
		return 0, 0
	case LinUpper, Extremes:
		return 0, d
	case Quadratic:
		return 0, 1
	case DROKL:
		return -d, d
	}
	panic("no reference range for " + name)
}

var scoringBuiltins = []string{Uniform, LinUpper, Quadratic, Extremes, DROKL}

// TestBuiltinScoresMatchReference checks every built-in's Score, the
// formula every path derives from, against the paper's formula, and its
// range against a hand-computed one (ScoreRange and a dense grid).
func TestBuiltinScoresMatchReference(t *testing.T) {
	if len(builtins) != len(scoringBuiltins) {
		t.Fatalf("%d built-in scoring strategies, the test knows %d", len(builtins), len(scoringBuiltins))
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, name := range scoringBuiltins {
		s, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []float64{1, 0.25, 3, 1e-3} {
			x := []float64{-d, d, 0, -d / 2, d / 2}
			for range 200 {
				x = append(x, (2*rng.Float64()-1)*d)
			}
			got := make([]float64, len(x))
			s.Score(got, x, d)
			lo, hi := math.Inf(1), math.Inf(-1)
			for i, v := range x {
				want := refScore(name, v, d)
				if math.Abs(got[i]-want) > 1e-15*(1+math.Abs(want)) {
					t.Fatalf("%s δ=%v: Score(%v) = %v, want %v", name, d, v, got[i], want)
				}
				lo, hi = min(lo, got[i]), max(hi, got[i])
			}
			rlo, rhi := refRange(name, d)
			glo, ghi, ok := ScoreRange(name, d)
			if !ok || glo != rlo || ghi != rhi {
				t.Fatalf("%s δ=%v: ScoreRange = [%v, %v] ok=%v, want [%v, %v]", name, d, glo, ghi, ok, rlo, rhi)
			}
			if lo != rlo || hi != rhi { // the grid holds -δ, 0 and δ, where the ends are attained
				t.Fatalf("%s δ=%v: scores span [%v, %v], want [%v, %v]", name, d, lo, hi, rlo, rhi)
			}
		}
	}
	for _, name := range []string{TopK, Truncate, "nope"} {
		if _, _, ok := ScoreRange(name, 1); ok {
			t.Fatalf("ScoreRange(%q) ok, want false (no score range)", name)
		}
	}
	if _, _, ok := ScoreRange(LinUpper, 0); ok {
		t.Fatal("ScoreRange(linupper, δ=0) ok, want false")
	}
}

// TestKernelFoldMatchesScore emulates the vector kernel's three shapes in
// float64 with the constants each built-in's kernel field gives, and
// checks the exponent against (Score(x) - sup)/r: a change to a formula
// that its fold does not follow fails here, on any CPU.
func TestKernelFoldMatchesScore(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, b := range builtins {
		if b.kernel == nil {
			continue
		}
		for _, d := range []float64{1, 0.3, 4} {
			for _, r := range []float64{1, 0.1, 7} {
				lmin, spread := 1.5, 2.5
				sc, invR := 2*d/spread, 1/r
				shape, A, B, C := b.kernel(sc, invR, d)
				for range 300 {
					q := rng.Float64() * spread
					x := q*sc - d
					s := []float64{0}
					b.score(s, []float64{x}, d)
					want := (s[0] - b.hi(d)) * invR
					u := q*A + B
					var z float64
					switch shape {
					case shapeMin:
						z = min(u, C)
					case shapeQuad:
						z = C - u*(u*invR)
					case shapeAbs:
						z = min(math.Abs(u)+C, 0)
					default:
						t.Fatalf("%s: unknown kernel shape %d", b.name, shape)
					}
					if math.Abs(z-want) > 1e-12*(1+math.Abs(want)) {
						t.Fatalf("%s δ=%v r=%v l=%v: folded exponent %v, want %v", b.name, d, r, lmin+q, z, want)
					}
				}
			}
		}
	}
}
