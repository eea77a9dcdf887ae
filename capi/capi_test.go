package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/data"
	"github.com/goreweight/goreweight/goreweight/trainer/tensorfile"
	"github.com/goreweight/goreweight/goreweight/trainer/train"
)

// rawBatch points a batch at Go slices (tests only: the C side passes C memory).
func rawBatch(losses []float32, domains []int32, out []float32) batch {
	b := batch{losses: unsafe.Pointer(unsafe.SliceData(losses)), out: unsafe.Pointer(unsafe.SliceData(out)), n: int64(len(losses))}
	if domains != nil {
		b.domains = unsafe.Pointer(unsafe.SliceData(domains))
	}
	return b
}

func TestWeigherForwardsToTheCore(t *testing.T) {
	losses := []float32{1, 2, 3, 4, float32(math.NaN()), 0.5, 7}
	domains := []int32{0, 1, 0, 1, 0, 2, 2}
	for _, opts := range []string{`{}`, `{"strategy": "quadratic", "cap": 1.5}`, `{"strategy": "topk", "q": 0.5}`,
		`{"strategy": "extremes", "delta": 2, "domain_multipliers": [1, 0.5, 2]}`} {
		h, err := weigherNew(opts)
		if err != nil {
			t.Fatalf("%s: %v", opts, err)
		}
		o := goreweight.DefaultOptions()
		if err := json.Unmarshal([]byte(opts), &o); err != nil {
			t.Fatal(err)
		}
		w, err := goreweight.NewWeigher(o)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, len(losses))
		st, err := w.Weights(want, losses, domains, 0.7)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(losses))
		res, err := weigherWeights(h, 0.7, rawBatch(losses, domains, got), true)
		if err != nil {
			t.Fatalf("%s: %v", opts, err)
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: weight %d = %v, core gives %v", opts, i, got[i], want[i])
			}
		}
		if res.nonFinite != 1 {
			t.Errorf("%s: nonfinite = %d, want 1", opts, res.nonFinite)
		}
		if string(res.stats) != string(flatJSON(st)) {
			t.Errorf("%s: stats %s, core gives %s", opts, res.stats, flatJSON(st))
		}
		if err := closeHandle(h); err != nil {
			t.Fatal(err)
		}
	}
}

func TestErrorsNameTheProblem(t *testing.T) {
	h, err := weigherNew(`{"strategy": "linupper"}`)
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(h)
	rw, err := reweighterNew(`{"schedule": {"kind": "constant", "r": 1}}`)
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(rw)
	l := []float32{1, 2, 3}
	out := make([]float32, 3)
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"released arrow", third(importArrowLosses(unsafe.Pointer(&cdata.CArrowSchema{}), unsafe.Pointer(&cdata.CArrowArray{}), new([]float32))), "already released"},
		{"unknown field", second(weigherNew(`{"strategy": "linupper", "detla": 1}`)), `unknown field "detla"`},
		{"trailing data", second(weigherNew(`{} {}`)), "after the value"},
		{"bad json", second(weigherNew(`{`)), "options JSON"},
		{"bad strategy", second(weigherNew(`{"strategy": "x"}`)), `unknown strategy "x"`},
		{"bad delta", second(weigherNew(`{"delta": -1}`)), "delta"},
		{"zero delta", second(weigherNew(`{"delta": 0}`)), "delta must be a finite number in (0, 1e+300], got 0"},
		{"zero delta in config", second(reweighterNew(`{"delta": 0, "schedule": {"kind": "constant", "r": 1}}`)), "delta must be"},
		{"empty strategy", second(weigherNew(`{"strategy": ""}`)), "strategy is empty"},
		{"empty nonfinite", second(weigherNew(`{"nonfinite": ""}`)), "nonfinite must be"},
		{"no schedule", second(reweighterNew(`{}`)), "schedule kind is missing"},
		{"null losses", second(weigherWeights(h, 1, batch{out: unsafe.Pointer(&out[0]), n: 3}, false)), "losses is NULL"},
		{"null out", second(weigherWeights(h, 1, batch{losses: unsafe.Pointer(&l[0]), n: 3}, false)), "weights_out is NULL"},
		{"empty", second(weigherWeights(h, 1, rawBatch(l[:0], nil, out[:0]), false)), "empty batch"},
		{"negative n", second(weigherWeights(h, 1, batch{losses: unsafe.Pointer(&l[0]), out: unsafe.Pointer(&out[0]), n: -1}, false)), ">= 1"},
		{"overlap", second(weigherWeights(h, 1, rawBatch(l, nil, l), false)), "overlaps losses"},
		{"bad r", second(weigherWeights(h, 0, rawBatch(l, nil, out), false)), "temperature r"},
		{"wrong kind", second(reweighterWeights(h, rawBatch(l, nil, out), false)), "is a weigher, not a reweighter"},
		{"closed", second(weigherWeights(1<<60, 1, rawBatch(l, nil, out), false)), "unknown or closed"},
		{"bad step", reweighterSetStep(rw, -2), "step must be >= 0"},
		{"bad state", reweighterLoadState(rw, `{"version": 7}`), "state version 7"},
		{"bad schedule", second(scheduleAt(`{"kind": "linear", "r_start": 1, "r_end": 2}`, 0)), "steps >= 1"},
		{"negative step", second(scheduleAt(`{"kind": "constant", "r": 1}`, -1)), "step must be >= 0"},
		{"bad bound", second(maxWeightBound(0, 1, 1)), "m must be >= 1"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, c.err, c.want)
		}
		want := statusInvalid
		if c.name == "empty" {
			want = statusEmpty
		}
		if got := statusOf(c.err); got != want || !errors.Is(c.err, goreweight.ErrInvalid) {
			t.Errorf("%s: status %d (Is ErrInvalid: %v), want %d", c.name, got, errors.Is(c.err, goreweight.ErrInvalid), want)
		}
	}
}

// TestStatusPerClass checks statusOf, the one mapping from Go errors to C
// status codes, for every class of the error contract.
func TestStatusPerClass(t *testing.T) {
	raise, err := weigherNew(`{"nonfinite": "raise"}`)
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(raise)
	nan := float32(math.NaN())
	l := []float32{1, nan, 3}
	out := make([]float32, 3)
	_, statErr := os.Stat(filepath.Join(t.TempDir(), "missing"))
	badJSONL := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(badJSONL, []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"ok", nil, statusOK},
		{"invalid", second(weigherNew(`{"delta": 0}`)), statusInvalid},
		{"internal", internalError{"boom"}, statusInternal},
		{"empty", second(weigherWeights(raise, 1, rawBatch(l[:0], nil, out[:0]), false)), statusEmpty},
		{"nonfinite", second(weigherWeights(raise, 1, rawBatch(l, nil, out), false)), statusNonFinite},
		{"interrupted", fmt.Errorf("%w at step 3", train.ErrInterrupted), statusInterrupt},
		{"io", fmt.Errorf("reading the corpus: %w", statErr), statusIO},
		{"corrupt checkpoint", second(tensorfile.Decode([]byte("not a tensor file"))), statusIO},
		{"bad data file", second(data.ReadJSONL(badJSONL)), statusIO},
		{"unclassified", errors.New("something else"), statusInvalid},
	}
	for _, c := range cases {
		if got := statusOf(c.err); got != c.want {
			t.Errorf("%s: statusOf(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

func TestReweighterStateAndStats(t *testing.T) {
	h, err := reweighterNew(`{"strategy": "linupper", "schedule": {"kind": "linear", "r_start": 10, "r_end": 1, "steps": 4, "warmup": 1}}`)
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(h)
	if b, _ := reweighterStats(h); string(b) != "{}" {
		t.Errorf("stats before the first call = %s, want {}", b)
	}
	l := []float32{1, 2, 3, 5}
	out := make([]float32, 4)
	if _, err := reweighterWeights(h, rawBatch(l, nil, out), false); err != nil {
		t.Fatal(err)
	}
	b, _ := reweighterStats(h)
	if !strings.Contains(string(b), `"r": Infinity`) || !strings.Contains(string(b), `"uniform": 1`) {
		t.Errorf("warm-up stats = %s", b)
	}
	state, err := reweighterState(h)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := reweighterRestore(string(state))
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(h2)
	for k := 0; k < 5; k++ {
		a, b := make([]float32, 4), make([]float32, 4)
		if _, err := reweighterWeights(h, rawBatch(l, nil, a), false); err != nil {
			t.Fatal(err)
		}
		if _, err := reweighterWeights(h2, rawBatch(l, nil, b), false); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("restored reweighter differs at call %d: %v vs %v", k, a, b)
			}
		}
	}
	if s, _ := reweighterStep(h2); s != 6 {
		t.Errorf("step = %d, want 6", s)
	}
	if r, _ := reweighterR(h2); r != 1 {
		t.Errorf("r = %v, want 1", r)
	}
	// A failed call does not advance the step and clears the stats.
	bad := []float32{float32(math.NaN()), float32(math.Inf(1))}
	if _, err := reweighterWeights(h2, rawBatch(bad, nil, make([]float32, 2)), false); err == nil {
		t.Fatal("all non-finite: no error")
	}
	if s, _ := reweighterStep(h2); s != 6 {
		t.Errorf("step after an error = %d, want 6", s)
	}
	if b, _ := reweighterStats(h2); string(b) != "{}" {
		t.Errorf("stats after an error = %s, want {}", b)
	}
}

func TestPackedDispatchesOnTheHandleKind(t *testing.T) {
	wh, _ := weigherNew(`{}`)
	rh, _ := reweighterNew(`{"schedule": {"kind": "constant", "r": 1}}`)
	defer closeHandle(wh)
	defer closeHandle(rh)
	l := []float32{1, 2, 3, 4}
	a, b := make([]float32, 4), make([]float32, 4)
	if _, err := packedWeights(wh, 1, rawBatch(l, nil, a), false); err != nil {
		t.Fatal(err)
	}
	if _, err := packedWeights(rh, 0, rawBatch(l, nil, b), false); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("weigher %v, reweighter %v", a, b)
		}
	}
	if s, _ := reweighterStep(rh); s != 1 {
		t.Errorf("the packed call did not advance the reweighter: step %d", s)
	}
	if _, err := packedWeights(1<<62, 1, rawBatch(l, nil, a), false); err == nil || !strings.Contains(err.Error(), "unknown or closed") {
		t.Errorf("closed handle: %v", err)
	}
}

func TestFlatJSONReadsBackInPython(t *testing.T) {
	st := &goreweight.Stats{R: math.Inf(1), LossMean: 0.1, Domains: []goreweight.DomainStats{{Count: 1, MeanLoss: math.NaN()}}}
	b := string(flatJSON(st))
	for _, want := range []string{`"r": Infinity`, `"loss_mean": 0.1`, `"domain/0/mean_loss": NaN`, `"m": 0`} {
		if !strings.Contains(b, want) {
			t.Errorf("flatJSON = %s, missing %s", b, want)
		}
	}
}

func TestArrowImport(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	bld := array.NewFloat64Builder(mem)
	bld.AppendValues([]float64{1, 2, 3, 4}, []bool{true, false, true, true})
	arr := bld.NewArray()
	bld.Release()
	var cs cdata.CArrowSchema
	var ca cdata.CArrowArray
	cdata.ExportArrowArray(arr, &ca, &cs)
	arr.Release()
	var scratch []float32
	l, release, err := importArrowLosses(unsafe.Pointer(&cs), unsafe.Pointer(&ca), &scratch)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if len(l) != 4 || l[0] != 1 || !math.IsNaN(float64(l[1])) || l[3] != 4 {
		t.Errorf("imported %v, want [1 NaN 3 4]", l)
	}
	// float32 without nulls: the slice is the producer's buffer itself.
	fb := array.NewFloat32Builder(mem)
	fb.AppendValues([]float32{5, 6, 7}, nil)
	f32 := fb.NewArray().(*array.Float32)
	fb.Release()
	want := unsafe.Pointer(unsafe.SliceData(f32.Float32Values()))
	cdata.ExportArrowArray(f32, &ca, &cs)
	f32.Release()
	l, release, err = importArrowLosses(unsafe.Pointer(&cs), unsafe.Pointer(&ca), &scratch)
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.Pointer(unsafe.SliceData(l)) != want || len(l) != 3 || l[2] != 7 {
		t.Errorf("float32 Arrow losses were copied (or misread): %v", l)
	}
	release()
	if _, _, err := importArrowLosses(nil, unsafe.Pointer(&ca), &scratch); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("NULL schema: %v", err)
	}
	// Issue 13 item 6: the array was moved by the import above (release is
	// NULL) and the schema released: a second import is GRW_EINVAL with a
	// message, not arrow-go's assertion aborting the process.
	_, _, err = importArrowLosses(unsafe.Pointer(&cs), unsafe.Pointer(&ca), &scratch)
	if err == nil || !strings.Contains(err.Error(), "already released") || statusOf(err) != statusInvalid {
		t.Errorf("re-import of a moved array: %v", err)
	}
	// A live array with a released schema, and malformed headers.
	fb = array.NewFloat32Builder(mem)
	fb.AppendValues([]float32{1, 2}, nil)
	a2 := fb.NewArray()
	fb.Release()
	var cs2 cdata.CArrowSchema
	var ca2 cdata.CArrowArray
	cdata.ExportArrowArray(a2, &ca2, &cs2)
	a2.Release()
	cdata.ReleaseCArrowSchema(&cs2)
	if _, _, err := importArrowLosses(unsafe.Pointer(&cs2), unsafe.Pointer(&ca2), &scratch); err == nil || !strings.Contains(err.Error(), "schema was already released") {
		t.Errorf("released schema: %v", err)
	}
	cdata.ReleaseCArrowArray(&ca2) // refused arrays stay with their owner
	for _, h := range []arrowHeader{
		{format: "f", length: -1, nBuffers: 2}, {format: "f", length: 4, nullCount: 5, nBuffers: 2},
		{format: "f", length: 4, nBuffers: 3}, {format: "+s", nBuffers: 1, nChildren: 1}, {format: "f", length: 1, nBuffers: 2, valuesNil: true},
		{format: "f", length: 4, nullCount: 2, nBuffers: 2, validityNil: true}, {format: "f", length: 1, nBuffers: 2, arrayDictionary: true},
	} {
		if err := h.check(); err == nil || statusOf(err) != statusInvalid {
			t.Errorf("header %+v accepted: %v", h, err)
		}
	}
}

// TestCExample builds the shared library and capi/example/example.c and
// runs the program.
func TestCExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the c-shared library: skipped with -short")
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Fatalf("no C compiler (cc) on PATH: %v", err)
	}
	dir := t.TempDir()
	lib := filepath.Join(dir, "libgoreweight.so")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gobin, "build", "-buildmode=c-shared", "-o", lib, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildmode=c-shared: %v\n%s", err, out)
	}
	exe := filepath.Join(dir, "example")
	if out, err := exec.Command(cc, "-Wall", "-Werror", "-o", exe, filepath.Join("example", "example.c"), "-I"+dir, lib, "-Wl,-rpath,"+dir, "-lm").CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	out, err := exec.Command(exe).CombinedOutput()
	if err != nil {
		t.Fatalf("example: %v\n%s", err, out)
	}
	for _, want := range []string{"linupper 0.119271 0.232307 0.324211 0.324211 0.000000", "nonfinite 1",
		"arrow_equal 1", "arrow_released 1", "packed_equal 1", "packed_nonfinite 1",
		"masked 0.119271 0.232307 0.324211 0.324211 0.000000", "masked_nonfinite 0", "bad_strategy_status 1", "closed_handle_status 1",
		"step1 0.250000 0.250000 0.250000 0.250000", "restored_step 3", "empty_status_is_eempty 1", "all_nan_status_is_enonfinite 1", "schedule_r 50.5000", "warmup_r_is_inf 1", "\nok\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("example output lacks %q:\n%s", want, out)
		}
	}
	_ = os.Remove(exe)
}
