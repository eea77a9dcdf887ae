package nn

import (
	"math"

	"github.com/goreweight/goreweight/goreweight/trainer/nn/internal/fastmath"
)

// SoftmaxCrossEntropy turns rows of logits into probabilities and per-row
// cross-entropy losses against integer targets; a negative target marks a row
// to ignore (loss 0, no gradient).
type SoftmaxCrossEntropy struct{}

// Forward writes softmax(logits) into probs and, for each of the n = len(targets)
// rows of V logits, losses[i] = logsumexp(logits[i]) - logits[i, targets[i]]
// (0 where targets[i] < 0). probs may alias logits. Targets must be < V.
func (SoftmaxCrossEntropy) Forward(probs, losses, logits []float32, targets []int32, V int) {
	parallelFor(len(targets), 16, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			l := logits[i*V : (i+1)*V]
			p := probs[i*V : (i+1)*V]
			tgt := targets[i]
			var lt float32
			if tgt >= 0 {
				lt = l[tgt] // read before p (possibly l) is overwritten
			}
			mx := fastmath.Max(l)
			if &p[0] != &l[0] {
				copy(p, l)
			}
			sum := float64(fastmath.ExpSum(p, mx))
			fastmath.Scale(p, float32(1/sum))
			if tgt < 0 {
				losses[i] = 0
				continue
			}
			losses[i] = float32(math.Log(sum) + float64(mx) - float64(lt))
		}
	})
}

// Backward adds dLosses[i] * (probs[i] - onehot(targets[i])) to row i of
// dLogits (n×V). Rows with a negative target or a zero dLosses entry are left
// untouched, so they never contribute, not even 0*Inf.
func (SoftmaxCrossEntropy) Backward(dLogits, dLosses, probs []float32, targets []int32, V int) {
	parallelFor(len(targets), 16, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			tgt, dl := targets[i], dLosses[i]
			if tgt < 0 || dl == 0 {
				continue
			}
			p := probs[i*V : (i+1)*V]
			d := dLogits[i*V : (i+1)*V]
			for j, pv := range p {
				d[j] += dl * pv
			}
			d[tgt] -= dl
		}
	})
}
