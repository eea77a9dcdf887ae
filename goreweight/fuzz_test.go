package goreweight

import (
	"encoding/binary"
	"math"
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
		for _, v := range []float64{st.MaxWM, st.MinWM, st.ESS, st.Entropy, st.Weighted} {
			if math.IsNaN(v) {
				t.Fatalf("NaN in stats %+v", st)
			}
		}
	})
}
