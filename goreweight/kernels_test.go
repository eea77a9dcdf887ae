package goreweight

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpAVX2Accuracy checks the documented bound of the assembly
// exponential (expVecAVX2, the EXP4 macro of expScoresAVX2) against
// math.Exp on a dense grid, random points and the edges of its domain, and
// that it agrees with expNeg to within the sum of both bounds.
func TestExpAVX2Accuracy(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2+FMA on this CPU")
	}
	const bound = 1e-15
	var xs []float64
	for i := 0; i <= 400000; i++ {
		xs = append(xs, -707*float64(i)/400000)
	}
	rng := rand.New(rand.NewPCG(1, 3))
	for i := 0; i < 500000; i++ {
		xs = append(xs, -rng.Float64()*707, -rng.Float64()*1e-3, -rng.Float64()*2)
	}
	for k := -1030; k <= 1030; k++ { // around every half-integer multiple of ln2, where n changes
		c := float64(k) * math.Ln2 / 2
		for _, d := range []float64{-1e-12, 0, 1e-12} {
			if x := c + d; x <= 0 && x >= expMin {
				xs = append(xs, x, math.Nextafter(x, 0), math.Nextafter(x, -1))
			}
		}
	}
	xs = append(xs, 0, math.Copysign(0, -1), -1e-300, -math.SmallestNonzeroFloat64, -1, -103.3, -706.9999, expMin, 1e-9)
	for len(xs)%4 != 0 {
		xs = append(xs, -0.5)
	}
	got := make([]float64, len(xs))
	expVecAVX2(got, xs)
	worst := 0.0
	for i, x := range xs {
		want := math.Exp(x)
		rel := math.Abs(got[i]-want) / want
		worst = max(worst, rel)
		if rel > bound {
			t.Fatalf("EXP4(%v) = %v, want %v (relative error %.3g > %g)", x, got[i], want, rel, bound)
		}
		if d := math.Abs(got[i]-expNeg(x)) / want; d > bound+2e-15 {
			t.Fatalf("EXP4(%v) = %v, expNeg %v", x, got[i], expNeg(x))
		}
	}
	t.Logf("worst relative error %.3g over %d points", worst, len(xs))
	below := []float64{-707.0001, -708, -1000, -1e300, math.Inf(-1)}
	got = make([]float64, 8)
	expVecAVX2(got, append(below, -800, -750, -710))
	for i, v := range got {
		if v != 0 {
			t.Fatalf("EXP4 lane %d = %v below the domain, want 0", i, v)
		}
	}
}

// withPureGo runs f with the assembly kernels switched off.
func withPureGo(f func()) {
	saved := useAVX2
	useAVX2 = false
	defer func() { useAVX2 = saved }()
	f()
}

// usePureGo switches the assembly kernels off for the rest of the test;
// t.Cleanup restores them, also when the test fails.
func usePureGo(t *testing.T) {
	saved := useAVX2
	useAVX2 = false
	t.Cleanup(func() { useAVX2 = saved })
}

// TestPureGoMatchesReference runs the float64-reference and property tests
// on the pure-Go loops too, which other CPUs use.
func TestPureGoMatchesReference(t *testing.T) {
	if !useAVX2 {
		t.Skip("the pure-Go loops are what every other test runs")
	}
	usePureGo(t)
	TestWeightsMatchReference(t)
	TestHandComputed(t)
	TestUniformIsExactlyOneOverM(t)
	TestAffineInvariance(t)
	TestUnderflowRescue(t)
	TestNonFinite(t)
	TestCapSmallR(t)
	TestExtremeDeltaAndR(t)
}

// TestKernelsMatchPureGo compares the assembly and pure-Go paths on the
// same batches: pass 1 statistics bit for bit (the sums run the same
// chains), weights within a float32 rounding of each other, and the other
// statistics within 1e-12·(1 + 1/r), relative to their scale (the
// exponentials differ by < 1e-15, the exponents by ulps of terms ~1/r).
func TestKernelsMatchPureGo(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2+FMA on this CPU")
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for _, M := range []int{1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 1000, chunkSize - 1, chunkSize + 3, 3*chunkSize + 17} {
		for _, s := range []string{Uniform, LinUpper, Quadratic, Extremes, DROKL} {
			for _, r := range []float64{0.5, 1, 0.05, 1e-3, math.Inf(1)} {
				l := randomBatch(rng, M)
				wa, _ := NewWeigher(optsFor(s))
				wg, _ := NewWeigher(optsFor(s))
				da, dg := make([]float32, M), make([]float32, M)
				sa, ea := wa.Weights(da, l, nil, r)
				var sg *Stats
				var eg error
				withPureGo(func() { sg, eg = wg.Weights(dg, l, nil, r) })
				if (ea == nil) != (eg == nil) {
					t.Fatalf("%s M=%d r=%v: errors differ: %v vs %v", s, M, r, ea, eg)
				}
				if ea != nil {
					continue
				}
				for i := range da {
					a, g := float64(da[i]), float64(dg[i])
					if math.Abs(a-g) > 2.4e-7*math.Max(a, g)+1e-38 {
						t.Fatalf("%s M=%d r=%v: weight %d = %v (AVX2) vs %v (Go)", s, M, r, i, a, g)
					}
				}
				if sa.LossMin != sg.LossMin || sa.LossMax != sg.LossMax || sa.LossMean != sg.LossMean || sa.Uniform != sg.Uniform {
					t.Fatalf("%s M=%d: pass-1 stats differ: %+v vs %+v", s, M, sa, sg)
				}
				// The kernel folds the score arithmetic (expKernelParams): the
				// exponents differ by a few ulps of terms of size ~1/r.
				tol := 1e-12 * (1 + 1/r)
				lmax := math.Max(math.Abs(sa.LossMin), math.Abs(sa.LossMax))
				for _, p := range [][3]float64{{sa.MaxWM, sg.MaxWM, math.Abs(sg.MaxWM)}, {sa.MinWM, sg.MinWM, math.Abs(sg.MinWM)},
					{sa.ESS, sg.ESS, sg.ESS}, {sa.Entropy, sg.Entropy, 1}, {sa.Weighted, sg.Weighted, lmax}} {
					if math.Abs(p[0]-p[1]) > tol*p[2] {
						t.Fatalf("%s M=%d r=%v: stats differ: %+v vs %+v", s, M, r, sa, sg)
					}
				}
			}
		}
	}
}

// BenchmarkKernels times each assembly kernel alone on 4096 L1-resident
// samples (ns/elem; single thread).
func BenchmarkKernels(b *testing.B) {
	if !useAVX2 {
		b.Skip("no AVX2+FMA on this CPU")
	}
	const n = 4096
	rng := rand.New(rand.NewPCG(1, 1))
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(2 + rng.NormFloat64())
	}
	dst := make([]float32, n)
	prm := expParams{lmin: bcast(-3), a: bcast(0.4), b: bcast(-2), c: bcast(0), invR: bcast(2)}
	for _, k := range []struct {
		name string
		kind int
	}{{"linupper", shapeMin}, {"quadratic", shapeQuad}} {
		b.Run("exp/"+k.name, func(b *testing.B) {
			for b.Loop() {
				a := expAcc{zmax: bcast(-inf), zmin: bcast(inf)}
				expScoresAVX2(k.kind, dst, l, &prm, &a)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
		})
	}
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			var a scanAcc
			scanAVX2(l, &a)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
	})
	b.Run("scale", func(b *testing.B) {
		for b.Loop() {
			scaleAVX2(dst, 1)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
	})
}

// TestTinyRFinite: at temperatures so small that the exponents are huge,
// both paths still give finite weights summing to 1 (the kernel hands such
// r, and the rescue pass, to the pure-Go loop).
func TestTinyRFinite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, s := range []string{LinUpper, Quadratic, Extremes, DROKL} {
		for _, r := range []float64{1e-5, 1e-7, 1e-20, 5e-31, 1e-300} {
			for k := 0; k < 100; k++ {
				l := randomBatch(rng, 1+rng.IntN(40))
				for _, pure := range []bool{false, true} {
					w, _ := NewWeigher(optsFor(s))
					dst := make([]float32, len(l))
					var err error
					run := func() { _, err = w.Weights(dst, l, nil, r) }
					if pure {
						withPureGo(run)
					} else {
						run()
					}
					if err != nil {
						continue
					}
					var sum float64
					for i, v := range dst {
						if !(v >= 0) || math.IsInf(float64(v), 0) {
							t.Fatalf("%s r=%v pure=%v: weight %d = %v", s, r, pure, i, v)
						}
						sum += float64(v)
					}
					if math.Abs(sum-1) > 1e-4 {
						t.Fatalf("%s r=%v pure=%v: weights sum to %v", s, r, pure, sum)
					}
				}
			}
		}
	}
}

// TestKernelContract checks the kernel functions themselves, on every
// build: the assembly on amd64 with AVX2, the pure-Go fallbacks of
// kernels_other.go otherwise (go test -tags purego). Each built-in's fold
// against its Score, the scan's lanes and the scale.
func TestKernelContract(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	const n = 64
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(2 + rng.NormFloat64())
	}
	lmin, lmax := float64(l[0]), float64(l[0])
	for _, v := range l {
		lmin, lmax = min(lmin, float64(v)), max(lmax, float64(v))
	}
	for _, b := range builtins {
		if b.kernel == nil {
			continue
		}
		d, r := 1.5, 0.7
		sc, invR := 2*d/(lmax-lmin), 1/r
		shape, A, B, C := b.kernel(sc, invR, d)
		prm := expParams{lmin: bcast(lmin), a: bcast(A), b: bcast(B), c: bcast(C), invR: bcast(invR)}
		acc := expAcc{zmax: bcast(-inf), zmin: bcast(inf)}
		dst := make([]float32, n)
		expScoresAVX2(shape, dst, l, &prm, &acc)
		var sum float64
		for i, v := range l {
			s := []float64{0}
			b.score(s, []float64{(float64(v)-lmin)*sc - d}, d)
			e := math.Exp((s[0] - b.hi(d)) * invR)
			sum += e
			if math.Abs(float64(dst[i])-e) > 1e-6*e {
				t.Fatalf("%s: kernel weight %d = %v, want %v", b.name, i, dst[i], e)
			}
		}
		if got := sum4(&acc.s); math.Abs(got-sum) > 1e-12*sum {
			t.Fatalf("%s: kernel Σe = %v, want %v", b.name, got, sum)
		}
	}
	a := scanAcc{}
	for k := range a.mn {
		a.mn[k], a.mx[k] = l[0], l[0]
	}
	scanAVX2(l, &a)
	var s float64
	for _, v := range l {
		s += float64(v)
	}
	if mn, mx := min4f(a.mn[:]), max4f(a.mx[:]); float64(mn) != lmin || float64(mx) != lmax || math.Abs(sum4(&a.s)-s) > 1e-12*s {
		t.Fatalf("scan: min %v max %v sum %v, want %v %v %v", mn, mx, sum4(&a.s), lmin, lmax, s)
	}
	c := append([]float32(nil), l...)
	scaleAVX2(c, 0.25)
	for i := range c {
		if c[i] != float32(float64(l[i])*0.25) {
			t.Fatalf("scale: %v, want %v", c[i], l[i]*0.25)
		}
	}
}

func min4f(v []float32) float32 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func max4f(v []float32) float32 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
