package train

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// comparable returns the parts of a summary that must be reproducible:
// the runs and aggregates without timings.
func comparable(t *testing.T, s *Summary) string {
	t.Helper()
	runs := append([]RunSummary(nil), s.Runs...)
	for i := range runs {
		runs[i].TokensPerS, runs[i].TrainS, runs[i].WallS = 0, 0, 0
	}
	b, err := json.Marshal(struct {
		Runs       []RunSummary
		Strategies map[string]*StrategyStats
		Noise      EvalNoise
		Seeds      []uint64
		Baseline   string
	}{runs, s.Strategies, s.EvalNoise, s.Seeds, s.Baseline})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSeeds checks a multi-seed run: each seed's runs equal a single-seed
// run with that seed exactly (so the strategies of a seed are paired: they
// share the split, noise, initialisation and batch order of that seed),
// the aggregates equal the hand computation from the runs, the final
// per-window evaluation reproduces the logged validation loss, and an
// interrupted and resumed multi-seed run gives the same outputs and
// summary as an uninterrupted one.
func TestSeeds(t *testing.T) {
	base := tinyConfig(t)
	base.Noise = 0.1
	base.CkptEvery = 6
	base.Compare = StrategyList{"uniform", "linupper"}
	multi := base
	multi.Seeds = SeedList{3, 7}
	sum, err := Run(context.Background(), multi, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Runs) != 4 || sum.Runs[0].Seed != 3 || sum.Runs[1].Seed != 3 || sum.Runs[2].Seed != 7 || sum.Runs[1].Strategy != "linupper" {
		t.Fatalf("runs %+v", sum.Runs)
	}
	for _, f := range sum.Files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("listed file: %v", err)
		}
	}

	// Each seed equals the single-seed run of that seed.
	for _, seed := range []uint64{3, 7} {
		one := base
		one.Seed = seed
		one.Out = filepath.Join(t.TempDir(), "one")
		s1, err := Run(context.Background(), one, Options{})
		if err != nil {
			t.Fatal(err)
		}
		sc := multi.forSeed(seed)
		sc.Compare = base.Compare
		compareRuns(t, readRun(t, one), readRun(t, sc))
		for i, r := range s1.Runs {
			m := sum.Runs[slicesIndexSeed(sum.Runs, seed)+i]
			if r.ValLoss != m.ValLoss || r.DeltaVsBaseline != m.DeltaVsBaseline || r.ValSE != m.ValSE || r.DeltaSE != m.DeltaSE {
				t.Errorf("seed %d %s: multi-seed run %+v differs from the single run %+v", seed, r.Strategy, m, r)
			}
		}
	}
	if sum.Runs[0].ValLoss == sum.Runs[2].ValLoss {
		t.Error("two seeds gave the same validation loss: the seed is not used")
	}

	// The aggregates, recomputed by hand from the runs (n = 2: t_{0.975,1} = 12.706205).
	u3, l3, u7, l7 := sum.Runs[0], sum.Runs[1], sum.Runs[2], sum.Runs[3]
	d3, d7 := float64(l3.ValLoss-u3.ValLoss), float64(l7.ValLoss-u7.ValLoss)
	st := sum.Strategies["linupper"]
	dm := (d3 + d7) / 2
	dsd := math.Abs(d3-d7) / math.Sqrt2
	h := 12.706205 * dsd / math.Sqrt2
	if st.NSeeds != 2 || !near(float64(st.DeltaMean), dm, 1e-12) || !near(float64(st.DeltaSD), dsd, 1e-12) ||
		!near(float64(st.DeltaCI95[0]), dm-h, 1e-6*max(h, 1e-3)) || !near(float64(st.DeltaCI95[1]), dm+h, 1e-6*max(h, 1e-3)) ||
		!near(float64(st.ValLossMean), float64(l3.ValLoss+l7.ValLoss)/2, 1e-12) {
		t.Errorf("linupper aggregate %+v; want delta %v ± %v, CI half-width %v", st, dm, dsd, h)
	}
	for _, d := range sum.Domains {
		want := (float64(l3.Val[d]-u3.Val[d]) + float64(l7.Val[d]-u7.Val[d])) / 2
		if got := st.Domains[d].DeltaMean; !near(float64(got), want, 1e-12) {
			t.Errorf("domain %s: delta mean %v, want %v", d, got, want)
		}
	}
	if en := sum.EvalNoise; !(en.ValSE > 0) || !(en.DeltaSE > 0) || !(en.DeltaSeedSD >= 0) || en.ValWindows == 0 {
		t.Errorf("eval noise %+v", en)
	}
	md, err := os.ReadFile(filepath.Join(multi.Out, summaryMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 seeds", "| linupper | ", "95% CI", "Evaluation noise", "minimum to their maximum"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}

	// The final per-window evaluation reproduces the logged loss exactly.
	sc := multi.forSeed(7)
	e, err := loadData(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	wl, err := evalWindows(sc, e, "linupper")
	if err != nil {
		t.Fatal(err)
	}
	var avg float64
	for d := range wl {
		v := wl.domainMean(d)
		if Float(v) != l7.Val[e.domains[d]] {
			t.Errorf("domain %s: window mean %v, logged %v", e.domains[d], v, l7.Val[e.domains[d]])
		}
		avg += v
	}
	if Float(avg/float64(len(wl))) != l7.ValLoss {
		t.Errorf("window average %v, logged %v", avg/float64(len(wl)), l7.ValLoss)
	}

	// Interrupted twice (at the boundary between the seeds, then in the
	// middle of the second seed's second strategy), resumed each time.
	c := multi
	c.Out = filepath.Join(t.TempDir(), "run")
	for _, stopAt := range []int{2 * base.Steps, 3*base.Steps + 5} {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		if stopAt == 2*base.Steps {
			_, err = Run(ctx, c, Options{OnStep: func(string, int) {
				if n++; n == stopAt {
					cancel()
				}
			}})
		} else {
			n = 2 * base.Steps // the first session took these steps
			_, err = Run(ctx, Config{Resume: c.Out}, Options{OnStep: func(string, int) {
				if n++; n == stopAt {
					cancel()
				}
			}})
		}
		cancel()
		if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "seed 7") || !strings.Contains(err.Error(), "resuming "+c.Out+" ") {
			t.Fatalf("stop at %d: got %v, want ErrInterrupted in seed 7 naming %s", stopAt, err, c.Out)
		}
	}
	got, err := Run(context.Background(), Config{Resume: c.Out}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{3, 7} {
		a, b := multi.forSeed(seed), c.forSeed(seed)
		compareRuns(t, readRun(t, a), readRun(t, b))
	}
	if a, b := comparable(t, sum), comparable(t, got); a != b {
		t.Errorf("resumed summary differs:\n got %s\nwant %s", b, a)
	}
}

func slicesIndexSeed(runs []RunSummary, seed uint64) int {
	for i, r := range runs {
		if r.Seed == seed {
			return i
		}
	}
	return -1
}

// TestPresets checks that a preset sets the paper's values, that keys
// given with it override it, and that an unknown preset or repeated seed
// is an error naming the key.
func TestPresets(t *testing.T) {
	c, keys, err := DefaultConfig().ParseJSON([]byte(`{"preset": "paper-extremes", "steps": 1500, "seeds": "1, 2,3"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Compare.String() != "uniform,extremes" || c.Schedule != "constant" || c.REnd != 0.4 || c.WarmupR != 1000 || c.Steps != 1500 ||
		c.Seeds.String() != "1,2,3" || c.Preset != "paper-extremes" {
		t.Errorf("paper-extremes + steps 1500: %+v (keys %v)", c, keys)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid preset config refused: %v", err)
	}
	rc := c.Reweighting("extremes")
	if rc.Schedule.Kind != "constant" || rc.Schedule.R != 0.4 || rc.Schedule.Warmup != 1000 {
		t.Errorf("paper-extremes schedule %+v", rc.Schedule)
	}
	q, err := DefaultConfig().WithPreset("paper-quadratic")
	if err != nil || q.Compare.String() != "uniform,quadratic" || q.REnd != 1 || q.WarmupR != 1000 || q.Validate() != nil {
		t.Errorf("paper-quadratic: %+v %v", q, err)
	}
	cp, err := DefaultConfig().WithPreset("capped")
	if err != nil || cp.Cap != 2 || cp.Validate() != nil {
		t.Errorf("capped: %+v %v", cp, err)
	}
	for _, p := range Presets() {
		pc, err := DefaultConfig().WithPreset(p.Name)
		if err != nil || pc.Validate() != nil {
			t.Errorf("preset %s: %v / %v", p.Name, err, pc.Validate())
		}
	}
	for _, bad := range []struct{ js, want string }{
		{`{"preset": "paper-nothing"}`, `preset = "paper-nothing"`},
		{`{"seeds": [1, 2, 1]}`, "seed 1 is listed twice"},
		{`{"seeds": "1,x"}`, `"x" is not a non-negative integer`},
		{`{"seeds": [-1]}`, "seeds"},
	} {
		c, _, err := DefaultConfig().ParseJSON([]byte(bad.js))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: got %v, want an error with %q", bad.js, err, bad.want)
		}
	}
}

// TestSeedsDataFormats runs a two-seed comparison on SlimPajama JSON Lines
// and on llm.c token files (GPT-2 tokens): the seeds, the split per seed and
// the summary do not depend on the format.
func TestSeedsDataFormats(t *testing.T) {
	dir := t.TempDir()
	// JSON Lines, two domains.
	var jl strings.Builder
	for i := range 400 {
		set := []string{"RedPajamaGithub", "RedPajamaArXiv"}[i%2]
		text := strings.Repeat(fmt.Sprintf("document %d of %s says %d. ", i, set, i*7%13), 6)
		b, _ := json.Marshal(map[string]any{"text": text, "meta": map[string]string{"redpajama_set_name": set}})
		jl.Write(append(b, '\n'))
	}
	jsonl := filepath.Join(dir, "sp.jsonl")
	if err := os.WriteFile(jsonl, []byte(jl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// llm.c .bin files, one domain each: documents of GPT-2 ids, each
	// starting with <|endoftext|>.
	bins := filepath.Join(dir, "bins")
	if err := os.MkdirAll(bins, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, name := range []string{"alpha.bin", "beta.bin"} {
		var toks []uint16
		for d := range 200 {
			toks = append(toks, 50256)
			for j := range 40 {
				toks = append(toks, uint16(100+(d*31+j*7+k*1000)%3000))
			}
		}
		b := make([]byte, 4*256+2*len(toks))
		binary.LittleEndian.PutUint32(b[0:], 20240520)
		binary.LittleEndian.PutUint32(b[4:], 1)
		binary.LittleEndian.PutUint32(b[8:], uint32(len(toks)))
		for i, v := range toks {
			binary.LittleEndian.PutUint16(b[4*256+2*i:], v)
		}
		if err := os.WriteFile(filepath.Join(bins, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct{ data, tok string }{{jsonl, "byte"}, {bins, "gpt2"}} {
		c := tinyConfig(t)
		c.Data, c.Tokenizer = f.data, f.tok
		c.Steps, c.EvalEvery, c.CkptEvery, c.ValMax = 4, 2, 2, 8
		if f.tok == "gpt2" { // a 50257-wide output layer: keep the batches small
			c.Batch, c.Seq = 4, 8
		}
		c.Compare = StrategyList{"uniform", "linupper"}
		c.Seeds = SeedList{1, 2}
		sum, err := Run(context.Background(), c, Options{})
		if err != nil {
			t.Fatalf("%s: %v", f.data, err)
		}
		st := sum.Strategies["linupper"]
		if len(sum.Runs) != 4 || st.NSeeds != 2 || len(st.DeltaCI95) != 2 || len(sum.Domains) != 2 || len(st.Domains) != 2 {
			t.Errorf("%s: runs %d, linupper %+v, domains %v", f.data, len(sum.Runs), st, sum.Domains)
		}
	}
}
