package train

import (
	"slices"
	"testing"
	"time"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/nn"
	"github.com/goreweight/goreweight/goreweight/trainer/optim"
)

// BenchmarkStep times one optimiser step (the Accum micro-batches'
// forwards, weights and backwards, clipping and AdamW) of the default
// model (2 layers, width 64, 4 heads, context 64, byte vocabulary) with 4
// micro-batches of 8 sequences, linupper, one thread, for several variants
// side by side: micro scope (the baseline), global scope (one extra
// forward per micro-batch without gradients), a reference model of the
// same size and a small one (1 layer, width 16), and token level in both
// scopes, and the deferred scope (the approximate global scope: no first
// pass, the accumulated gradient scaled by 1/Z) per sequence and per
// token. Each of the b.N rounds takes one step of every variant in turn,
// so that the load of a shared machine falls on all of them alike; it
// reports each variant's median and minimum milliseconds per step
// ("ms-med/<variant>", "ms-min/<variant>") and the minima's ratio to micro
// scope ("x/<variant>"; on a loaded machine the minima are the least
// disturbed figures).
//
//	go test ./goreweight/trainer/train/ -run '^$' -bench BenchmarkStep -benchtime 40x
func BenchmarkStep(b *testing.B) {
	old := nn.SetThreads(1)
	defer nn.SetThreads(old)
	base := tinyConfig(b)
	base.Batch, base.Accum, base.Seq = 8, 4, 64
	base.Layers, base.Heads, base.Width = 2, 4, 64
	base.Steps, base.WarmupR = 1000, 0
	refOf := func(gc gpt.Config) func() *reference {
		return func() *reference {
			m, err := gpt.New(gc, 3)
			if err != nil {
				b.Fatal(err)
			}
			return &reference{model: m}
		}
	}
	variants := []struct {
		name, scope, gran string
		ref               func() *reference
	}{
		{"micro", ScopeMicro, GranularitySequence, nil},
		{"global", ScopeGlobal, GranularitySequence, nil},
		{"micro+ref-same", ScopeMicro, GranularitySequence, refOf(gpt.Config{Vocab: 256, Seq: 64, Layers: 2, Heads: 4, Width: 64})},
		{"micro+ref-small", ScopeMicro, GranularitySequence, refOf(gpt.Config{Vocab: 256, Seq: 64, Layers: 1, Heads: 2, Width: 16})},
		{"global+ref-same", ScopeGlobal, GranularitySequence, refOf(gpt.Config{Vocab: 256, Seq: 64, Layers: 2, Heads: 4, Width: 64})},
		{"micro-token", ScopeMicro, GranularityToken, nil},
		{"global-token", ScopeGlobal, GranularityToken, nil},
		{"deferred", ScopeDeferred, GranularitySequence, nil},
		{"deferred-token", ScopeDeferred, GranularityToken, nil},
	}
	trainers := make([]*trainer, len(variants))
	for i, v := range variants {
		c := base
		c.Scope, c.Granularity = v.scope, v.gran
		var ref *reference
		if v.ref != nil {
			ref = v.ref()
		}
		trainers[i] = scopeTrainer(b, c, goreweight.LinUpper, ref, 100)
	}
	step := func(tr *trainer) {
		if _, err := tr.accumulate(); err != nil {
			b.Fatal(err)
		}
		optim.ClipGradNorm(tr.params, tr.cfg.Clip)
		if err := tr.st.opt.Step(1e-3); err != nil {
			b.Fatal(err)
		}
		tr.step++
	}
	for _, tr := range trainers { // warm the buffers
		step(tr)
	}
	times := make([][]float64, len(variants))
	b.ResetTimer()
	for range b.N {
		for i, tr := range trainers {
			t0 := time.Now()
			step(tr)
			times[i] = append(times[i], float64(time.Since(t0).Microseconds())/1e3)
		}
	}
	b.StopTimer()
	med := func(x []float64) float64 {
		s := slices.Clone(x)
		slices.Sort(s)
		return s[len(s)/2]
	}
	base0 := slices.Min(times[0])
	for i, v := range variants {
		b.ReportMetric(med(times[i]), "ms-med/"+v.name)
		b.ReportMetric(slices.Min(times[i]), "ms-min/"+v.name)
		if i > 0 {
			b.ReportMetric(slices.Min(times[i])/base0, "x/"+v.name)
		}
	}
	b.ReportMetric(0, "ns/op")
}
