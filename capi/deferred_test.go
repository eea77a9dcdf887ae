package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/goreweight/goreweight/goreweight"
)

func TestDeferredNSums(t *testing.T) {
	if deferredNSums != goreweight.DeferredSumsLen {
		t.Fatalf("GRW_DEFERRED_NSUMS = %d, the core's DeferredSumsLen = %d", deferredNSums, goreweight.DeferredSumsLen)
	}
}

func ptr(x []float32) unsafe.Pointer {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(x))
}

// The handle forwards to the core: the same u, sums, scale, stats and
// state as a goreweight.Deferred fed the same micro-batches, alone and with
// the sums of two ranks.
func TestDeferredForwardsToTheCore(t *testing.T) {
	cfg := `{"strategy": "quadratic", "delta": 0.5, "schedule": {"kind": "linear", "r_start": 3, "r_end": 0.5, "steps": 4}, "range_momentum": 0.25}`
	h, err := deferredNew(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(h)
	c := goreweight.DefaultDeferredConfig()
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	core, err := goreweight.NewDeferred(c)
	if err != nil {
		t.Fatal(err)
	}
	steps := [][][]float32{{{1, 2, 3}, {0.5, float32(math.NaN())}}, {{2, 2.5}, {4, 1, 3}}, {{}, {1.5, 2}}}
	for s, micro := range steps {
		for _, l := range micro {
			got, want := make([]float32, len(l)), make([]float32, len(l))
			z, err := deferredMicro(h, ptr(l), int64(len(l)), ptr(got))
			if err != nil {
				t.Fatal(err)
			}
			wz, _ := core.Micro(want, l)
			if z != wz {
				t.Fatalf("step %d: z %v, core %v", s, z, wz)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("step %d: u[%d] = %v, core %v", s, i, got[i], want[i])
				}
			}
		}
		sums := make([]float64, deferredNSums)
		if err := deferredSums(h, unsafe.Pointer(&sums[0]), deferredNSums); err != nil {
			t.Fatal(err)
		}
		want := core.Sums().AppendVector(nil)
		for i := range sums {
			if math.Float64bits(sums[i]) != math.Float64bits(want[i]) {
				t.Fatalf("step %d: sums[%d] = %v, core %v", s, i, sums[i], want[i])
			}
		}
		var scale float64
		var st []byte
		if s == 1 { // as two ranks: this one and one with a single loss 7
			other, _ := goreweight.NewDeferred(c)
			clo, chi, _ := core.Range()
			other.SetRange(clo, chi)
			other.Micro(make([]float32, 1), []float32{7})
			both := append(append([]float64(nil), sums...), other.Sums().AppendVector(nil)...)
			scale, st, err = deferredFinish(h, unsafe.Pointer(&both[0]), 2)
			if err != nil {
				t.Fatal(err)
			}
			cst, err := core.Finish([]goreweight.DeferredSums{core.Sums(), other.Sums()})
			if err != nil || cst.Scale != scale || cst.M != 6 {
				t.Fatalf("two ranks: scale %v, core %v (%v, m %d)", scale, cst.Scale, err, cst.M)
			}
			continue
		}
		scale, st, err = deferredFinish(h, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		cst, _ := core.Finish(nil)
		if scale != cst.Scale || string(st) != string(flatMapJSON(cst.Flat())) {
			t.Fatalf("step %d: scale %v stats %s, core %v %s", s, scale, st, cst.Scale, flatMapJSON(cst.Flat()))
		}
		last, _ := deferredStats(h)
		if string(last) != string(st) {
			t.Fatalf("stats %s, finish gave %s", last, st)
		}
		var m map[string]float64
		if err := json.Unmarshal(st, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"step", "r", "ess", "range_lo", "range_hi", "clipped", "clipped_frac", "z", "scale", "max_wm"} {
			if _, ok := m[k]; !ok {
				t.Errorf("stats lack %q: %s", k, st)
			}
		}
	}
	step, open, _ := deferredStep(h)
	lo, hi, known, _ := deferredRange(h)
	clo, chi, _ := core.Range()
	if step != 3 || open || !known || lo != clo || hi != chi {
		t.Fatalf("step %d open %v range [%v, %v] %v, core [%v, %v]", step, open, lo, hi, known, clo, chi)
	}
	if r, _ := deferredR(h); r != core.R() {
		t.Fatalf("r %v, core %v", r, core.R())
	}
	// state round trip through a restored handle, and load_state
	state, err := deferredState(h)
	if err != nil {
		t.Fatal(err)
	}
	cstate, _ := core.State()
	if string(state) != string(cstate) {
		t.Fatalf("state %s, core %s", state, cstate)
	}
	h2, err := deferredRestore(string(state))
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(h2)
	if s2, _ := deferredState(h2); string(s2) != string(state) {
		t.Fatalf("restored state %s, want %s", s2, state)
	}
	if err := deferredSetStep(h2, 9); err != nil {
		t.Fatal(err)
	}
	if err := deferredLoadState(h2, string(state)); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := deferredStep(h2); s != 3 {
		t.Fatalf("load_state: step %d, want 3", s)
	}
	if cj, _ := deferredConfig(h); !strings.Contains(string(cj), `"range_momentum":0.25`) {
		t.Fatalf("config %s", cj)
	}
}

func TestDeferredStatusCodes(t *testing.T) {
	for cfg, key := range map[string]string{
		`{"strategy": "topk", "q": 0.5}`:                         "topk",
		`{"strategy": "truncate", "q": 0.5}`:                     "truncate",
		`{"cap": 2}`:                                             "cap",
		`{"domain_multipliers": [1]}`:                            "domain_multipliers",
		`{"range_momentum": 1}`:                                  "range_momentum",
		`{"schedule": {"kind": "constant", "r": 1}, "bogus": 1}`: "bogus",
	} {
		if !strings.Contains(cfg, "schedule") {
			cfg = strings.TrimSuffix(cfg, "}") + `, "schedule": {"kind": "constant", "r": 1}}`
		}
		_, err := deferredNew(cfg)
		if statusOf(err) != statusInvalid || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: status %d, %v; want GRW_EINVAL naming %q", cfg, statusOf(err), err, key)
		}
	}
	h, err := deferredNew(`{"nonfinite": "raise", "schedule": {"kind": "constant", "r": 1}}`)
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(h)
	u := make([]float32, 2)
	check := func(what string, err error, want int) {
		t.Helper()
		if statusOf(err) != want {
			t.Errorf("%s: status %d (%v), want %d", what, statusOf(err), err, want)
		}
	}
	_, _, err = deferredFinish(h, nil, 0)
	check("finish before any micro-batch", err, statusInvalid)
	_, err = deferredMicro(h, ptr([]float32{1, float32(math.NaN())}), 2, ptr(u))
	check("non-finite under raise", err, statusNonFinite)
	_, err = deferredMicro(h, ptr([]float32{1, 2}), 2, nil)
	check("NULL u_out", err, statusInvalid)
	_, err = deferredMicro(h, nil, 2, ptr(u))
	check("NULL losses", err, statusInvalid)
	_, err = deferredMicro(h, ptr([]float32{1, 2}), -1, ptr(u))
	check("negative n", err, statusInvalid)
	l := []float32{1, 2}
	_, err = deferredMicro(h, ptr(l), 2, ptr(l))
	check("u_out overlaps losses", err, statusInvalid)
	one := make([]float64, 1)
	check("sums of wrong length", deferredSums(h, unsafe.Pointer(&one[0]), 1), statusInvalid)
	_, err = deferredMicro(h, nil, 0, nil)
	check("empty micro-batch", err, statusOK)
	_, _, err = deferredFinish(h, nil, 0)
	check("empty step", err, statusEmpty)
	bad := make([]float64, deferredNSums)
	bad[0] = -1
	_, _, err = deferredFinish(h, unsafe.Pointer(&bad[0]), 1)
	check("bad global sums", err, statusInvalid)
	_, _, err = deferredFinish(h, nil, 3)
	check("NULL global sums", err, statusInvalid)
	check("set_step while open", deferredSetStep(h, 2), statusInvalid)
	check("discard", deferredDiscard(h), statusOK)
	_, err = deferredMicro(h, ptr([]float32{1, 2}), 2, ptr(u))
	check("micro", err, statusOK)
	_, _, err = deferredFinish(h, nil, 0)
	check("finish", err, statusOK)
	_, _, err = deferredFinish(h, nil, 0)
	check("finish twice", err, statusInvalid)
	check("bad range", deferredSetRange(h, 2, 1), statusInvalid)
	check("bad state", deferredLoadState(h, `{"version": 1}`), statusInvalid)
	wh, _ := weigherNew(`{}`)
	defer closeHandle(wh)
	_, err = deferredR(wh)
	check("a weigher's handle", err, statusInvalid)
}
