package goreweight

import (
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"testing"
)

// FuzzWeights feeds arbitrary float32 batches to every strategy: no panic,
// and either an error or finite, non-negative weights summing to 1.
func FuzzWeights(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64}, uint8(1), 1.0, 0.0)
	f.Add([]byte{0, 0, 192, 127, 0, 0, 128, 127, 0, 0, 128, 255}, uint8(2), 0.01, 2.0)
	f.Add([]byte{1, 0, 0, 0, 255, 255, 127, 127}, uint8(3), 1e-30, 1.0)
	f.Fuzz(func(t *testing.T, raw []byte, strategy uint8, r, capv float64) {
		l := make([]float32, len(raw)/4)
		for i := range l {
			l[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		o := optsFor(allBuiltins[int(strategy)%len(allBuiltins)])
		if capv >= 1 && capv < 1e6 {
			o.Cap = capv
		}
		w, err := NewWeigher(o)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, len(l))
		st, err := w.Weights(dst, l, nil, r)
		if err != nil {
			return
		}
		checkSimplex(t, dst, l)
		for _, v := range []float64{st.MaxWM, st.MinWM, st.ESS, st.Entropy, st.Weighted} {
			if math.IsNaN(v) {
				t.Fatalf("NaN in stats %+v", st)
			}
		}
	})
}

// FuzzWeightsDomains adds arbitrary domain ids, domain multipliers and
// delta: no panic, a bounded allocation (scratch is O(M) whatever the
// ids), and either an error or weights summing to 1.
func FuzzWeightsDomains(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64}, []byte{0, 0, 0, 0, 255, 255, 255, 127, 1, 0, 0, 0}, uint8(1), 1.0, 0.5, 0.0, false)
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64}, []byte{3, 0, 0, 0, 0, 0, 0, 0}, uint8(5), 1e300, 1e-3, 2.0, true)
	f.Fuzz(func(t *testing.T, raw, rawDom []byte, strategy uint8, delta, r, capv float64, mult bool) {
		l := make([]float32, len(raw)/4)
		for i := range l {
			l[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		var dom []int32
		if len(rawDom) >= 4*len(l) && len(l) > 0 {
			dom = make([]int32, len(l))
			for i := range dom {
				dom[i] = int32(binary.LittleEndian.Uint32(rawDom[4*i:]))
			}
		}
		o := optsFor(allBuiltins[int(strategy)%len(allBuiltins)])
		o.Delta = delta
		if capv >= 1 && capv < 1e6 {
			o.Cap = capv
		}
		if mult {
			o.DomainMultipliers = []float64{1, 0.5, 2, 0}
		}
		w, err := NewWeigher(o)
		if err != nil {
			return
		}
		dst := make([]float32, len(l))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = w.Weights(dst, l, dom, r)
		runtime.ReadMemStats(&after)
		if a := after.TotalAlloc - before.TotalAlloc; a > uint64(1<<16+512*len(l)) {
			t.Fatalf("%d bytes allocated for %d samples", a, len(l))
		}
		if err != nil {
			return
		}
		checkSimplex(t, dst, l)
	})
}

// FuzzRestore feeds arbitrary bytes as a saved Reweighter state: no panic,
// and a state that loads is valid, saves again and reloads to the same.
func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"version":1,"config":{"strategy":"linupper","delta":1,"nonfinite":"zero","schedule":{"kind":"constant","r":1}},"step":3}`))
	f.Add([]byte(`{"version":1,"config":{"strategy":"topk","delta":1,"nonfinite":"raise","q":0.5,"cap":2,"schedule":{"kind":"step","boundaries":[2],"values":[10,1],"warmup":1}},"step":9223372036854775807}`))
	f.Add([]byte(`{"version":1,"config":{"strategy":"linupper","delta":0,"capp":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rw, err := Restore(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if err := rw.Config().Validate(); err != nil {
			t.Fatalf("restored an invalid config: %v", err)
		}
		st, err := rw.State()
		if err != nil {
			t.Fatal(err)
		}
		rw2, err := Restore(st)
		if err != nil {
			t.Fatalf("a saved state does not reload: %v\n%s", err, st)
		}
		if st2, _ := rw2.State(); string(st2) != string(st) {
			t.Fatalf("state changed on reload:\n%s\n%s", st, st2)
		}
		dst := make([]float32, 3)
		_, _ = rw.Weights(dst, []float32{1, 2, 3}, nil)
	})
}

// checkSimplex fails t unless dst (the weights of losses l) are finite,
// non-negative and sum to 1 within float32 rounding.
func checkSimplex(t *testing.T, dst, l []float32) {
	t.Helper()
	var sum float64
	for i, v := range dst {
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			t.Fatalf("weight %d = %v for loss %v", i, v, l[i])
		}
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-4 {
		t.Fatalf("weights sum to %v", sum)
	}
}
