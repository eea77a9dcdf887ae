package train

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestSeedStatistics checks mean, sd, t quantiles and the paired t
// interval against values computed by hand (and tables of t).
func TestSeedStatistics(t *testing.T) {
	if m, sd := mean([]float64{1, 2, 3, 4}), sampleSD([]float64{1, 2, 3, 4}); m != 2.5 || !near(sd, math.Sqrt(5.0/3), 1e-15) {
		t.Errorf("mean, sd of 1..4 = %v, %v; want 2.5, sqrt(5/3)", m, sd)
	}
	if !math.IsNaN(sampleSD([]float64{7})) || !math.IsNaN(mean(nil)) {
		t.Error("sd of one value and mean of none must be NaN")
	}
	if !math.IsNaN(mean([]float64{1, math.NaN()})) {
		t.Error("a NaN (diverged run) must make the mean NaN")
	}
	for _, c := range []struct {
		p    float64
		dof  int
		want float64
	}{
		{0.975, 1, 12.706205}, {0.975, 2, 4.302653}, {0.975, 4, 2.776445}, {0.975, 9, 2.262157}, {0.5, 3, 0}, {0.025, 2, -4.302653},
	} {
		if got := tQuantile(c.p, c.dof); !near(got, c.want, 5e-7) {
			t.Errorf("t_{%v,%d} = %v, want %v", c.p, c.dof, got, c.want)
		}
	}
	// n = 3: mean 0.02, sd 0.01, half-width 4.302653*0.01/sqrt(3).
	lo, hi, ok := tInterval95([]float64{0.01, 0.02, 0.03})
	h := 4.302653 * 0.01 / math.Sqrt(3)
	if !ok || !near(lo, 0.02-h, 1e-8) || !near(hi, 0.02+h, 1e-8) {
		t.Errorf("CI of 0.01,0.02,0.03 = [%v, %v], want [%v, %v]", lo, hi, 0.02-h, 0.02+h)
	}
	// n = 5: mean -1, sd sqrt(2.5), half-width 2.776445*sqrt(2.5)/sqrt(5) = 2.776445*0.7071068 = 1.963243.
	lo, hi, ok = tInterval95([]float64{-3, -1, 0, 1, -2})
	if !ok || !near(lo, -2.963243, 1e-6) || !near(hi, 0.963243, 1e-6) {
		t.Errorf("CI of -3,-1,0,1,-2 = [%v, %v], want [-2.963243, 0.963243]", lo, hi)
	}
	if _, _, ok := tInterval95([]float64{1}); ok || ci95([]float64{1}) != nil {
		t.Error("one value has no interval")
	}
	// Standard error over windows: domain {1,3}: var 2, n 2 -> 1; domain
	// {0,0,3}: var 3, n 3 -> 1; averaged over 2 domains: sqrt(2)/2.
	if se := standardError([][]float64{{1, 3}, {0, 0, 3}}); !near(se, math.Sqrt2/2, 1e-15) {
		t.Errorf("standard error = %v, want sqrt(2)/2", se)
	}
	w, base := windowLosses{{1, 3}, {0, 0, 3}}, windowLosses{{0, 1}, {0, 1, 1}}
	// Differences {1,2} (var 0.5, n 2 -> 0.25) and {0,-1,2} (var 7/3, n 3 -> 7/9).
	if se := w.pairedSE(base); !near(se, math.Sqrt(0.25+7.0/9)/2, 1e-15) {
		t.Errorf("paired se = %v, want %v", se, math.Sqrt(0.25+7.0/9)/2)
	}
	if se := w.pairedSE(windowLosses{{1}}); !math.IsNaN(se) {
		t.Error("paired se of different windows must be NaN")
	}
}

// TestAggregateOneSeedIsNull checks that one seed gives null (not 0) sd
// and interval in JSON, and that the aggregate of several seeds equals
// the hand computation from the runs.
func TestAggregateOneSeedIsNull(t *testing.T) {
	mk := func(strategy string, seed uint64, v, a, b float64) RunSummary {
		return RunSummary{Strategy: strategy, Seed: seed, ValLoss: Float(v), Val: map[string]Float{"a": Float(a), "b": Float(b)}, MaxWM: 1}
	}
	s := &Summary{Baseline: "uniform", Domains: []string{"a", "b"}, Strategies: map[string]*StrategyStats{},
		Runs: []RunSummary{mk("uniform", 1, 2.0, 1.9, 2.1), mk("linupper", 1, 2.01, 1.91, 2.11)}}
	s.Runs[0].DeltaVsBaseline, s.Runs[1].DeltaVsBaseline = 0, 0.01
	aggregate(s, []string{"uniform", "linupper"})
	b, err := json.Marshal(s.Strategies["linupper"])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"n_seeds":1`, `"val_loss_sd":null`, `"delta_ci95":null`, `"delta_sd":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("one seed: %s lacks %s", b, want)
		}
	}

	// Three seeds, deltas 0.01, 0.02, 0.03 (domain a: 0.01 each, so sd 0
	// and a zero-width interval).
	s = &Summary{Baseline: "uniform", Domains: []string{"a", "b"}, Strategies: map[string]*StrategyStats{}}
	for i, d := range []float64{0.01, 0.02, 0.03} {
		seed := uint64(i + 1)
		u := mk("uniform", seed, 2+float64(i), 1.9, 2.1)
		l := mk("linupper", seed, 2+float64(i)+d, 1.91, 2.1+2*d)
		l.DeltaVsBaseline = Float(d)
		s.Runs = append(s.Runs, u, l)
	}
	aggregate(s, []string{"uniform", "linupper"})
	st := s.Strategies["linupper"]
	h := 4.302653 * 0.01 / math.Sqrt(3)
	if st.NSeeds != 3 || !near(float64(st.DeltaMean), 0.02, 1e-12) || !near(float64(st.DeltaSD), 0.01, 1e-12) ||
		!near(float64(st.DeltaCI95[0]), 0.02-h, 1e-8) || !near(float64(st.DeltaCI95[1]), 0.02+h, 1e-8) || st.SeedsBetter != 0 {
		t.Errorf("linupper aggregate %+v", st)
	}
	if !near(float64(st.ValLossMean), 3.02, 1e-12) || !near(float64(st.ValLossSD), math.Sqrt((1.01*1.01+0+1.01*1.01)/2), 1e-12) {
		t.Errorf("val loss mean ± sd = %v ± %v", st.ValLossMean, st.ValLossSD)
	}
	da, db := st.Domains["a"], st.Domains["b"]
	if !near(float64(da.DeltaMean), 0.01, 1e-12) || !near(float64(da.DeltaSD), 0, 1e-12) || !near(float64(db.DeltaMean), 0.04, 1e-12) ||
		!near(float64(db.DeltaCI95[1]), 0.04+2*h, 1e-8) {
		t.Errorf("per domain: a %+v, b %+v", da, db)
	}
	if u := s.Strategies["uniform"]; u.DeltaMean != 0 || u.DeltaSD != 0 {
		t.Errorf("baseline against itself: %+v", u)
	}
}
