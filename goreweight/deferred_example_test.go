package goreweight_test

import (
	"fmt"

	"github.com/goreweight/goreweight/goreweight"
)

// The deferred global scope over one optimizer step of two micro-batches:
// the unnormalised weights u per micro-batch (backpropagate Σ u·l), then
// the scale 1/Z for the accumulated gradients. By hand: with r = 1 and the
// range [1, 3], linupper gives u = e^(min(x, 0)) for x = l - 2, so u = e^-1
// for l = 1 and 1 for l >= 2; Z = 3 + e^-1 and 1/Z = 0.2969.
func ExampleDeferred() {
	cfg := goreweight.DefaultDeferredConfig()
	cfg.Schedule = goreweight.Constant(1)
	d, err := goreweight.NewDeferred(cfg)
	if err != nil {
		panic(err)
	}
	if err := d.SetRange(1, 3); err != nil { // e.g. the previous step's min/max
		panic(err)
	}
	u0, u1 := make([]float32, 2), make([]float32, 2)
	d.Micro(u0, []float32{1, 2})
	d.Micro(u1, []float32{3, 4}) // 4 lies outside the range: clipped
	st, err := d.Finish(nil)     // under data parallelism: Finish(every rank's Sums())
	if err != nil {
		panic(err)
	}
	fmt.Printf("u = %.4f, scale 1/Z = %.4f, clipped %d\n", append(u0, u1...), st.Scale, st.Clipped)
	lo, hi, _ := d.Range()
	fmt.Printf("next step: range [%g, %g], step %d\n", lo, hi, d.Step())
	// Output:
	// u = [0.3679 1.0000 1.0000 1.0000], scale 1/Z = 0.2969, clipped 1
	// next step: range [1, 4], step 1
}
