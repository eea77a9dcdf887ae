package main

import (
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/goreweight/goreweight/goreweight"
)

// rawMasked points a masked batch at Go slices (tests only).
func rawMasked(losses, reference []float32, mask []uint8, domains []int32, out []float32, flags int32) maskedBatch {
	b := maskedBatch{losses: unsafe.Pointer(unsafe.SliceData(losses)), out: unsafe.Pointer(unsafe.SliceData(out)), n: int64(len(losses)), flags: flags}
	if reference != nil {
		b.reference = unsafe.Pointer(unsafe.SliceData(reference))
	}
	if mask != nil {
		b.mask = unsafe.Pointer(unsafe.SliceData(mask))
	}
	if domains != nil {
		b.domains = unsafe.Pointer(unsafe.SliceData(domains))
	}
	return b
}

// TestMaskedForwardsToTheCore: the masked calls give what the core's
// WeightsMasked gives, bit for bit, for both kinds of handle and both
// entry points (per kind, and dispatching on the handle).
func TestMaskedForwardsToTheCore(t *testing.T) {
	nan := float32(math.NaN())
	l := []float32{1, 2, nan, 4, 9, 0.5, 7, nan}
	ref := []float32{0, 1, 0, 0.5, 0, 0, 2, 0}
	mask := []uint8{1, 1, 0, 1, 0, 1, 1, 1}
	dom := []int32{0, 1, 0, 1, 0, 2, 2, 1}
	o := goreweight.DefaultOptions()
	o.Strategy, o.DomainMultipliers = goreweight.Quadratic, []float64{1, 0.5, 2}
	core, _ := goreweight.NewWeigher(o)
	for _, flags := range []int32{0, maskSkipNonFinite} {
		want := make([]float32, len(l))
		st, err := core.WeightsMasked(want, goreweight.MaskedBatch{Losses: l, Reference: ref, Mask: mask, Domains: dom, SkipNonFinite: flags != 0}, 0.7)
		if err != nil {
			t.Fatal(err)
		}
		wh, err := weigherNew(`{"strategy": "quadratic", "domain_multipliers": [1, 0.5, 2]}`)
		if err != nil {
			t.Fatal(err)
		}
		rh, err := reweighterNew(`{"strategy": "quadratic", "domain_multipliers": [1, 0.5, 2], "schedule": {"kind": "constant", "r": 0.7}}`)
		if err != nil {
			t.Fatal(err)
		}
		calls := []struct {
			name string
			step int64
			call func(out []float32) (result, error)
		}{
			{"weigher", 0, func(out []float32) (result, error) {
				return weigherWeightsMasked(wh, 0.7, rawMasked(l, ref, mask, dom, out, flags), true)
			}},
			{"reweighter", 0, func(out []float32) (result, error) {
				return reweighterWeightsMasked(rh, rawMasked(l, ref, mask, dom, out, flags), true)
			}},
			{"dispatch weigher", 0, func(out []float32) (result, error) {
				return maskedWeights(wh, 0.7, rawMasked(l, ref, mask, dom, out, flags), true)
			}},
			{"dispatch reweighter", 1, func(out []float32) (result, error) {
				return maskedWeights(rh, 123, rawMasked(l, ref, mask, dom, out, flags), true) // r is the schedule's
			}},
		}
		for _, c := range calls {
			name, call := c.name, c.call
			got := make([]float32, len(l))
			res, err := call(got)
			if err != nil {
				t.Fatalf("%s flags=%d: %v", name, flags, err)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s flags=%d: weight %d = %v, core gives %v", name, flags, i, got[i], want[i])
				}
			}
			if res.nonFinite != int64(st.NonFinite) || res.nonFinite != int64(1-flags) {
				t.Errorf("%s flags=%d: nonfinite = %d, core %d", name, flags, res.nonFinite, st.NonFinite)
			}
			// The stats JSON is the core's but for the step.
			core := *st
			core.Step = c.step
			if string(res.stats) != string(flatJSON(&core)) {
				t.Errorf("%s flags=%d: stats %s, core gives %s", name, flags, res.stats, flatJSON(&core))
			}
		}
		if s, _ := reweighterStep(rh); s != 2 {
			t.Errorf("reweighter step = %d after two calls, want 2", s)
		}
		if b, _ := reweighterStats(rh); !strings.Contains(string(b), `"step": 1`) {
			t.Errorf("reweighter stats after the masked call: %s", b)
		}
		closeHandle(wh)
		closeHandle(rh)
	}
}

// TestMaskedErrors: bad arguments name the problem, with the status of
// their class; a failed reweighter call does not advance the step.
func TestMaskedErrors(t *testing.T) {
	wh, _ := weigherNew(`{"nonfinite": "raise"}`)
	defer closeHandle(wh)
	rh, _ := reweighterNew(`{"schedule": {"kind": "constant", "r": 1}}`)
	defer closeHandle(rh)
	l := []float32{1, 2, float32(math.NaN())}
	out := make([]float32, 3)
	nullLosses := rawMasked(l, nil, nil, nil, out, 0)
	nullLosses.losses = nil
	nullOut := rawMasked(l, nil, nil, nil, out, 0)
	nullOut.out = nil
	negative := rawMasked(l, nil, nil, nil, out, 0)
	negative.n = -1
	overlap := rawMasked(l, []float32{0, 0, 0}, nil, nil, out, 0)
	overlap.out = overlap.reference
	for _, c := range []struct {
		name   string
		b      maskedBatch
		status int
		msg    string
	}{
		{"null losses", nullLosses, statusInvalid, "losses is NULL"},
		{"null out", nullOut, statusInvalid, "weights_out is NULL"},
		{"negative n", negative, statusInvalid, "must be >= 1"},
		{"empty", rawMasked(l[:0], nil, nil, nil, out[:0], 0), statusEmpty, "empty batch"},
		{"all masked", rawMasked(l, nil, []uint8{0, 0, 0}, nil, out, 0), statusEmpty, "every one of the 3 entries is masked"},
		{"flags", rawMasked(l, nil, nil, nil, out, 6), statusInvalid, "unknown bits"},
		{"overlap", overlap, statusInvalid, "weights_out overlaps reference"},
		{"counted NaN under raise", rawMasked(l, nil, []uint8{1, 0, 1}, nil, out, 0), statusNonFinite, "index 2"},
	} {
		_, err := weigherWeightsMasked(wh, 1, c.b, false)
		if statusOf(err) != c.status || err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v (status %d), want status %d and %q", c.name, err, statusOf(err), c.status, c.msg)
		}
	}
	// NaN under the mask is not an error under "raise".
	if _, err := weigherWeightsMasked(wh, 1, rawMasked(l, nil, []uint8{1, 1, 0}, nil, out, 0), false); err != nil {
		t.Errorf("NaN under the mask: %v", err)
	}
	if _, err := reweighterWeightsMasked(rh, rawMasked(l, nil, []uint8{0, 0, 0}, nil, out, 0), false); statusOf(err) != statusEmpty {
		t.Errorf("reweighter, all masked: %v", err)
	}
	if s, _ := reweighterStep(rh); s != 0 {
		t.Errorf("step after a failed call = %d, want 0", s)
	}
	if b, _ := reweighterStats(rh); string(b) != "{}" {
		t.Errorf("stats after a failed call = %s, want {}", b)
	}
	if _, err := maskedWeights(987654321, 1, rawMasked(l, nil, nil, nil, out, 0), false); err == nil || !strings.Contains(err.Error(), "unknown or closed") {
		t.Errorf("unknown handle: %v", err)
	}
}
