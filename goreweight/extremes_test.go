package goreweight

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unsafe"
)

// TestExtremeDeltaAndR is issue 13 item 7: a delta so large that 2·delta
// (or 2·delta/spread) overflows, and an r so small that 1/r does, give
// either correct weights or an error naming the argument, never NaN.
func TestExtremeDeltaAndR(t *testing.T) {
	check := func(name string, dst []float32) {
		t.Helper()
		var sum float64
		for i, v := range dst {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("%s: weight %d = %v", name, i, v)
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Fatalf("%s: weights sum to %v", name, sum)
		}
	}
	// Subnormal float32 losses: the spread is 1e-40, so 2·delta/spread
	// overflows for delta > 1e268 while delta itself is fine.
	tiny := []float32{1e-40, 2e-40, 3e-40, 1.5e-40}
	for _, s := range []string{LinUpper, Quadratic, Extremes, DROKL} {
		for _, d := range []float64{1, 1e280, MaxDelta} {
			o := dflt(Options{Strategy: s, Delta: d})
			w, err := NewWeigher(o)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []float64{d, 1, MinR} {
				for _, pure := range []bool{false, true} {
					dst := make([]float32, len(tiny))
					run := func() { _, err = w.Weights(dst, tiny, nil, r) }
					if pure {
						withPureGo(run)
					} else {
						run()
					}
					if err != nil {
						t.Fatalf("%s δ=%v r=%v: %v", s, d, r, err)
					}
					check(s, dst)
					if s == LinUpper && r == d {
						// delta/r = 1: the weights are the delta = 1, r = 1 ones.
						w1, _ := NewWeigher(dflt(Options{Strategy: s}))
						want := make([]float32, len(tiny))
						if _, err := w1.Weights(want, tiny, nil, 1); err != nil {
							t.Fatal(err)
						}
						for i := range want {
							if math.Abs(float64(dst[i]-want[i])) > 1e-6*float64(want[i]) {
								t.Fatalf("δ=r=%v: weights %v, want %v (δ=r=1)", d, dst, want)
							}
						}
					}
				}
			}
		}
	}
	for _, d := range []float64{2 * MaxDelta, math.MaxFloat64, math.Inf(1)} {
		var oe *OptionError
		if _, err := NewWeigher(dflt(Options{Delta: d})); !errors.As(err, &oe) || oe.Key != "delta" {
			t.Fatalf("delta %v: %v, want an OptionError naming delta", d, err)
		}
	}
	w, _ := NewWeigher(DefaultOptions())
	for _, r := range []float64{5e-309, 1e-320, math.SmallestNonzeroFloat64} {
		_, err := w.Weights(make([]float32, 3), []float32{1, 2, 3}, nil, r)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "temperature r") {
			t.Fatalf("r=%v: %v, want an error naming r", r, err)
		}
		if err := Constant(r).Validate(); err == nil || !strings.Contains(err.Error(), "schedule r") {
			t.Fatalf("schedule r=%v: %v", r, err)
		}
	}
}

// TestStepsNearTheLimit: schedules are defined up to the largest step, and
// the step counter refuses to wrap.
func TestStepsNearTheLimit(t *testing.T) {
	const top = math.MaxInt64
	for _, s := range []Schedule{Constant(2), Linear(10, 1, 100), Cosine(10, 1, 100), Exponential(10, 1, 100),
		StepSchedule([]int64{5, top - 1}, []float64{4, 3, 2}), Linear(10, 1, top).WithWarmup(top - 1)} {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		for _, step := range []int64{top - 1, top} {
			r := s.At(step)
			if !(r > 0) || math.IsNaN(r) || (s.Warmup == 0 && math.IsInf(r, 0)) {
				t.Fatalf("%+v at step %d: r = %v", s, step, r)
			}
		}
	}
	if r := Linear(10, 1, top).At(top - 1); math.Abs(r-1) > 1e-9 {
		t.Fatalf("linear over 2^63-1 steps at the end: r = %v, want ~1", r)
	}
	rw, _ := New(Config{Options: DefaultOptions(), Schedule: Constant(1)})
	if err := rw.SetStep(top); err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Weights(make([]float32, 2), []float32{1, 2}, nil); !errors.Is(err, ErrInvalid) || rw.Step() != top {
		t.Fatalf("weights at the largest step: %v, step now %d", err, rw.Step())
	}
}

// TestHugeBatchRefused: a batch longer than MaxBatch is refused before any
// of it is read (the slices below point at 4 bytes).
func TestHugeBatchRefused(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("32-bit int")
	}
	var x [1]float32
	huge := unsafe.Slice(&x[0], MaxBatch+1)
	w, _ := NewWeigher(DefaultOptions())
	if _, err := w.Weights(huge, huge, nil, 1); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("batch of %d: %v", len(huge), err)
	}
}
