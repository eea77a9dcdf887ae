package fastmath

import (
	"math"
	"testing"
)

func TestExpfAccuracy(t *testing.T) {
	worst := 0.0
	for x := -87.29; x <= 88; x += 0.0137 {
		got := float64(Expf(float32(x)))
		want := math.Exp(float64(float32(x)))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 5e-7 {
		t.Fatalf("expf worst relative error %g > 5e-7", worst)
	}
	if Expf(-100) != 0 || !math.IsInf(float64(Expf(100)), 1) || !math.IsNaN(float64(Expf(float32(math.NaN())))) {
		t.Fatalf("expf edge cases: exp(-100)=%g exp(100)=%g", Expf(-100), Expf(100))
	}
}

func TestTanhfAccuracy(t *testing.T) {
	worst := 0.0
	for x := -12.0; x <= 12; x += 0.00113 {
		got := float64(Tanhf(float32(x)))
		want := math.Tanh(float64(float32(x)))
		if d := math.Abs(got - want); d > worst {
			worst = d
		}
	}
	if worst > 1e-6 {
		t.Fatalf("tanhf worst absolute error %g > 1e-6", worst)
	}
	for _, x := range []float64{1e-5, -3e-4, 5e-4, 0.01} {
		got := float64(Tanhf(float32(x)))
		if rel := math.Abs(got-math.Tanh(x)) / math.Tanh(math.Abs(x)); rel > 1e-6 {
			t.Errorf("Tanhf(%g) relative error %g", x, rel)
		}
	}
}
