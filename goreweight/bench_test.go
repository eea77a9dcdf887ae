package goreweight

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkWeights reports ns per element for the paper's default
// (linupper, delta 1) at the sizes the benchmarks compare against PyTorch.
// Pure PyTorch takes about 85 us at M = 128 and 2.6 ns/element at M = 1M on
// the project's 2-core machines.
func BenchmarkWeights(b *testing.B) {
	for _, s := range []string{LinUpper, Quadratic} {
		for _, M := range []int{128, 1024, 16384, 262144, 1048576} {
			b.Run(fmt.Sprintf("%s/M=%d", s, M), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, uint64(M)))
				l := make([]float32, M)
				for i := range l {
					l[i] = float32(2 + rng.NormFloat64())
				}
				dst := make([]float32, M)
				w, _ := NewWeigher(dflt(Options{Strategy: s}))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := w.Weights(dst, l, nil, 0.5); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(M), "ns/elem")
			})
		}
	}
}
