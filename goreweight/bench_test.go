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

// BenchmarkWeightsMasked reports ns per entry (counted or not) for a dense
// token batch with 10% of the entries masked (scattered at random, or
// padding at the end of 1024-token sequences), with and without a
// reference loss, at the ends of the sizes of benchmarks/bench_token.py;
// ns/elem is per dense entry.
func BenchmarkWeightsMasked(b *testing.B) {
	for _, c := range []struct {
		mask string
		ref  bool
	}{{"scattered", false}, {"scattered", true}, {"padded", false}} {
		for _, M := range []int{1 << 17, 1 << 20} {
			b.Run(fmt.Sprintf("mask=%s/ref=%v/M=%d", c.mask, c.ref, M), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, uint64(M)))
				mb := MaskedBatch{Losses: make([]float32, M), Mask: make([]uint8, M)}
				pad := 0
				for i := range mb.Losses {
					mb.Losses[i] = float32(2 + rng.NormFloat64())
					if i%1024 == 0 {
						pad = 1024 - rng.IntN(205) // sequences of 1024 tokens, ~10% padding at the end
					}
					if c.mask == "scattered" && rng.Float64() >= 0.1 || c.mask == "padded" && i%1024 < pad {
						mb.Mask[i] = 1
					}
				}
				if c.ref {
					mb.Reference = make([]float32, M)
					for i := range mb.Reference {
						mb.Reference[i] = float32(rng.NormFloat64())
					}
				}
				dst := make([]float32, M)
				w, _ := NewWeigher(dflt(Options{}))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := w.WeightsMasked(dst, mb, 0.5); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(M), "ns/elem")
			})
		}
	}
}
