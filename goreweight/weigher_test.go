package goreweight

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

var allBuiltins = []string{Uniform, LinUpper, Quadratic, Extremes, DROKL, TopK, Truncate}

// randomBatch draws M losses of one of several shapes.
func randomBatch(rng *rand.Rand, M int) []float32 {
	l := make([]float32, M)
	shape := rng.IntN(5)
	for i := range l {
		switch shape {
		case 0: // token cross-entropies
			l[i] = float32(2 + rng.NormFloat64())
		case 1: // heavy tail
			l[i] = float32(math.Exp(rng.NormFloat64() * 2))
		case 2: // few distinct values: ties
			l[i] = float32(rng.IntN(4))
		case 3: // huge spread
			l[i] = float32(math.Pow(10, rng.Float64()*60-30))
		default: // negative and positive
			l[i] = float32(rng.Float64()*200 - 100)
		}
	}
	return l
}

func optsFor(strategy string) Options {
	o := dflt(Options{Strategy: strategy})
	switch strategy {
	case TopK:
		o.Q = 0.3
	case Truncate:
		o.Q = 0.2
	}
	return o
}

// checkClose asserts w is within 1e-6 relative of the reference (absolute
// 1e-12 for weights too small for float32 to carry relative precision).
func checkClose(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	for i := range want {
		g, w := float64(got[i]), want[i]
		tol := math.Max(1e-6*math.Abs(w), 1e-37)
		if math.Abs(g-w) > tol {
			t.Fatalf("%s: weight %d = %.9g, reference %.9g (rel. error %.3g)", what, i, g, w, math.Abs(g-w)/w)
		}
	}
}

func TestWeightsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	sizes := []int{1, 2, 3, 7, 64, 1000, chunkSize - 1, chunkSize + 3, 3*chunkSize + 17}
	rs := []float64{0.05, 0.2, 0.4, 1, 3, 100, math.Inf(1)}
	for _, s := range allBuiltins {
		w, err := NewWeigher(optsFor(s))
		if err != nil {
			t.Fatal(err)
		}
		for trial := 0; trial < 30; trial++ {
			M := sizes[trial%len(sizes)]
			l := randomBatch(rng, M)
			r := rs[rng.IntN(len(rs))]
			dst := make([]float32, M)
			st, err := w.Weights(dst, l, nil, r)
			if err != nil {
				t.Fatalf("%s M=%d r=%v: %v", s, M, r, err)
			}
			o := optsFor(s)
			want := refWeights(l, refOpts{strategy: s, delta: 1, r: r, q: o.Q})
			checkClose(t, fmt.Sprintf("%s M=%d r=%v", s, M, r), dst, want)
			checkStats(t, st, l, dst, want)
		}
	}
}

// checkStats recomputes the statistics from the reference weights.
func checkStats(t *testing.T, st *Stats, l []float32, got []float32, w []float64) {
	t.Helper()
	var valid int
	var s2, ent, wl, lsum float64
	wmax, wmin := 0.0, math.Inf(1)
	for i, v := range w {
		if f := float64(l[i]); math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		valid++
		s2 += v * v
		if v > 0 {
			ent -= v * math.Log(v)
		}
		wl += v * float64(l[i])
		lsum += float64(l[i])
		wmax, wmin = math.Max(wmax, v), math.Min(wmin, v)
	}
	near := func(name string, a, b float64) {
		t.Helper()
		if math.Abs(a-b) > 1e-6*math.Max(1, math.Abs(b)) {
			t.Fatalf("stat %s = %.10g, want %.10g", name, a, b)
		}
	}
	if st.Valid != valid || st.M != len(l) || st.NonFinite != len(l)-valid {
		t.Fatalf("counts M=%d valid=%d nonfinite=%d, want %d %d %d", st.M, st.Valid, st.NonFinite, len(l), valid, len(l)-valid)
	}
	fv := float64(valid)
	near("max_wm", st.MaxWM, wmax*fv)
	near("min_wm", st.MinWM, wmin*fv)
	near("ess", st.ESS/fv, 1/s2/fv)
	near("entropy", st.Entropy, ent)
	near("loss_weighted", st.Weighted, wl)
	near("loss_mean", st.LossMean, lsum/fv)
	var sum float64
	for _, v := range got {
		if v < 0 {
			t.Fatalf("negative weight %v", v)
		}
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Fatalf("weights sum to %.9g, want 1", sum)
	}
}

func TestHandComputed(t *testing.T) {
	// Losses 1..5 normalise to x = -1, -0.5, 0, 0.5, 1 (delta 1).
	l := []float32{1, 2, 3, 4, 5}
	e := math.E
	cases := []struct {
		strategy string
		r        float64
		raw      []float64 // unnormalised weights
	}{
		{LinUpper, 1, []float64{1, math.Sqrt(e), e, e, e}},
		{Quadratic, 1, []float64{1, math.Exp(0.75), e, math.Exp(0.75), 1}},
		{Extremes, 0.5, []float64{e * e, e, 1, e, e * e}},
		{DROKL, 1, []float64{math.Exp(-1), math.Exp(-0.5), 1, math.Sqrt(e), e}},
		{Uniform, 0.1, []float64{1, 1, 1, 1, 1}},
	}
	for _, c := range cases {
		w, _ := NewWeigher(dflt(Options{Strategy: c.strategy}))
		dst := make([]float32, 5)
		if _, err := w.Weights(dst, l, nil, c.r); err != nil {
			t.Fatal(err)
		}
		var s float64
		for _, v := range c.raw {
			s += v
		}
		want := make([]float64, 5)
		for i, v := range c.raw {
			want[i] = v / s
		}
		checkClose(t, c.strategy, dst, want)
	}
}

func TestUniformIsExactlyOneOverM(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	w, _ := NewWeigher(dflt(Options{Strategy: Uniform}))
	for _, M := range []int{1, 3, 10, 1000, 100003} {
		l := randomBatch(rng, M)
		dst := make([]float32, M)
		st, err := w.Weights(dst, l, nil, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range dst {
			if v != float32(1/float64(M)) {
				t.Fatalf("M=%d: weight %d = %v, want exactly %v", M, i, v, float32(1/float64(M)))
			}
		}
		if st.MaxWM != 1 || st.ESS != float64(M) || st.Entropy != math.Log(float64(M)) || !st.Uniform {
			t.Fatalf("uniform stats: %+v", st)
		}
	}
}

func TestAffineInvariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range allBuiltins {
		w, err := NewWeigher(optsFor(s))
		if err != nil {
			t.Fatal(err)
		}
		for trial := 0; trial < 20; trial++ {
			M := 1 + rng.IntN(500)
			l := make([]float32, M)
			for i := range l {
				l[i] = float32(rng.IntN(1 << 12)) // exact in float32 after a·l+b below
			}
			a, b := float32(int(1)<<rng.IntN(8)), float32(rng.IntN(64)-32)
			l2 := make([]float32, M)
			for i := range l {
				l2[i] = a*l[i] + b
			}
			d1, d2 := make([]float32, M), make([]float32, M)
			s1, err1 := w.Weights(d1, l, nil, 0.3)
			s2, err2 := w.Weights(d2, l2, nil, 0.3)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: %v, %v", s, err1, err2)
			}
			if s1.Uniform != s2.Uniform || s1.Valid != s2.Valid {
				t.Fatalf("%s: stats differ under l -> %v·l + %v: %+v vs %+v", s, a, b, s1, s2)
			}
			for i := range d1 {
				if math.Abs(float64(d1[i]-d2[i])) > 1e-6*float64(d1[i])+1e-38 {
					t.Fatalf("%s: weight %d changes under l -> %v·l + %v: %v vs %v", s, i, a, b, d1[i], d2[i])
				}
			}
		}
	}
}

func TestStrategyShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 50; trial++ {
		M := 2 + rng.IntN(300)
		l := randomBatch(rng, M)
		lo, hi := float64(l[0]), float64(l[0])
		for _, v := range l {
			lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
		}
		if hi-lo <= tinySpread*math.Max(math.Abs(lo), math.Abs(hi)) {
			continue
		}
		mid := (lo + hi) / 2
		get := func(s string) []float32 {
			w, _ := NewWeigher(dflt(Options{Strategy: s}))
			dst := make([]float32, M)
			if _, err := w.Weights(dst, l, nil, 0.5); err != nil {
				t.Fatal(err)
			}
			return dst
		}
		lu, qu, ex := get(LinUpper), get(Quadratic), get(Extremes)
		var top float32
		for i := range l {
			top = max(top, lu[i])
		}
		for i := range l {
			for j := range l {
				if l[i] < l[j] && lu[i] > lu[j] {
					t.Fatalf("linupper not non-decreasing: l %v -> %v, l %v -> %v", l[i], lu[i], l[j], lu[j])
				}
				// quadratic: closer to the midpoint, no smaller weight
				if math.Abs(float64(l[i])-mid) < math.Abs(float64(l[j])-mid)-1e-9*(hi-lo) && qu[i] < qu[j]*(1-1e-6) {
					t.Fatalf("quadratic does not peak at the midpoint")
				}
				// extremes: farther from the midpoint, no smaller weight
				if math.Abs(float64(l[i])-mid) > math.Abs(float64(l[j])-mid)+1e-9*(hi-lo) && ex[i] < ex[j]*(1-1e-6) {
					t.Fatalf("extremes does not favour both ends")
				}
			}
			if float64(l[i]) >= mid+1e-6*(hi-lo) && math.Abs(float64(lu[i]-top)) > 1e-6*float64(top) {
				t.Fatalf("linupper not flat above the midpoint: %v vs %v", lu[i], top)
			}
		}
	}
	// extremes symmetric: mirrored losses get the mirrored weights.
	l := []float32{0, 1, 3, 7, 10}
	m := []float32{10, 9, 7, 3, 0}
	w, _ := NewWeigher(dflt(Options{Strategy: Extremes}))
	a, b := make([]float32, 5), make([]float32, 5)
	w.Weights(a, l, nil, 0.7)
	w.Weights(b, m, nil, 0.7)
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-7 {
			t.Fatalf("extremes not symmetric: %v vs %v", a, b)
		}
	}
}

func TestLargeRIsUniform(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	l := randomBatch(rng, 777)
	for _, s := range []string{LinUpper, Quadratic, Extremes, DROKL} {
		w, _ := NewWeigher(dflt(Options{Strategy: s}))
		dst := make([]float32, len(l))
		st, _ := w.Weights(dst, l, nil, 1e9)
		for _, v := range dst {
			if math.Abs(float64(v)*777-1) > 1e-6 {
				t.Fatalf("%s at r=1e9: weight·M = %v, want 1", s, float64(v)*777)
			}
		}
		if st.MaxWM > 1+1e-6 {
			t.Fatal(st.MaxWM)
		}
	}
}

func TestWorstCaseBound(t *testing.T) {
	// score range D: delta for linupper and extremes, 1 for quadratic,
	// 2·delta for dro-kl.
	ranges := map[string]float64{LinUpper: 1, Extremes: 1, Quadratic: 1, DROKL: 2}
	for s, D := range ranges {
		for _, M := range []int{2, 10, 128, 4096} {
			for _, r := range []float64{0.1, 0.4, 1, 1 / math.Ln2, 5} {
				bound := MaxWeightBound(M, D, r)
				w, _ := NewWeigher(dflt(Options{Strategy: s}))
				dst := make([]float32, M)
				if s == LinUpper || s == DROKL {
					// one outlier at the top, the rest at the bottom
					l := make([]float32, M)
					l[0] = 1
					if _, err := w.Weights(dst, l, nil, r); err != nil {
						t.Fatal(err)
					}
					if math.Abs(float64(dst[0])-bound) > 1e-6*bound {
						t.Fatalf("%s M=%d r=%v: outlier weight %v, bound %v should be reached", s, M, r, dst[0], bound)
					}
				}
				rng := rand.New(rand.NewPCG(uint64(M), 1))
				for trial := 0; trial < 20; trial++ {
					l := randomBatch(rng, M)
					st, err := w.Weights(dst, l, nil, r)
					if err != nil {
						t.Fatal(err)
					}
					if st.MaxWM/float64(M) > bound*(1+1e-6) {
						t.Fatalf("%s M=%d r=%v: max weight %v exceeds the worst case %v", s, M, r, st.MaxWM/float64(M), bound)
					}
				}
				if r >= D/math.Ln2 && bound > 2/float64(M)*(1+1e-12) {
					t.Fatalf("bound %v above 2/M at r=%v >= D/ln2", bound, r)
				}
			}
		}
	}
}

func TestCap(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, c := range []float64{1, 1.1, 2, 5} {
		for _, s := range []string{LinUpper, Extremes, DROKL, Quadratic} {
			w, err := NewWeigher(dflt(Options{Strategy: s, Cap: c}))
			if err != nil {
				t.Fatal(err)
			}
			for trial := 0; trial < 20; trial++ {
				M := 1 + rng.IntN(3000)
				l := randomBatch(rng, M)
				r := []float64{0.05, 0.2, 1}[trial%3]
				dst := make([]float32, M)
				st, err := w.Weights(dst, l, nil, r)
				if err != nil {
					t.Fatal(err)
				}
				T := c / float64(M)
				var sum float64
				for _, v := range dst {
					if float64(v) > T {
						t.Fatalf("cap %v: weight %v above %v", c, v, T)
					}
					sum += float64(v)
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Fatalf("capped weights sum to %v", sum)
				}
				want := refWeights(l, refOpts{strategy: s, delta: 1, r: r, cap: c})
				for i := range want {
					if math.Abs(float64(dst[i])-want[i]) > 2e-6*want[i]+1e-37 {
						t.Fatalf("cap %v %s M=%d: weight %d = %v, reference projection %v", c, s, M, i, dst[i], want[i])
					}
				}
				if st.MaxWM > c*(1+1e-6) {
					t.Fatalf("stats max_wm %v > cap %v", st.MaxWM, c)
				}
			}
		}
	}
	if _, err := NewWeigher(dflt(Options{Cap: 0.5})); err == nil || !strings.Contains(err.Error(), "cap") {
		t.Fatalf("cap 0.5 must be refused, got %v", err)
	}
	// topk keeps 10% of samples: a cap of 2 cannot hold with 90% at zero.
	w, _ := NewWeigher(dflt(Options{Strategy: TopK, Q: 0.1, Cap: 2}))
	l := randomBatch(rand.New(rand.NewPCG(1, 2)), 100)
	l[0] = 1000
	if _, err := w.Weights(make([]float32, 100), l, nil, 1); err == nil || !strings.Contains(err.Error(), "infeasible") {
		t.Fatalf("infeasible cap: got %v", err)
	}
}

func TestNonFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	l := []float32{1, nan, 3, inf, 5, float32(math.Inf(-1))}
	w, _ := NewWeigher(dflt(Options{Strategy: LinUpper}))
	dst := make([]float32, len(l))
	st, err := w.Weights(dst, l, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := refWeights(l, refOpts{strategy: LinUpper, delta: 1, r: 1})
	checkClose(t, "nonfinite", dst, want)
	if dst[1] != 0 || dst[3] != 0 || dst[5] != 0 || st.NonFinite != 3 || st.Valid != 3 {
		t.Fatalf("non-finite losses: weights %v stats %+v", dst, st)
	}
	if st.LossMax != 5 || st.LossMin != 1 {
		t.Fatalf("non-finite losses leak into min/max: %+v", st)
	}
	wr, _ := NewWeigher(dflt(Options{NonFinite: NonFiniteRaise}))
	_, err = wr.Weights(dst, l, nil, 1)
	if err == nil || !strings.Contains(err.Error(), "3 non-finite") || !strings.Contains(err.Error(), "index 1") {
		t.Fatalf("raise policy: got %v", err)
	}
	_, err = w.Weights(make([]float32, 2), []float32{nan, inf}, nil, 1)
	if err == nil || !strings.Contains(err.Error(), "all 2 losses are non-finite") {
		t.Fatalf("all non-finite: got %v", err)
	}
}

func TestBadInput(t *testing.T) {
	w, _ := NewWeigher(dflt(Options{}))
	for _, c := range []struct {
		name    string
		dst, l  []float32
		domains []int32
		r       float64
		want    string
	}{
		{"empty", nil, nil, nil, 1, "empty batch"},
		{"short output", make([]float32, 1), []float32{1, 2}, nil, 1, "output has length 1"},
		{"domains length", make([]float32, 2), []float32{1, 2}, []int32{0}, 1, "domains has length 1"},
		{"r zero", make([]float32, 2), []float32{1, 2}, nil, 0, "temperature r must be"},
		{"r NaN", make([]float32, 2), []float32{1, 2}, nil, math.NaN(), "temperature r must be"},
		{"negative domain", make([]float32, 2), []float32{1, 2}, []int32{0, -3}, 1, "domain id -3 at index 1"},
	} {
		_, err := w.Weights(c.dst, c.l, c.domains, c.r)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
	for _, c := range []struct {
		o   Options
		key string
	}{
		{Options{Strategy: "nope"}, "strategy"}, {Options{Delta: -1}, "delta"}, {Options{Delta: math.Inf(1)}, "delta"},
		{Options{Delta: 2 * MaxDelta}, "delta"}, {Options{NonFinite: "skip"}, "nonfinite"}, {Options{Strategy: TopK}, "q"},
		{Options{Strategy: Truncate, Q: 1}, "q"}, {Options{DomainMultipliers: []float64{1, -1}}, "domain_multipliers"},
		{Options{Cap: 0.5}, "cap"},
	} {
		_, err := NewWeigher(dflt(c.o))
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Key != c.key || !errors.Is(err, ErrInvalid) {
			t.Errorf("options %+v: got error %v, want an *OptionError for %q", c.o, err, c.key)
		}
	}
	// No zero value means a default: each of these is an explicit mistake.
	for _, c := range []struct {
		o   Options
		key string
	}{
		{Options{Delta: 1, NonFinite: NonFiniteZero}, "strategy"},
		{Options{Strategy: LinUpper, NonFinite: NonFiniteZero}, "delta"},
		{Options{Strategy: LinUpper, Delta: 1}, "nonfinite"},
	} {
		_, err := NewWeigher(c.o)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Key != c.key {
			t.Errorf("options %+v: got error %v, want an *OptionError for %q", c.o, err, c.key)
		}
	}
}

func TestTinySpreadIsUniform(t *testing.T) {
	w, _ := NewWeigher(dflt(Options{}))
	l := []float32{3, 3, 3, math.Nextafter32(3, 4)}
	dst := make([]float32, 4)
	st, _ := w.Weights(dst, l, nil, 0.01)
	if !st.Uniform || dst[0] != 0.25 || dst[3] != 0.25 {
		t.Fatalf("losses one ulp apart must give uniform weights, got %v", dst)
	}
	l = []float32{0, 0, 0}
	if st, _ := w.Weights(dst[:3], l, nil, 1); !st.Uniform {
		t.Fatal("all-zero losses must give uniform weights")
	}
}

func TestDomains(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	mult := []float64{1, 0.5, 3, 0}
	for _, s := range []string{Uniform, LinUpper, Quadratic, TopK} {
		for _, M := range []int{5, 100, chunkSize + 100} {
			l := randomBatch(rng, M)
			dom := make([]int32, M)
			for i := range dom {
				dom[i] = int32(rng.IntN(3)) // domain 3 absent
			}
			o := optsFor(s)
			o.DomainMultipliers = mult
			w, err := NewWeigher(o)
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]float32, M)
			st, err := w.Weights(dst, l, dom, 0.4)
			if err != nil {
				t.Fatal(err)
			}
			want := refWeights(l, refOpts{strategy: s, delta: 1, r: 0.4, q: o.Q, mult: mult, domains: dom})
			checkClose(t, "domains "+s, dst, want)
			var maxDom int32
			for _, d := range dom {
				maxDom = max(maxDom, d)
			}
			present := map[int32]bool{}
			for _, d := range dom {
				present[d] = true
			}
			if len(st.Domains) != len(present) {
				t.Fatalf("want %d domains in stats, got %d", len(present), len(st.Domains))
			}
			for k, ds := range st.Domains {
				if !present[ds.ID] || (k > 0 && ds.ID <= st.Domains[k-1].ID) {
					t.Fatalf("domain stats ids %+v: not the batch's ids in increasing order", st.Domains)
				}
			}
			for k := range st.Domains {
				d := int(st.Domains[k].ID)
				var n int
				var ls, ws float64
				for i := range l {
					if dom[i] == int32(d) {
						n++
						ls += float64(l[i])
						ws += want[i]
					}
				}
				ds := st.Domains[k]
				if ds.Count != n || math.Abs(ds.MeanLoss-ls/float64(n)) > 1e-9*math.Abs(ls/float64(n))+1e-12 || math.Abs(ds.WeightSum-ws) > 1e-6 {
					t.Fatalf("domain %d stats %+v, want count %d mean loss %v weight sum %v", d, ds, n, ls/float64(n), ws)
				}
			}
		}
	}
	w, _ := NewWeigher(dflt(Options{DomainMultipliers: []float64{1}}))
	if _, err := w.Weights(make([]float32, 2), []float32{1, 2}, []int32{0, 1}, 1); err == nil || !strings.Contains(err.Error(), "no multiplier") {
		t.Fatalf("domain without multiplier: %v", err)
	}
	w, _ = NewWeigher(dflt(Options{DomainMultipliers: []float64{0, 0}}))
	if _, err := w.Weights(make([]float32, 2), []float32{1, 2}, []int32{0, 1}, 1); err == nil || !strings.Contains(err.Error(), "weight 0") {
		t.Fatalf("all multipliers 0: %v", err)
	}
}

// A user strategy, registered by name, goes through the same path.
type cubic struct{}

func (cubic) Name() string { return "test-cubic" }
func (cubic) Score(s, x []float64, d float64) {
	for i, v := range x {
		s[i] = v * v * v
	}
}

func TestCustomStrategy(t *testing.T) {
	if err := Register(cubic{}); err != nil {
		t.Fatal(err)
	}
	if err := Register(cubic{}); err == nil {
		t.Fatal("registering a name twice must fail")
	}
	w, err := NewWeigher(dflt(Options{Strategy: "test-cubic"}))
	if err != nil {
		t.Fatal(err)
	}
	l := []float32{1, 2, 3, 4, float32(math.NaN())}
	dst := make([]float32, 5)
	if _, err := w.Weights(dst, l, nil, 0.5); err != nil {
		t.Fatal(err)
	}
	raw := []float64{}
	for _, x := range []float64{-1, -1.0 / 3, 1.0 / 3, 1} {
		raw = append(raw, math.Exp(x*x*x/0.5))
	}
	var s float64
	for _, v := range raw {
		s += v
	}
	for i, v := range raw {
		raw[i] = v / s
	}
	checkClose(t, "custom", dst, append(raw, 0))
}

func TestUnderflowRescue(t *testing.T) {
	// Quadratic on a two-valued batch: every score is 0, its supremum 1 is
	// never reached, and at r = 1e-3 e^(-1/r) underflows. Weights must still
	// be uniform over the batch, not an error.
	w, _ := NewWeigher(dflt(Options{Strategy: Quadratic}))
	dst := make([]float32, 4)
	if _, err := w.Weights(dst, []float32{1, 2, 1, 2}, nil, 1e-3); err != nil {
		t.Fatal(err)
	}
	for _, v := range dst {
		if v != 0.25 {
			t.Fatalf("want uniform, got %v", dst)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, M := range []int{128, 100000} {
		l := randomBatch(rng, M)
		dom := make([]int32, M)
		dst := make([]float32, M)
		for _, s := range []string{LinUpper, Quadratic, TopK} {
			w, _ := NewWeigher(optsFor(s))
			w.Weights(dst, l, dom, 1) // warm up scratch
			if n := testing.AllocsPerRun(20, func() { w.Weights(dst, l, dom, 1) }); n != 0 {
				t.Errorf("%s M=%d: %v allocations per call, want 0", s, M, n)
			}
		}
	}
}

// Small r pushes unnormalised weights into float32's subnormal range; the
// cap and the small weights must still match the float64 reference.
// (Found by the Python suite's random comparison.)
func TestSubnormalExponentials(t *testing.T) {
	for _, c := range []struct {
		l        []float32
		strategy string
		r, delta float64
		cap      float64
	}{
		{[]float32{0, 0.001, 0.5, 0.5, 1}, Quadratic, 0.01, 1, 1.25},
		{[]float32{0, 0.2647, 1}, Quadratic, 0.01, 1, 0},
		{[]float32{0, 1, 2}, DROKL, 0.01, 3, 1}, // exact answer: uniform
		{[]float32{0, 1, 2, 3, 4, 5, 6, 7}, TopK, 0.01, 1, 2},
	} {
		o := dflt(Options{Strategy: c.strategy, Delta: c.delta, Cap: c.cap, Q: 0.5})
		w, err := NewWeigher(o)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, len(c.l))
		if _, err := w.Weights(dst, c.l, nil, c.r); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		want := refWeights(c.l, refOpts{strategy: c.strategy, delta: c.delta, r: c.r, cap: c.cap, q: 0.5})
		checkClose(t, fmt.Sprintf("%s r=%v cap=%v", c.strategy, c.r, c.cap), dst, want)
	}
}

// Multipliers above 1 with a cap: the projection must see them. (Found by
// the Python suite: an exponent clamp at 0 dropped log m_d > 0.)
func TestCapWithMultipliersAboveOne(t *testing.T) {
	l := []float32{1, 2, 3, 4}
	dom := []int32{0, 1, 0, 1}
	for _, s := range []string{Uniform, LinUpper} {
		w, err := NewWeigher(dflt(Options{Strategy: s, Cap: 10, DomainMultipliers: []float64{2, 1}}))
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, 4)
		if _, err := w.Weights(dst, l, dom, 0.7); err != nil {
			t.Fatal(err)
		}
		want := refWeights(l, refOpts{strategy: s, delta: 1, r: 0.7, cap: 10, mult: []float64{2, 1}, domains: dom})
		checkClose(t, s+" cap with multiplier 2", dst, want)
	}
	if got := refWeights(l, refOpts{strategy: Uniform, r: 1, mult: []float64{2, 1}, domains: dom}); math.Abs(got[0]-1.0/3) > 1e-15 {
		t.Fatalf("reference: %v", got)
	}
}

// dflt fills the zero-valued Strategy, Delta and NonFinite of a test's
// options with DefaultOptions' values (the core itself has no such rule).
func dflt(o Options) Options {
	d := DefaultOptions()
	if o.Strategy == "" {
		o.Strategy = d.Strategy
	}
	if o.Delta == 0 {
		o.Delta = d.Delta
	}
	if o.NonFinite == "" {
		o.NonFinite = d.NonFinite
	}
	return o
}

// TestHugeDomainIDs is issue 13 item 1: per-domain statistics cost
// O(distinct ids), so an id of 2^31-1 neither allocates per id nor
// changes the weights, and the stats carry the ids themselves.
func TestHugeDomainIDs(t *testing.T) {
	l := []float32{1, 2, 3, 4}
	for _, s := range []string{LinUpper, TopK} {
		w, _ := NewWeigher(optsFor(s))
		want := make([]float32, 4)
		if _, err := w.Weights(want, l, []int32{0, 2, 0, 1}, 0.5); err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, 4)
		var st *Stats
		var err error
		allocs := testing.AllocsPerRun(3, func() { st, err = w.Weights(dst, l, []int32{0, math.MaxInt32, 0, 1}, 0.5) })
		if err != nil {
			t.Fatal(err)
		}
		if allocs > 3 {
			t.Errorf("%s: %v allocations per call with a huge id", s, allocs)
		}
		for i := range dst {
			if dst[i] != want[i] {
				t.Fatalf("%s: weights %v with a huge id, %v without", s, dst, want)
			}
		}
		if len(st.Domains) != 3 || st.Domains[2].ID != math.MaxInt32 || st.Domains[2].Count != 1 || st.Domains[0].Count != 2 {
			t.Fatalf("%s: domain stats %+v", s, st.Domains)
		}
		if f := st.Flat(); f["domain/2147483647/count"] != 1 {
			t.Fatalf("%s: flat stats lack the huge id: %v", s, f)
		}
	}
	// Scratch stays O(M), however large the id.
	w, _ := NewWeigher(DefaultOptions())
	dst := make([]float32, 4)
	if _, err := w.Weights(dst, l, []int32{3e7, math.MaxInt32, 5, 1}, 0.5); err != nil {
		t.Fatal(err)
	}
	if cap(w.domTab) > int(denseDomains(4)) || cap(w.dacc[0]) > 4 {
		t.Fatalf("domain scratch grew with the ids: table %d, accumulators %d", cap(w.domTab), cap(w.dacc[0]))
	}
}

// TestMultipliersNeedDomains is issue 13 item 2: domain multipliers with
// no domain ids are a bad argument naming domain_multipliers, for every
// strategy and with a cap, not an index out of range.
func TestMultipliersNeedDomains(t *testing.T) {
	for _, s := range Strategies() {
		for _, c := range []float64{0, 2} {
			o := optsFor(s)
			o.DomainMultipliers, o.Cap = []float64{1, 2}, c
			w, err := NewWeigher(dflt(o))
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Weights(make([]float32, 3), []float32{1, 2, 3}, nil, 1)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "domain_multipliers") {
				t.Fatalf("%s cap=%v: %v", s, c, err)
			}
		}
	}
}
