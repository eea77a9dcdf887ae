package train

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/optim"
)

// writeCorpus writes a small two-domain text corpus into dir and returns
// its path: "alpha" is sentences over a small vocabulary, "beta" arithmetic
// lines. Both are learnable by a tiny model within a few dozen steps.
func writeCorpus(t testing.TB, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "corpus")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	words := []string{"the", "model", "learns", "a", "weight", "for", "each", "sample", "and", "loss", "is", "low", "high"}
	var a, b strings.Builder
	for a.Len() < 24<<10 {
		n := 4 + r.IntN(6)
		for i := range n {
			if i > 0 {
				a.WriteByte(' ')
			}
			a.WriteString(words[r.IntN(len(words))])
		}
		a.WriteString(".\n")
		if r.IntN(6) == 0 {
			a.WriteString("\n")
		}
	}
	for b.Len() < 24<<10 {
		x, y := r.IntN(50), r.IntN(50)
		fmt.Fprintf(&b, "%d + %d = %d\n", x, y, x+y)
		if r.IntN(8) == 0 {
			b.WriteString("\n")
		}
	}
	for name, s := range map[string]string{"alpha.txt": a.String(), "beta.txt": b.String()} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// tinyConfig returns a configuration that trains in well under a second.
func tinyConfig(t testing.TB) Config {
	dir := t.TempDir()
	c := DefaultConfig()
	c.Seeds = nil
	c.Data = writeCorpus(t, dir)
	c.Steps = 12
	c.Batch = 8
	c.Seq = 16
	c.Layers = 1
	c.Heads = 2
	c.Width = 16
	c.LR = 1e-2
	c.LRMin = 1e-3
	c.LRWarmup = 2
	c.WarmupR = 2
	c.REnd = 0.5
	c.EvalEvery = 4
	c.CkptEvery = 4
	c.ValMax = 16
	c.Threads = 2
	c.Quiet = true
	c.Out = filepath.Join(dir, "run")
	return c
}

// runOutput is everything a run leaves that must be reproducible.
type runOutput struct {
	records []Record
	samples map[string]*sampleRows
	model   map[string][]byte // checkpoint model.safetensors per strategy
	adamw   map[string][]byte
}

func readRun(t *testing.T, c Config) runOutput {
	t.Helper()
	recs, err := readRecords(filepath.Join(c.Out, metricsName))
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs { // timings are not reproducible
		recs[i].TokensPerS, recs[i].ElapsedS = 0, 0
	}
	o := runOutput{records: recs, samples: map[string]*sampleRows{}, model: map[string][]byte{}, adamw: map[string][]byte{}}
	for _, s := range c.Strategies() {
		sr, err := readSampleLog(filepath.Join(c.Out, s, samplesName), domainsOf(recs))
		if err != nil {
			t.Fatal(err)
		}
		o.samples[s] = sr
		z, err := zip.OpenReader(filepath.Join(c.Out, s, checkpointName))
		if err != nil {
			t.Fatal(err)
		}
		if o.model[s], err = readEntry(&z.Reader, checkpointModel); err != nil {
			t.Fatal(err)
		}
		if o.adamw[s], err = readEntry(&z.Reader, checkpointAdamW); err != nil {
			t.Fatal(err)
		}
		z.Close()
	}
	return o
}

// domainsOf returns the sorted domain names of the validation records.
func domainsOf(recs []Record) []string {
	var d []string
	for k := range recs[0].Val {
		d = append(d, k)
	}
	slices.Sort(d)
	return d
}

func compareRuns(t *testing.T, want, got runOutput) {
	t.Helper()
	if len(want.records) != len(got.records) {
		t.Fatalf("metrics: %d records, want %d", len(got.records), len(want.records))
	}
	for i := range want.records {
		a, b := fmt.Sprintf("%+v", jsonOf(t, want.records[i])), fmt.Sprintf("%+v", jsonOf(t, got.records[i]))
		if a != b {
			t.Fatalf("metrics record %d differs:\n got %s\nwant %s", i, b, a)
		}
	}
	for s := range want.model {
		if !bytes.Equal(want.model[s], got.model[s]) {
			t.Errorf("%s: final parameters differ", s)
		}
		if !bytes.Equal(want.adamw[s], got.adamw[s]) {
			t.Errorf("%s: final AdamW state differs", s)
		}
		ws, gs := want.samples[s], got.samples[s]
		if !slices.Equal(ws.step, gs.step) || !slices.Equal(ws.id, gs.id) || !slices.Equal(ws.domain, gs.domain) ||
			!slices.Equal(ws.kind, gs.kind) || !slices.Equal(ws.loss, gs.loss) || !slices.Equal(ws.weight, gs.weight) {
			t.Errorf("%s: sample logs differ (%d vs %d rows)", s, gs.len(), ws.len())
		}
	}
}

func jsonOf(t *testing.T, r Record) string {
	var b bytes.Buffer
	if err := writeRecords(&b, []Record{r}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestResumeEqualsUninterrupted interrupts runs in two ways, resumes them
// and checks that parameters, optimiser state, metrics and sample logs
// equal those of an uninterrupted run exactly.
func TestResumeEqualsUninterrupted(t *testing.T) {
	base := tinyConfig(t)
	base.Noise = 0.1
	base.CkptEvery = 6 // evaluations (every 4) flush logs past the checkpoints
	base.Compare = StrategyList{"uniform", "linupper"}
	ref := base
	if _, err := Run(context.Background(), ref, Options{}); err != nil {
		t.Fatal(err)
	}
	want := readRun(t, ref)
	if n := len(want.records); n != 2*(base.Steps+1) {
		t.Fatalf("%d records, want %d", n, 2*(base.Steps+1))
	}

	t.Run("signal", func(t *testing.T) {
		// Ctrl-C during the first strategy, between checkpoints: the run
		// checkpoints where it stops.
		c := base
		c.Out = filepath.Join(t.TempDir(), "run")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := Run(ctx, c, Options{OnStep: func(s string, step int) {
			if s == "uniform" && step == 7 {
				cancel()
			}
		}})
		if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "step 7/12") {
			t.Fatalf("got %v, want ErrInterrupted at step 7", err)
		}
		r := Config{Resume: c.Out}
		if _, err := Run(context.Background(), r, Options{}); err != nil {
			t.Fatal(err)
		}
		compareRuns(t, want, readRun(t, c))
	})

	t.Run("kill", func(t *testing.T) {
		// A hard kill after step 9 of the second strategy: the directory as
		// it was then (last checkpoint at step 6, logs up to step 8) is
		// resumed.
		c := base
		c.Out = filepath.Join(t.TempDir(), "run")
		snap := filepath.Join(t.TempDir(), "snapshot")
		if _, err := Run(context.Background(), c, Options{OnStep: func(s string, step int) {
			if s == "linupper" && step == 9 {
				if err := os.CopyFS(snap, os.DirFS(c.Out)); err != nil {
					t.Error(err)
				}
			}
		}}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(snap, "linupper", checkpointName)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(snap, summaryMD)); err == nil {
			t.Fatal("snapshot already has the summary")
		}
		if recs, err := readRecords(filepath.Join(snap, metricsName)); err != nil || recs[len(recs)-1].Step != 8 {
			t.Fatalf("snapshot's metrics should run past the checkpoint (step 6) to step 8: %v", err)
		}
		r := Config{Resume: snap, Threads: 2}
		if _, err := Run(context.Background(), r, Options{}); err != nil {
			t.Fatal(err)
		}
		c.Out = snap
		compareRuns(t, want, readRun(t, c))

		// Resuming a finished run changes nothing.
		if _, err := Run(context.Background(), Config{Resume: snap}, Options{}); err != nil {
			t.Fatal(err)
		}
		compareRuns(t, want, readRun(t, c))
	})
}

// TestUniformEqualsPlainMean checks that the uniform strategy is training
// on the plain mean loss: a hand-written loop calling Backward with
// weights 1/B gives bitwise the same parameters.
func TestUniformEqualsPlainMean(t *testing.T) {
	c := tinyConfig(t)
	c.Strategy = "uniform"
	c.Steps = 6
	if _, err := Run(context.Background(), c, Options{}); err != nil {
		t.Fatal(err)
	}
	got := readRun(t, c).model["uniform"]

	e, err := loadData(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gpt.New(gpt.Config{Vocab: 256, Seq: c.Seq, Layers: c.Layers, Heads: c.Heads, Width: c.Width}, c.Seed)
	if err != nil {
		t.Fatal(err)
	}
	oc := optim.DefaultConfig()
	oc.WeightDecay = c.WeightDecay
	opt, err := optim.NewAdamW(m.Params(), oc)
	if err != nil {
		t.Fatal(err)
	}
	it := e.ds.NewIterator()
	w := make([]float32, c.Batch)
	for i := range w {
		w[i] = 1 / float32(c.Batch)
	}
	for step := range c.Steps {
		b := it.Next(c.Batch)
		if _, err := m.Forward(b.Tokens, b.Targets, c.Batch, c.Seq); err != nil {
			t.Fatal(err)
		}
		m.ZeroGrad()
		if err := m.Backward(w); err != nil {
			t.Fatal(err)
		}
		optim.ClipGradNorm(m.Params(), c.Clip)
		if err := opt.Step(optim.LR(step, c.LRWarmup, c.Steps, c.LR, c.LRMin)); err != nil {
			t.Fatal(err)
		}
	}
	var want bytes.Buffer
	if err := m.SaveParams(&want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("uniform run differs from plain-mean training")
	}
}

// TestValidationLossFalls trains 30 steps and expects the validation loss
// of both strategies to fall well below the initial ln(256)-ish level.
func TestValidationLossFalls(t *testing.T) {
	c := tinyConfig(t)
	c.Steps = 30
	c.EvalEvery = 10
	sum, err := Run(context.Background(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := readRun(t, c).records
	for _, r := range sum.Runs {
		var first, last *Record
		for i := range recs {
			if recs[i].Strategy == r.Strategy && recs[i].ValLoss != nil {
				if first == nil {
					first = &recs[i]
				}
				last = &recs[i]
			}
		}
		if first.Step != 0 || last.Step != 30 {
			t.Fatalf("%s: evaluations at steps %d..%d, want 0..30", r.Strategy, first.Step, last.Step)
		}
		f, l := float64(*first.ValLoss), float64(*last.ValLoss)
		t.Logf("%s: val loss %.4f -> %.4f", r.Strategy, f, l)
		if !(l < f-1) {
			t.Errorf("%s: validation loss %.4f -> %.4f did not fall by 1 nat", r.Strategy, f, l)
		}
		if r.ValLoss != *last.ValLoss {
			t.Errorf("%s: summary val loss %v, last record %v", r.Strategy, r.ValLoss, *last.ValLoss)
		}
	}
}

// TestOutputs checks the sample log's columns and rows (with pyarrow too,
// when it is installed), the summary and the plots of a comparison.
func TestOutputs(t *testing.T) {
	c := tinyConfig(t)
	c.Noise = 0.2
	c.Compare = StrategyList{"uniform", "linupper", "quadratic"}
	sum, err := Run(context.Background(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sum.Files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("listed file: %v", err)
		}
	}
	ents, _ := os.ReadDir(c.Out)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}

	// Sample log.
	for _, s := range c.Compare {
		path := filepath.Join(c.Out, s, samplesName)
		sr, err := readSampleLog(path, []string{"alpha", "beta"})
		if err != nil {
			t.Fatal(err)
		}
		if sr.len() != c.Steps*c.Batch {
			t.Fatalf("%s: %d rows, want %d", s, sr.len(), c.Steps*c.Batch)
		}
		sums := map[int64]float64{}
		noise := 0
		for i := range sr.len() {
			sums[sr.step[i]] += float64(sr.weight[i])
			if sr.kind[i] == 2 {
				noise++
			}
			if !(sr.loss[i] > 0) {
				t.Fatalf("%s row %d: loss %v", s, i, sr.loss[i])
			}
		}
		for step := int64(1); step <= int64(c.Steps); step++ {
			if math.Abs(sums[step]-1) > 1e-5 {
				t.Fatalf("%s step %d: weights sum to %v", s, step, sums[step])
			}
		}
		if noise == 0 {
			t.Errorf("%s: no noise samples logged with noise 0.2", s)
		}
		if s == "uniform" {
			for i, w := range sr.weight {
				if w != 1/float32(c.Batch) {
					t.Fatalf("uniform row %d: weight %v, want exactly 1/%d", i, w, c.Batch)
				}
			}
		}
	}
	if py, err := exec.LookPath("python3"); err == nil {
		script := `import sys, pyarrow as pa
t = pa.ipc.open_file(sys.argv[1]).read_all()
assert t.column_names == ["step", "sample_id", "domain", "kind", "loss", "weight"], t.column_names
assert [str(f.type) for f in t.schema] == ["int64", "int64", "string", "string", "float", "float"], t.schema
print(t.num_rows)`
		out, err := exec.Command(py, "-c", script, filepath.Join(c.Out, "linupper", samplesName)).CombinedOutput()
		switch {
		case err != nil && strings.Contains(string(out), "No module named 'pyarrow'"):
			t.Log("pyarrow not installed: skipping the pyarrow check")
		case err != nil:
			t.Fatalf("pyarrow cannot read the sample log: %v\n%s", err, out)
		case strings.TrimSpace(string(out)) != fmt.Sprint(c.Steps*c.Batch):
			t.Fatalf("pyarrow reads %s rows, want %d", out, c.Steps*c.Batch)
		}
	}

	// Summary.
	md, err := os.ReadFile(filepath.Join(c.Out, summaryMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| uniform | ", "| linupper | ", "| quadratic | ", "alpha", "beta", "reached uniform's final at step"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
	if sum.Baseline != "uniform" || len(sum.Runs) != 3 || sum.Runs[0].StepToBaseline == nil || *sum.Runs[0].StepToBaseline != c.Steps {
		t.Errorf("summary: baseline %q, runs %+v", sum.Baseline, sum.Runs)
	}

	// Plots: valid PNGs of a readable size.
	for _, name := range []string{plotValLoss, plotTemp, plotWeightVL} {
		f, err := os.Open(filepath.Join(c.Out, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
			t.Errorf("%s is %v", name, b)
		}
	}
}

// TestAtomicWrite checks that a failed write leaves the old file intact
// and no temporary file, and that a damaged checkpoint is refused with a
// clear error.
func TestAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, checkpointName)
	if err := writeFileAtomic(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	err := writeAtomic(path, func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("new"), 1<<20)) // more than the buffer: part reaches the file
		return errors.New("disk on fire")
	})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("got %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("file changed to %d bytes", len(b))
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}

	// A real checkpoint, truncated, is refused.
	c := tinyConfig(t)
	c.Strategy = "linupper"
	c.Steps = 2
	c.WarmupR = 0
	if _, err := Run(context.Background(), c, Options{}); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(c.Out, "linupper", checkpointName)
	b, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ck, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Config{Resume: c.Out}, Options{})
	if err == nil || !strings.Contains(err.Error(), "checkpoint") || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("truncated checkpoint: got %v", err)
	}
	// A flipped byte in the parameters fails the CRC.
	b2 := slices.Clone(b)
	b2[len(b2)/2] ^= 0xff
	if err := os.WriteFile(ck, b2, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = Run(context.Background(), Config{Resume: c.Out}, Options{}); err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("corrupt checkpoint: got %v", err)
	}
}

// TestConfigErrors checks that bad configurations fail with messages
// naming the key.
func TestConfigErrors(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Steps = 0 }, "steps = 0"},
		{func(c *Config) { c.Batch = -1 }, "batch = -1"},
		{func(c *Config) { c.Tokenizer = "bpe" }, `tokenizer = "bpe"`},
		{func(c *Config) { c.Strategy = "linuper" }, `unknown strategy "linuper"`},
		{func(c *Config) { c.Strategy = "uniform"; c.Compare = StrategyList{"linupper"} }, "not both"},
		{func(c *Config) { c.Compare = StrategyList{"uniform", "uniform"} }, "listed twice"},
		{func(c *Config) { c.Schedule = "zigzag" }, `unknown schedule kind "zigzag"`},
		{func(c *Config) { c.REnd = 0 }, "r_end"},
		{func(c *Config) { c.Cap = 0.5 }, "cap"},
		{func(c *Config) { c.Width = 30 }, "width = 30: must be a multiple of heads (4)"},
		{func(c *Config) { c.LR = math.NaN() }, "lr = NaN"},
		{func(c *Config) { c.LRMin = 1 }, "lr_min = 1: must not exceed lr"},
		{func(c *Config) { c.Noise = 1 }, "noise = 1"},
		{func(c *Config) { c.ValFraction = 0 }, "val_fraction = 0"},
		{func(c *Config) { c.WarmupR = 1000 }, "warmup_r = 1000: must be less than steps"},
		{func(c *Config) { c.Strategy = "topk" }, "needs q"},
		{func(c *Config) { c.Data = "" }, "data"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
	for _, tc := range []struct{ json, want string }{
		{`{"stepz": 3}`, `unknown config key "stepz"`},
		{`{"steps": "many"}`, `config key "steps"`},
		{`{"steps": 3, "steps": 4}`, ``},
		{`{"r-start": 3, "r_start": 4}`, `sets "r_start" twice`},
		{`[1]`, "not a JSON object"},
		{`{"compare": 3}`, "compare must be a list"},
	} {
		_, _, err := DefaultConfig().ParseJSON([]byte(tc.json))
		if tc.want == "" {
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.json, err, tc.want)
		}
	}
	c, keys, err := DefaultConfig().ParseJSON([]byte(`{"r-start": 50, "compare": "uniform, quadratic", "--steps": 7}`))
	if err != nil || c.RStart != 50 || c.Steps != 7 || !slices.Equal(c.Compare, StrategyList{"uniform", "quadratic"}) || !slices.Equal(keys, []string{"compare", "r_start", "steps"}) {
		t.Fatalf("ParseJSON: %+v %v %v", c, keys, err)
	}

	// Run refuses a used out directory, and resuming with a changed key.
	tc := tinyConfig(t)
	tc.Strategy = "uniform"
	tc.Steps = 1
	tc.WarmupR = 0
	if _, err := Run(context.Background(), tc, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), tc, Options{}); err == nil || !strings.Contains(err.Error(), "already holds a run") {
		t.Errorf("reused out: got %v", err)
	}
	if _, err := ResumeConfig(tc.Out, Config{LR: 1}, []string{"lr"}); err == nil || !strings.Contains(err.Error(), "lr = 1 differs") {
		t.Errorf("resume with another lr: got %v", err)
	}
	if _, err := ResumeConfig(t.TempDir(), Config{}, nil); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("resume of a non-run: got %v", err)
	}
	bad := tinyConfig(t)
	bad.Data = filepath.Join(t.TempDir(), "missing")
	if _, err := Run(context.Background(), bad, Options{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing data: got %v", err)
	}
	if _, err := os.Stat(bad.Out); err == nil {
		t.Errorf("a run that could not load its data left %s behind", bad.Out)
	}
}
