package goreweight

import (
	"math"
	"sort"
)

// refOpts are the inputs of the float64 reference implementation.
type refOpts struct {
	strategy string
	delta, r float64
	q        float64
	cap      float64
	mult     []float64
	domains  []int32
}

// refWeights is an independent, deliberately plain float64 implementation
// of the method (method.md, steps 1-3), written from the paper's formulas
// and not sharing code with the production path. Non-finite losses get 0.
func refWeights(losses []float32, o refOpts) []float64 {
	M := len(losses)
	w := make([]float64, M)
	var fin []int
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, l := range losses {
		v := float64(l)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		fin = append(fin, i)
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	mult := func(i int) float64 {
		if o.mult == nil {
			return 1
		}
		return o.mult[o.domains[i]]
	}
	uniform := o.strategy == Uniform || math.IsInf(o.r, 1) || hi-lo <= 8*0x1p-23*math.Max(math.Abs(lo), math.Abs(hi))
	score := make([]float64, M)
	logw := make([]float64, M)
	switch {
	case uniform:
	case o.strategy == TopK || o.strategy == Truncate:
		order := append([]int(nil), fin...)
		sort.SliceStable(order, func(a, b int) bool { return losses[order[a]] > losses[order[b]] })
		n := len(fin)
		var keep []int
		if o.strategy == TopK {
			k := int(math.Ceil(o.q*float64(n) - 1e-9))
			keep = order[:max(1, min(k, n))]
		} else {
			drop := int(math.Floor(o.q*float64(n) + 1e-9))
			keep = order[min(drop, n-1):]
		}
		for _, i := range fin {
			score[i] = math.Inf(-1)
		}
		for _, i := range keep {
			score[i] = 0
		}
	default:
		d := o.delta
		for _, i := range fin {
			x := 2*d*(float64(losses[i])-lo)/(hi-lo) - d
			switch o.strategy {
			case LinUpper:
				score[i] = math.Min(x+d, d)
			case Quadratic:
				score[i] = 1 - x*x/(d*d)
			case Extremes:
				score[i] = math.Abs(x)
			case DROKL:
				score[i] = x
			}
		}
	}
	smax := math.Inf(-1)
	for _, i := range fin {
		r := o.r
		if uniform {
			r = math.Inf(1)
		}
		logw[i] = math.Log(mult(i))
		if !math.IsInf(r, 1) {
			logw[i] += score[i] / r
		} else if math.IsInf(score[i], -1) {
			logw[i] = math.Inf(-1)
		}
		smax = math.Max(smax, logw[i])
	}
	var sum float64
	for _, i := range fin {
		w[i] = math.Exp(logw[i] - smax)
		sum += w[i]
	}
	for _, i := range fin {
		w[i] /= sum
	}
	if o.cap > 0 {
		T := o.cap / float64(len(fin))
		refCap(w, T)
	}
	return w
}

// refCap projects w onto {Σw = 1, w <= T} by sorting: the k largest are
// capped for the smallest k such that the rescaled rest stays under T.
func refCap(w []float64, T float64) {
	order := make([]int, len(w))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return w[order[a]] > w[order[b]] })
	// suffix sums, accumulated from the smallest weight up
	suf := make([]float64, len(w)+1)
	for k := len(w) - 1; k >= 0; k-- {
		suf[k] = suf[k+1] + w[order[k]]
	}
	for k := 0; k <= len(w); k++ {
		rest := suf[k]
		if rest <= 0 {
			break
		}
		lambda := (1 - float64(k)*T) / rest
		if k == len(w) || lambda*w[order[k]] <= T {
			for j, i := range order {
				if j < k {
					w[i] = T
				} else {
					w[i] *= lambda
				}
			}
			return
		}
	}
	for _, i := range order {
		if w[i] > 0 {
			w[i] = T
		}
	}
}
