package gpt

import (
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

// benchStep times one training step's model work (Forward, ZeroGrad,
// Backward with weights 1/B) and reports tokens per second and the CPU time
// per step. Run with, e.g.,
//
//	go test -run '^$' -bench Step -benchtime 20x ./goreweight/gpt/
//	go test -tags openblas -run '^$' -bench Step -benchtime 20x ./goreweight/gpt/
func benchStep(b *testing.B, cfg Config, B int) {
	m, err := New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	T := cfg.Seq
	tokens, targets := randBatch(1, cfg.Vocab, B, T)
	w := make([]float32, B)
	for i := range w {
		w[i] = 1 / float32(B)
	}
	step := func() {
		if _, err := m.Forward(tokens, targets, B, T); err != nil {
			b.Fatal(err)
		}
		m.ZeroGrad()
		if err := m.Backward(w); err != nil {
			b.Fatal(err)
		}
	}
	step() // size the buffers
	b.Logf("backend %s, %d threads, %d params", nn.Backend(), nn.Threads(), m.NumParams())
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPUTime()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.ReportMetric(float64(B*T)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	if cpu := processCPUTime() - cpu0; cpu > 0 {
		// CPU time per step: on a busy machine wall time varies, this less so.
		b.ReportMetric(cpu.Seconds()*1e3/float64(b.N), "cpu-ms/op")
	}
}

// BenchmarkStepSmall: byte vocab, 4 layers, 4 heads, width 128, seq 128, batch 16.
func BenchmarkStepSmall(b *testing.B) {
	benchStep(b, Config{Vocab: 256, Seq: 128, Layers: 4, Heads: 4, Width: 128}, 16)
}

// BenchmarkStepMedium: byte vocab, 6 layers, 6 heads, width 384, seq 256, batch 8.
func BenchmarkStepMedium(b *testing.B) {
	benchStep(b, Config{Vocab: 256, Seq: 256, Layers: 6, Heads: 6, Width: 384}, 8)
}
