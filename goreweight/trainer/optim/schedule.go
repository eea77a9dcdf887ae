package optim

import (
	"math"

	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

// LR returns the learning rate of step (counted from 0) under linear warm-up
// followed by cosine decay:
//
//	step < warmup:            max·(step+1)/warmup
//	warmup ≤ step < total:    min + (max−min)·(1 + cos(π·(step−warmup)/(total−warmup)))/2
//	step ≥ total:             min
//
// So the first step already has a non-zero rate, steps warmup−1 and warmup
// run at max, and step total and later at min. With warmup ≤ 0 there is no
// warm-up; with total ≤ warmup the rate is min right after warm-up. A negative
// step counts as 0.
func LR(step, warmup, total int, max, min float64) float64 {
	if step < 0 {
		step = 0
	}
	if step < warmup {
		return max * float64(step+1) / float64(warmup)
	}
	if warmup < 0 {
		warmup = 0
	}
	if step >= total {
		return min
	}
	ratio := float64(step-warmup) / float64(total-warmup)
	return min + (max-min)*0.5*(1+math.Cos(math.Pi*ratio))
}

// ClipGradNorm computes the global L2 norm of all the params' gradients and,
// if maxNorm > 0 and the norm exceeds it, scales every gradient by
// maxNorm/(norm + 1e-6) as PyTorch's clip_grad_norm_ does. It returns the
// norm before clipping. The sum of squares is accumulated in float64 over
// fixed chunks combined in order, so the result does not depend on the
// thread count. If the norm is NaN or ±Inf the gradients are left untouched
// and the non-finite norm is returned, for the caller to skip the step.
func ClipGradNorm(params []*nn.Param, maxNorm float64) (norm float64) {
	var total float64
	for _, p := range params {
		total += sumSquares(p.Grad)
	}
	norm = math.Sqrt(total)
	if math.IsNaN(norm) || math.IsInf(norm, 0) || maxNorm <= 0 || norm <= maxNorm {
		return norm
	}
	scale := float32(maxNorm / (norm + 1e-6))
	for _, p := range params {
		g := p.Grad
		parallel(len(g), grain, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				g[i] *= scale
			}
		})
	}
	return norm
}

// sumSquares returns Σ x² in float64: each fixed chunk of grain elements
// summed on its own (in parallel), then the chunk sums added in order.
func sumSquares(x []float32) float64 {
	nChunks := (len(x) + grain - 1) / grain
	if nChunks <= 1 {
		return chunkSquares(x)
	}
	partial := make([]float64, nChunks)
	parallel(nChunks, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			partial[c] = chunkSquares(x[c*grain : min((c+1)*grain, len(x))])
		}
	})
	var s float64
	for _, p := range partial {
		s += p
	}
	return s
}

// chunkSquares returns Σ x² in float64 with four independent accumulators.
func chunkSquares(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := float64(x[i]), float64(x[i+1]), float64(x[i+2]), float64(x[i+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for ; i < len(x); i++ {
		a := float64(x[i])
		s0 += a * a
	}
	return (s0 + s1) + (s2 + s3)
}
