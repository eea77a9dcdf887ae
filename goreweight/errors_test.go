package goreweight

import (
	"errors"
	"math"
	"testing"
)

// TestErrorClasses checks that every class of error the core returns is
// matched by errors.Is / errors.As, as the C ABI's statusOf and the
// Python exception classes rely on.
func TestErrorClasses(t *testing.T) {
	w, err := NewWeigher(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	_, err = w.Weights(nil, nil, nil, 1)
	if !errors.Is(err, ErrEmpty) || !errors.Is(err, ErrInvalid) || errors.Is(err, ErrNonFinite) {
		t.Fatalf("empty batch: %v", err)
	}
	_, err = w.Weights(make([]float32, 3), []float32{nan, nan, float32(math.Inf(1))}, nil, 1)
	var nf *NonFiniteError
	if !errors.Is(err, ErrNonFinite) || !errors.Is(err, ErrInvalid) || !errors.As(err, &nf) || nf.Count != 3 || nf.First != 0 || !nf.All {
		t.Fatalf("all non-finite: %v (%+v)", err, nf)
	}
	o := DefaultOptions()
	o.NonFinite = NonFiniteRaise
	wr, _ := NewWeigher(o)
	_, err = wr.Weights(make([]float32, 4), []float32{1, 2, nan, nan}, nil, 1)
	if !errors.As(err, &nf) || nf.Count != 2 || nf.First != 2 || nf.All || errors.Is(err, ErrEmpty) {
		t.Fatalf("raise: %v (%+v)", err, nf)
	}
	for name, err := range map[string]error{
		"r":         second(w.Weights(make([]float32, 2), []float32{1, 2}, nil, 0)),
		"length":    second(w.Weights(make([]float32, 1), []float32{1, 2}, nil, 1)),
		"domain id": second(w.Weights(make([]float32, 2), []float32{1, 2}, []int32{0, -1}, 1)),
		"lookup":    second(Lookup("nope")),
		"restore":   second(Restore([]byte(`{"version": 1, "capp": 2}`))),
		"step": func() error {
			rw, _ := New(Config{Options: DefaultOptions(), Schedule: Constant(1)})
			return rw.SetStep(-1)
		}(),
	} {
		var oe *OptionError
		if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrEmpty) || errors.Is(err, ErrNonFinite) || errors.As(err, &oe) {
			t.Errorf("%s: %v is not a plain ErrInvalid", name, err)
		}
	}
	var oe *OptionError
	err = Config{Options: DefaultOptions(), Schedule: Linear(1, 0, 10)}.Validate()
	if !errors.As(err, &oe) || oe.Key != "schedule.r_end" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("schedule: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }
