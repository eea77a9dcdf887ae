// Statistics over seeds: mean, sample standard deviation and the paired
// t interval that summary.json and summary.md report.

package train

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// mean returns the arithmetic mean of xs, NaN for none (or when any is
// NaN: a diverged run makes its aggregate unknown, not smaller).
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// sampleSD returns the sample standard deviation of xs (n-1 in the
// denominator), NaN with fewer than two values.
func sampleSD(xs []float64) float64 {
	if len(xs) < 2 {
		return math.NaN()
	}
	m := mean(xs)
	var s float64
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)-1))
}

// tQuantile returns the p-quantile of Student's t distribution with dof
// degrees of freedom (exact, through the inverse regularised incomplete
// beta function).
func tQuantile(p float64, dof int) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(dof)}.Quantile(p)
}

// tInterval95 returns the two-sided 95% confidence interval of the mean of
// xs under the t distribution with n-1 degrees of freedom:
// mean ± t_{0.975,n-1}·sd/√n. For paired differences (one per seed) it is
// the paired t interval. ok is false with fewer than two values.
func tInterval95(xs []float64) (lo, hi float64, ok bool) {
	n := len(xs)
	if n < 2 {
		return math.NaN(), math.NaN(), false
	}
	m, sd := mean(xs), sampleSD(xs)
	h := tQuantile(0.975, n-1) * sd / math.Sqrt(float64(n))
	return m - h, m + h, true
}

// standardError returns the standard error of the mean of the averaged
// quantity (1/D)·Σ_d mean(xs[d]) when each domain's values are independent
// draws: (1/D)·√(Σ_d var_d/n_d), with the sample variance. NaN when a
// domain has fewer than two values.
func standardError(xs [][]float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var v float64
	for _, d := range xs {
		sd := sampleSD(d)
		v += sd * sd / float64(len(d))
	}
	return math.Sqrt(v) / float64(len(xs))
}

// ci95 returns the 95% t interval of the mean of xs as [low, high], or
// nil (JSON null) with fewer than two values.
func ci95(xs []float64) []Float {
	lo, hi, ok := tInterval95(xs)
	if !ok {
		return nil
	}
	return []Float{Float(lo), Float(hi)}
}

var nan64 = math.NaN()
