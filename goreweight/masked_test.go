package goreweight

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// maskCase is one masked batch and what the plain path sees of it.
type maskCase struct {
	b       MaskedBatch
	counted []int     // dense indices of the counted entries
	scores  []float32 // their scores, compacted
	doms    []int32   // their domain ids, compacted (nil without domains)
}

// compact computes, independently of pass_mask.go, which entries a masked
// batch counts and their scores.
func compact(b MaskedBatch) maskCase {
	c := maskCase{b: b}
	for i, l := range b.Losses {
		s := l
		if b.Reference != nil {
			s = l - b.Reference[i]
		}
		if b.Mask != nil && b.Mask[i] == 0 {
			continue
		}
		if b.SkipNonFinite && (math.IsNaN(float64(s)) || math.IsInf(float64(s), 0)) {
			continue
		}
		c.counted = append(c.counted, i)
		c.scores = append(c.scores, s)
		if b.Domains != nil {
			c.doms = append(c.doms, b.Domains[i])
		}
	}
	return c
}

// randomMask draws a mask of one of several kinds for N entries.
func randomMask(rng *rand.Rand, N, kind int) []uint8 {
	m := make([]uint8, N)
	switch kind {
	case 0: // 10% masked, flags 1
		for i := range m {
			if rng.Float64() >= 0.1 {
				m[i] = 1
			}
		}
	case 1: // 90% masked, arbitrary nonzero bytes count
		for i := range m {
			if rng.Float64() < 0.1 {
				m[i] = uint8(1 + rng.IntN(255))
			}
		}
	case 2: // all but one masked
		m[rng.IntN(N)] = 1
	case 3: // nothing masked
		for i := range m {
			m[i] = 1
		}
	case 4: // whole chunks masked, and a run at the end
		for i := range m {
			if (i/chunkSize)%2 == 0 && i < N-N/5 {
				m[i] = 1
			}
		}
		m[0] = 1
	default: // in runs (mostly of 1, some of other nonzero bytes)
		on := uint8(1)
		for i := range m {
			if rng.IntN(50) == 0 {
				on = [...]uint8{0, 0, 1, 1, 1, 9}[rng.IntN(6)]
			}
			m[i] = on
		}
		m[N-1] = 1
	}
	return m
}

// statsJSON is the Stats' JSON form, which compares NaN (null) as equal.
func statsJSON(t *testing.T, st *Stats) string {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkMasked runs one case through WeightsMasked and through Weights on
// the compacted batch (fresh weighers with the same options) and asserts
// they agree bit for bit: weights, zeros, stats and errors.
func checkMasked(t *testing.T, what string, o Options, c maskCase, r float64) (*Stats, []float32, error) {
	t.Helper()
	wm, err := NewWeigher(o)
	if err != nil {
		t.Fatal(err)
	}
	wp, _ := NewWeigher(o)
	N := len(c.b.Losses)
	dst := make([]float32, N)
	for i := range dst {
		dst[i] = -1 // every entry must be written
	}
	st, err := wm.WeightsMasked(dst, c.b, r)
	if len(c.counted) == 0 {
		if !errors.Is(err, ErrEmpty) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: nothing counted: got %v, want ErrEmpty", what, err)
		}
		return nil, nil, err
	}
	want := make([]float32, len(c.scores))
	stp, errp := wp.Weights(want, c.scores, c.doms, r)
	if (err == nil) != (errp == nil) {
		t.Fatalf("%s: masked error %v, compacted error %v", what, err, errp)
	}
	if err != nil {
		var ne, nep *NonFiniteError
		if errors.As(errp, &nep) {
			if !errors.As(err, &ne) || ne.Count != nep.Count || ne.First != c.counted[nep.First] || ne.All != nep.All {
				t.Fatalf("%s: masked error %v, compacted error %v (dense index of %d: %d)", what, err, errp, nep.First, c.counted[nep.First])
			}
		} else if statusClass(err) != statusClass(errp) {
			t.Fatalf("%s: masked error %v, compacted error %v", what, err, errp)
		}
		return nil, nil, err
	}
	k := 0
	for i, v := range dst {
		if k < len(c.counted) && c.counted[k] == i {
			if math.Float32bits(v) != math.Float32bits(want[k]) {
				t.Fatalf("%s: entry %d (counted #%d) weight %v, compacted batch %v", what, i, k, v, want[k])
			}
			k++
		} else if math.Float32bits(v) != 0 {
			t.Fatalf("%s: entry %d is not counted, weight %v, want +0", what, i, v)
		}
	}
	if a, b := statsJSON(t, st), statsJSON(t, stp); a != b {
		t.Fatalf("%s: stats differ:\nmasked    %s\ncompacted %s", what, a, b)
	}
	return st, dst, nil
}

// statusClass is an error's sentinel class.
func statusClass(err error) string {
	switch {
	case errors.Is(err, ErrEmpty):
		return "empty"
	case errors.Is(err, ErrNonFinite):
		return "nonfinite"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	}
	return fmt.Sprint(err)
}

// TestMaskedMatchesCompacted: the counted entries get exactly what Weights
// gives their compacted batch, for every strategy, cap, reference, domains
// and mask kind, at sizes around the chunk boundaries; and the weights
// match the float64 oracle on the dense batch with the entries not counted
// left out.
func TestMaskedMatchesCompacted(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 4))
	sizes := []int{1, 2, 7, 300, chunkSize - 1, chunkSize + 37, 3*chunkSize + 5}
	if testing.Short() {
		sizes = sizes[:5]
	}
	for _, N := range sizes {
		for kind := 0; kind < 6; kind++ {
			for _, s := range allBuiltins {
				for variant := 0; variant < 4; variant++ {
					o := optsFor(s)
					b := MaskedBatch{Losses: randomBatch(rng, N), Mask: randomMask(rng, N, kind)}
					ro := refOpts{strategy: s, delta: o.Delta, r: []float64{0.05, 0.5, 3}[rng.IntN(3)], q: o.Q}
					if variant&1 != 0 {
						b.Reference = make([]float32, N)
						for i := range b.Reference {
							b.Reference[i] = float32(rng.NormFloat64())
						}
					}
					if variant&2 != 0 && s != TopK && s != Truncate {
						o.Cap, ro.cap = 2, 2
					}
					if variant == 3 {
						o.DomainMultipliers = []float64{1, 0.5, 2}
						b.Domains = make([]int32, N)
						for i := range b.Domains {
							b.Domains[i] = int32(rng.IntN(3))
						}
					}
					// NaN under the mask, and a few counted NaNs.
					for i := range b.Losses {
						if b.Mask[i] == 0 && rng.IntN(3) == 0 {
							b.Losses[i] = float32(math.NaN())
						}
						if b.Domains != nil && b.Mask[i] == 0 && rng.IntN(3) == 0 {
							b.Domains[i] = -5 // not read
						}
					}
					if N > 10 && variant == 1 {
						for j := 0; j < 3; j++ {
							b.Losses[rng.IntN(N)] = float32(math.Inf(1))
						}
					}
					c := compact(b)
					what := fmt.Sprintf("N=%d mask=%d %s variant=%d", N, kind, s, variant)
					st, dst, err := checkMasked(t, what, o, c, ro.r)
					if err != nil {
						continue
					}
					if st.M != len(c.counted) {
						t.Fatalf("%s: Stats.M = %d, want the %d counted entries", what, st.M, len(c.counted))
					}
					// Oracle: the dense scores, NaN where not counted.
					dense := make([]float32, N)
					for i := range dense {
						dense[i] = float32(math.NaN())
					}
					for k, i := range c.counted {
						dense[i] = c.scores[k]
					}
					if o.DomainMultipliers != nil {
						ro.mult, ro.domains = o.DomainMultipliers, make([]int32, N)
						for k, i := range c.counted {
							ro.domains[i] = c.doms[k]
						}
					}
					checkClose(t, what, dst, refWeights(dense, ro))
				}
			}
		}
	}
}

// TestMaskedPureGo repeats a smaller sweep with the assembly kernels off.
func TestMaskedPureGo(t *testing.T) {
	usePureGo(t)
	rng := rand.New(rand.NewPCG(3, 9))
	for _, N := range []int{5, chunkSize + 3, 2*chunkSize + 11} {
		for kind := 0; kind < 6; kind++ {
			for _, s := range allBuiltins {
				b := MaskedBatch{Losses: randomBatch(rng, N), Mask: randomMask(rng, N, kind)}
				checkMasked(t, fmt.Sprintf("pure Go N=%d mask=%d %s", N, kind, s), optsFor(s), compact(b), 0.5)
			}
		}
	}
}

// TestMaskedNonFinite: NaN under the mask is neither weighted nor
// reported, under either policy; a counted NaN follows the policy and is
// reported at its dense index; SkipNonFinite drops it silently.
func TestMaskedNonFinite(t *testing.T) {
	nan := float32(math.NaN())
	l := []float32{nan, 1, 2, nan, 3, float32(math.Inf(-1))}
	mask := []uint8{0, 1, 1, 1, 1, 0}
	zero, _ := NewWeigher(dflt(Options{}))
	raise, _ := NewWeigher(dflt(Options{NonFinite: NonFiniteRaise}))
	dst := make([]float32, len(l))

	// NaN only under the mask: not reported, even under "raise".
	m2 := []uint8{0, 1, 1, 0, 1, 0}
	for _, w := range []*Weigher{zero, raise} {
		st, err := w.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: m2}, 1)
		if err != nil || st.NonFinite != 0 || st.M != 3 || st.Valid != 3 || st.LossMin != 1 || st.LossMax != 3 {
			t.Fatalf("NaN under the mask: err %v stats %+v", err, st)
		}
		if dst[0] != 0 || dst[3] != 0 || dst[5] != 0 || dst[1] <= 0 {
			t.Fatalf("NaN under the mask: weights %v", dst)
		}
	}

	// A counted NaN (index 3): weight 0 and reported under "zero".
	st, err := zero.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: mask}, 1)
	if err != nil || st.NonFinite != 1 || st.M != 4 || st.Valid != 3 || dst[3] != 0 {
		t.Fatalf("counted NaN, zero: err %v weights %v stats %+v", err, dst, st)
	}
	// ... and an error naming dense index 3 under "raise".
	_, err = raise.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: mask}, 1)
	var ne *NonFiniteError
	if !errors.As(err, &ne) || ne.First != 3 || ne.Count != 1 || !strings.Contains(err.Error(), "index 3") {
		t.Fatalf("counted NaN, raise: got %v", err)
	}
	// SkipNonFinite: dropped silently, also under "raise", also without a mask.
	for _, m := range [][]uint8{mask, nil} {
		st, err = raise.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: m, SkipNonFinite: true}, 1)
		if err != nil || st.NonFinite != 0 || st.M != 3 || dst[3] != 0 || dst[0] != 0 || dst[5] != 0 {
			t.Fatalf("SkipNonFinite (mask %v): err %v weights %v stats %+v", m, err, dst, st)
		}
	}
	// The reference's NaN makes the score NaN.
	ref := []float32{0, 0, nan, 0, 0, 0}
	st, err = zero.WeightsMasked(dst, MaskedBatch{Losses: l, Reference: ref, Mask: m2}, 1)
	if err != nil || st.NonFinite != 1 || dst[2] != 0 {
		t.Fatalf("NaN reference: err %v weights %v stats %+v", err, dst, st)
	}
	// Every counted score non-finite.
	_, err = zero.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: []uint8{1, 0, 0, 1, 0, 1}}, 1)
	if !errors.As(err, &ne) || !ne.All || ne.First != 0 || ne.Count != 3 {
		t.Fatalf("all counted non-finite: got %v", err)
	}
	// SkipNonFinite with every score non-finite: nothing is counted.
	_, err = zero.WeightsMasked(dst[:2], MaskedBatch{Losses: []float32{nan, nan}, SkipNonFinite: true}, 1)
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("SkipNonFinite, all NaN: got %v, want ErrEmpty", err)
	}
}

// TestMaskedHandComputed: a 2×3 token batch by hand. Counted losses 1, 2,
// 3 (the rest masked) with linupper, δ = 1, r = 1: x = -1, 0, 1, scores
// 0, 1, 1, weights 1:e:e.
func TestMaskedHandComputed(t *testing.T) {
	l := []float32{1, 50, 2, -7, 3, 9}
	mask := []uint8{1, 0, 1, 0, 1, 0}
	w, _ := NewWeigher(dflt(Options{}))
	dst := make([]float32, 6)
	if _, err := w.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: mask}, 1); err != nil {
		t.Fatal(err)
	}
	e := math.E
	want := []float64{1 / (1 + 2*e), 0, e / (1 + 2*e), 0, e / (1 + 2*e), 0}
	checkClose(t, "hand", dst, want)
	// The same with a reference: scores l - ref = 1, 2, 3 again.
	l2 := []float32{2, 50, 4, -7, 6, 9}
	ref := []float32{1, 0, 2, 0, 3, 0}
	if _, err := w.WeightsMasked(dst, MaskedBatch{Losses: l2, Reference: ref, Mask: mask}, 1); err != nil {
		t.Fatal(err)
	}
	checkClose(t, "hand, reference", dst, want)
}

// TestMaskedErrors: lengths, empty batches and domain ids.
func TestMaskedErrors(t *testing.T) {
	w, _ := NewWeigher(dflt(Options{}))
	l := []float32{1, 2, 3}
	for _, tc := range []struct {
		name string
		dst  []float32
		b    MaskedBatch
		r    float64
		want error
		msg  string
	}{
		{"empty", nil, MaskedBatch{}, 1, ErrEmpty, "empty batch"},
		{"all masked", make([]float32, 3), MaskedBatch{Losses: l, Mask: []uint8{0, 0, 0}}, 1, ErrEmpty, "every one of the 3 entries is masked"},
		{"dst", make([]float32, 2), MaskedBatch{Losses: l, Mask: []uint8{1, 1, 1}}, 1, ErrInvalid, "output has length 2"},
		{"mask", make([]float32, 3), MaskedBatch{Losses: l, Mask: []uint8{1, 1}}, 1, ErrInvalid, "mask has length 2"},
		{"reference", make([]float32, 3), MaskedBatch{Losses: l, Reference: []float32{1}}, 1, ErrInvalid, "reference has length 1"},
		{"domains", make([]float32, 3), MaskedBatch{Losses: l, Domains: []int32{1}}, 1, ErrInvalid, "domains has length 1"},
		{"r", make([]float32, 3), MaskedBatch{Losses: l, Mask: []uint8{1, 1, 1}}, 0, ErrInvalid, "temperature"},
		{"bad domain counted", make([]float32, 3), MaskedBatch{Losses: l, Mask: []uint8{0, 1, 1}, Domains: []int32{-1, 0, -2}}, 1, ErrInvalid, "domain id -2 at index 2"},
	} {
		_, err := w.WeightsMasked(tc.dst, tc.b, tc.r)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
	// A bad id under the mask is not read.
	dst := make([]float32, 3)
	if _, err := w.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: []uint8{0, 1, 1}, Domains: []int32{-1, 0, 4}}, 1); err != nil {
		t.Fatalf("bad domain under the mask: %v", err)
	}
	wm, _ := NewWeigher(dflt(Options{DomainMultipliers: []float64{1, 1}}))
	if _, err := wm.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: []uint8{1, 1, 1}}, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("multipliers without domains: got %v", err)
	}
	if _, err := wm.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: []uint8{1, 0, 1}, Domains: []int32{1, 7, 2}}, 1); err == nil || !strings.Contains(err.Error(), "domain id 2 at index 2 has no multiplier") {
		t.Fatalf("domain without a multiplier: got %v", err)
	}
}

// TestReweighterMasked: the stateful path takes r from the schedule and
// advances the step exactly like Weights, and not on error.
func TestReweighterMasked(t *testing.T) {
	cfg := Config{Options: dflt(Options{}), Schedule: Schedule{Kind: "linear", RStart: 10, REnd: 1, Steps: 5}}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg)
	rng := rand.New(rand.NewPCG(5, 5))
	for step := int64(0); step < 4; step++ {
		l := randomBatch(rng, 200)
		m := randomMask(rng, 200, 0)
		c := compact(MaskedBatch{Losses: l, Mask: m})
		dst, want := make([]float32, 200), make([]float32, len(c.scores))
		st, err := a.WeightsMasked(dst, MaskedBatch{Losses: l, Mask: m})
		if err != nil {
			t.Fatal(err)
		}
		stb, _ := b.Weights(want, c.scores, nil)
		if st.Step != step || stb.Step != step || st.R != stb.R || a.Step() != step+1 {
			t.Fatalf("step %d: masked step %d r %v, plain step %d r %v", step, st.Step, st.R, stb.Step, stb.R)
		}
		for k, i := range c.counted {
			if dst[i] != want[k] {
				t.Fatalf("step %d: entry %d: %v, want %v", step, i, dst[i], want[k])
			}
		}
	}
	if _, err := a.WeightsMasked(make([]float32, 2), MaskedBatch{Losses: []float32{1, 2}, Mask: []uint8{0, 0}}); !errors.Is(err, ErrEmpty) || a.Step() != 4 {
		t.Fatalf("error: %v, step %d (want ErrEmpty, step 4)", err, a.Step())
	}
}

// TestMaskedSteadyStateAllocs: a masked call of a size seen before
// allocates nothing.
func TestMaskedSteadyStateAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	N := 3*chunkSize + 7
	b := MaskedBatch{Losses: randomBatch(rng, N), Mask: randomMask(rng, N, 0), Reference: make([]float32, N)}
	w, _ := NewWeigher(dflt(Options{}))
	dst := make([]float32, N)
	if _, err := w.WeightsMasked(dst, b, 1); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(5, func() { w.WeightsMasked(dst, b, 1) }); n > 0 {
		t.Fatalf("%v allocations per masked call", n)
	}
}

// FuzzWeightsMasked: arbitrary losses, mask bytes and strategies; the
// masked path agrees bit for bit with Weights on the compacted batch.
func FuzzWeightsMasked(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 192, 127, 0, 0, 0, 64}, []byte{1, 0, 7}, uint8(1), 1.0, false, false)
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64}, []byte{0, 0}, uint8(5), 0.1, true, true)
	f.Fuzz(func(t *testing.T, raw, mask []byte, strategy uint8, r float64, skip, ref bool) {
		l := make([]float32, len(raw)/4)
		for i := range l {
			l[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		if len(l) == 0 || !(r >= MinR) {
			return
		}
		m := make([]uint8, len(l))
		copy(m, mask)
		b := MaskedBatch{Losses: l, Mask: m, SkipNonFinite: skip}
		if ref {
			b.Reference = make([]float32, len(l))
			for i := range b.Reference {
				b.Reference[i] = l[len(l)-1-i]
			}
		}
		checkMasked(t, "fuzz", optsFor(allBuiltins[int(strategy)%len(allBuiltins)]), compact(b), r)
	})
}
