package optim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

// TestAdamWKernelMatchesScalar checks that the kernel Step uses (AVX on
// amd64) gives bitwise the scalar float64 loop's data, m and v, for lengths
// that are and are not multiples of the vector width, over several steps.
func TestAdamWKernelMatchesScalar(t *testing.T) {
	if !nn.SIMD() {
		t.Log("no SIMD on this machine: adamwKernel is the scalar loop")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 3, 4, 7, 64, 1001} {
		mk := func() []float32 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			return x
		}
		data, m, v := mk(), mk(), mk()
		for i := range v {
			v[i] *= v[i] // second moments are non-negative
		}
		d2, m2, v2 := append([]float32(nil), data...), append([]float32(nil), m...), append([]float32(nil), v...)
		for step := 1; step <= 3; step++ {
			grad := mk()
			lr, b1, b2 := 1e-3*float64(step), 0.9, 0.95
			k := [8]float64{b1, 1 - b1, b2, 1 - b2, 1 - lr*0.1, lr / (1 - math.Pow(b1, float64(step))),
				math.Sqrt(1 - math.Pow(b2, float64(step))), 1e-8}
			adamwKernel(data, grad, m, v, &k)
			adamwScalar(d2, grad, m2, v2, &k)
			for i := range data {
				if math.Float32bits(data[i]) != math.Float32bits(d2[i]) || math.Float32bits(m[i]) != math.Float32bits(m2[i]) ||
					math.Float32bits(v[i]) != math.Float32bits(v2[i]) {
					t.Fatalf("n=%d step %d element %d: kernel (%g, %g, %g), scalar (%g, %g, %g)",
						n, step, i, data[i], m[i], v[i], d2[i], m2[i], v2[i])
				}
			}
		}
	}
}

// TestAdamWNonFiniteGradient checks that Step names the first non-finite
// gradient element, across the chunks the scan is split into, and changes
// nothing.
func TestAdamWNonFiniteGradient(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		old := nn.SetThreads(threads)
		n := 5 * grain
		p := &nn.Param{Name: "w", Shape: []int{n}, Data: make([]float32, n), Grad: make([]float32, n), Decay: true}
		for i := range p.Grad {
			p.Data[i], p.Grad[i] = 1, 0.5
		}
		p.Grad[4*grain+7] = float32(math.Inf(-1))
		p.Grad[3*grain+1] = float32(math.NaN())
		o, err := NewAdamW([]*nn.Param{p}, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		err = o.Step(1e-3)
		nn.SetThreads(old)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`"w"[%d]`, 3*grain+1)) {
			t.Fatalf("threads %d: Step error %v, want it to name w[%d]", threads, err, 3*grain+1)
		}
		if p.Data[0] != 1 || o.Steps() != 0 {
			t.Fatalf("threads %d: a rejected step changed the parameters or the step count", threads)
		}
	}
}
