package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randn(r *rand.Rand, n int, std float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * std)
	}
	return x
}

// TestKernelsMatchScalar compares the SIMD kernels (when this machine has
// them) with the scalar code and with float64 math, including tails that are
// not a multiple of 8 and special values.
func TestKernelsMatchScalar(t *testing.T) {
	if !UseSIMD {
		t.Skip("no SIMD kernels on this machine/build")
	}
	restoreSIMD(t)
	r := rand.New(rand.NewPCG(11, 1))
	for _, n := range []int{1, 7, 8, 9, 64, 1000, 1029} {
		x := randn(r, n, 3)
		x[0] = 0
		if n > 3 {
			x[1], x[2], x[3] = 20, -20, 1e-6
		}
		outS, thS := make([]float32, n), make([]float32, n)
		outV, thV := make([]float32, n), make([]float32, n)
		UseSIMD = false
		GELUForward(outS, thS, x)
		UseSIMD = true
		GELUForward(outV, thV, x)
		for i, v := range x {
			u := float64(v)
			want := 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
			if d := math.Abs(float64(outV[i]) - want); d > 2e-6*(1+math.Abs(want)) {
				t.Fatalf("n=%d: SIMD gelu(%g) = %g, want %g", n, v, outV[i], want)
			}
			if d := math.Abs(float64(thV[i] - thS[i])); d > 1e-6 {
				t.Fatalf("n=%d: SIMD tanh %g vs scalar %g at x=%g", n, thV[i], thS[i], v)
			}
		}

		shift := float32(2.5)
		eS, eV := append([]float32(nil), x...), append([]float32(nil), x...)
		eV[0] = -100 + shift // below the cut-off: exactly 0
		eS[0] = eV[0]
		UseSIMD = false
		sumS := ExpSum(eS, shift)
		UseSIMD = true
		sumV := ExpSum(eV, shift)
		var want float64
		for i := range x {
			w := math.Exp(float64(eS[0]) - float64(shift))
			if i > 0 {
				w = math.Exp(float64(x[i]) - float64(shift))
			}
			if i == 0 {
				w = 0
			}
			if rel := math.Abs(float64(eV[i])-w) / math.Max(w, 1e-30); rel > 1e-6 && w != 0 {
				t.Fatalf("n=%d: SIMD exp(%g) = %g, want %g", n, x[i]-shift, eV[i], w)
			}
			want += w
		}
		if eV[0] != 0 {
			t.Fatalf("SIMD exp below the cut-off = %g, want 0", eV[0])
		}
		if rel := math.Abs(float64(sumV)-want) / want; rel > 1e-5 {
			t.Fatalf("n=%d: SIMD sum %g, want %g", n, sumV, want)
		}
		if rel := math.Abs(float64(sumS)-want) / want; rel > 1e-5 {
			t.Fatalf("n=%d: scalar sum %g, want %g", n, sumS, want)
		}
	}
	nan := []float32{1, 2, float32(math.NaN()), 0, 0, 0, 0, 0}
	if s := ExpSum(nan, 0); !math.IsNaN(float64(s)) || !math.IsNaN(float64(nan[2])) {
		t.Fatalf("NaN input: sum %g, element %g; NaN must propagate", s, nan[2])
	}
}

func TestGELUBackwardMatchesScalar(t *testing.T) {
	if !UseSIMD {
		t.Skip("no SIMD kernels on this machine/build")
	}
	restoreSIMD(t)
	r := rand.New(rand.NewPCG(12, 1))
	for _, n := range []int{3, 8, 13, 1000} {
		x, d := randn(r, n, 3), randn(r, n, 1)
		out, th := make([]float32, n), make([]float32, n)
		GELUForward(out, th, x)
		base := randn(r, n, 1)
		dS, dV := append([]float32(nil), base...), append([]float32(nil), base...)
		UseSIMD = false
		GELUBackward(dS, d, x, th)
		UseSIMD = true
		GELUBackward(dV, d, x, th)
		for i := range x {
			if diff := math.Abs(float64(dS[i] - dV[i])); diff > 1e-6*(1+math.Abs(float64(dS[i]))) {
				t.Fatalf("n=%d i=%d: SIMD %g, scalar %g", n, i, dV[i], dS[i])
			}
		}
	}
}

// restoreSIMD puts UseSIMD back to its value at the start of the test, so
// a test that switches the kernels off leaves no trace on the next one.
func restoreSIMD(t *testing.T) {
	orig := UseSIMD
	t.Cleanup(func() { UseSIMD = orig })
}
