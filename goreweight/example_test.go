package goreweight_test

import (
	"errors"
	"fmt"

	"github.com/goreweight/goreweight/goreweight"
)

// One training step's weights, the way a training loop uses them: the
// per-sample losses of the global batch go in, weights that sum to 1 come
// out, and the loss to back-propagate is Σ w_i·l_i with w constant.
func ExampleReweighter() {
	rw, err := goreweight.New(goreweight.Config{
		Options:  goreweight.DefaultOptions(), // linupper, delta 1, no cap
		Schedule: goreweight.Linear(100, 1, 1000).WithWarmup(10),
	})
	if err != nil {
		panic(err)
	}
	if err := rw.SetStep(1010); err != nil { // past warm-up and anneal: r = 1
		panic(err)
	}
	losses := []float32{1, 2, 3, 4, 5}
	w := make([]float32, len(losses))
	st, err := rw.Weights(w, losses, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("r = %v\n", st.R)
	fmt.Printf("weights = %.4f\n", w)
	fmt.Printf("max w·M = %.3f, ESS = %.2f of %d\n", st.MaxWM, st.ESS, st.M)
	fmt.Printf("loss = %.4f (unweighted mean %.1f)\n", st.Weighted, st.LossMean)
	// Output:
	// r = 1
	// weights = [0.0926 0.1526 0.2516 0.2516 0.2516]
	// max w·M = 1.258, ESS = 4.51 of 5
	// loss = 3.4171 (unweighted mean 3.0)
}

// The two schedules of the authors' public code.
func ExampleSchedule() {
	burnIn := goreweight.Constant(0.4).WithWarmup(1000)
	fsdp := goreweight.StepSchedule([]int64{2000}, []float64{100, 0.4})
	for _, step := range []int64{0, 999, 1000, 1999, 2000} {
		fmt.Println(step, burnIn.At(step), fsdp.At(step))
	}
	// Output:
	// 0 +Inf 100
	// 999 +Inf 100
	// 1000 0.4 100
	// 1999 0.4 100
	// 2000 0.4 0.4
}

// A Weigher has fixed options and takes the temperature per call; its
// scratch memory is reused, so steady-state calls allocate nothing.
func ExampleWeigher() {
	opts := goreweight.DefaultOptions()
	opts.Strategy = goreweight.Quadratic
	opts.Cap = 1.5 // no weight above 1.5/M
	w, err := goreweight.NewWeigher(opts)
	if err != nil {
		panic(err)
	}
	losses := []float32{1, 2, 3, 4, 5}
	dst := make([]float32, len(losses))
	st, err := w.Weights(dst, losses, nil, 0.5)
	if err != nil {
		panic(err)
	}
	fmt.Printf("weights = %.4f\n", dst)
	fmt.Printf("capped %d, max w·M = %.3f\n", st.Capped, st.MaxWM)
	// Output:
	// weights = [0.0638 0.2862 0.3000 0.2862 0.0638]
	// capped 1, max w·M = 1.500
}

// Errors are values: branch on the class, not on the message.
func ExampleOptionError() {
	opts := goreweight.DefaultOptions()
	opts.Delta = 0
	_, err := goreweight.NewWeigher(opts)
	var oe *goreweight.OptionError
	fmt.Println(errors.As(err, &oe), oe.Key, errors.Is(err, goreweight.ErrInvalid))
	// Output:
	// true delta true
}

// The score range of each built-in strategy at delta = 1, e.g. for the
// worst-case weight bound MaxWeightBound(M, hi-lo, r).
func ExampleScoreRange() {
	for _, s := range []string{goreweight.LinUpper, goreweight.Quadratic, goreweight.DROKL, goreweight.TopK} {
		lo, hi, ok := goreweight.ScoreRange(s, 1)
		fmt.Println(s, lo, hi, ok)
	}
	// Output:
	// linupper 0 1 true
	// quadratic 0 1 true
	// dro-kl -1 1 true
	// topk 0 0 false
}

// Saving and restoring a run: the state is the configuration and the step,
// and a restored Reweighter continues exactly where the saved one stopped.
func ExampleRestore() {
	cfg := goreweight.DefaultConfig()
	cfg.Schedule = goreweight.Linear(10, 1, 100)
	rw, err := goreweight.New(cfg)
	if err != nil {
		panic(err)
	}
	_ = rw.SetStep(50)
	state, err := rw.State()
	if err != nil {
		panic(err)
	}
	back, err := goreweight.Restore(state)
	if err != nil {
		panic(err)
	}
	fmt.Println(back.Step(), back.R())
	// A damaged state is refused, not loaded with defaults.
	_, err = goreweight.Restore([]byte(`{"version": 1, "config": {"strategy": "linupper", "delta": 0}}`))
	fmt.Println(errors.Is(err, goreweight.ErrInvalid))
	// Output:
	// 50 5.5
	// true
}
