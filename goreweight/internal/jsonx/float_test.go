package jsonx

import (
	"encoding/json"
	"math"
	"testing"
)

func TestFloatRoundTrip(t *testing.T) {
	for _, c := range []struct {
		v    float64
		js   string
		back float64
	}{{1.5, "1.5", 1.5}, {0.1, "0.1", 0.1}, {-3e-300, "-3e-300", -3e-300}, {math.NaN(), "null", math.NaN()},
		{math.Inf(1), "null", math.NaN()}, {math.Inf(-1), "null", math.NaN()}} {
		b, err := json.Marshal(Float(c.v))
		if err != nil || string(b) != c.js {
			t.Fatalf("Marshal(%v) = %s, %v; want %s", c.v, b, err, c.js)
		}
		var f Float
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if got := float64(f); got != c.back && !(math.IsNaN(got) && math.IsNaN(c.back)) {
			t.Fatalf("%s reads back as %v, want %v", b, got, c.back)
		}
		if f.Valid() != !math.IsNaN(c.back) {
			t.Fatalf("Valid(%v) = %v", f, f.Valid())
		}
	}
	var f Float
	if err := json.Unmarshal([]byte(`"x"`), &f); err == nil {
		t.Fatal("a string read as a number")
	}
}
