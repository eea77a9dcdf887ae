// Package optim holds the optimiser side of goreweight's Go-native trainer:
// AdamW with decoupled weight decay, the warm-up plus cosine learning-rate
// schedule, and global gradient-norm clipping. Everything is elementwise or
// reduced in a fixed order, so results are bitwise reproducible whatever the
// thread count.
package optim

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	iparallel "github.com/goreweight/goreweight/goreweight/internal/parallel"
	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

// Config holds AdamW's hyperparameters. The learning rate is not part of it:
// it changes every step and is passed to Step.
type Config struct {
	// Beta1 and Beta2 are the decay rates of the first and second moment
	// estimates, in [0, 1).
	Beta1, Beta2 float64
	// Eps is added to the denominator, > 0.
	Eps float64
	// WeightDecay is the decoupled decay coefficient λ (≥ 0), applied only to
	// parameters with Decay set: p ← p·(1 − lr·λ).
	WeightDecay float64
}

// DefaultConfig returns Beta1 0.9, Beta2 0.95, Eps 1e-8 and WeightDecay 0.1,
// the usual GPT pretraining settings.
func DefaultConfig() Config {
	return Config{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
}

// Validate reports the first invalid hyperparameter, or nil.
func (c Config) Validate() error {
	switch {
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("optim: Beta1 = %g, must be in [0, 1)", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("optim: Beta2 = %g, must be in [0, 1)", c.Beta2)
	case !(c.Eps > 0) || math.IsInf(c.Eps, 0):
		return fmt.Errorf("optim: Eps = %g, must be positive and finite", c.Eps)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("optim: WeightDecay = %g, must be non-negative and finite", c.WeightDecay)
	}
	return nil
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter), with the
// same update as PyTorch's torch.optim.AdamW. For each parameter element,
// with gradient g at step t = 1, 2, ...:
//
//	p ← p·(1 − lr·λ)                     (only if the Param has Decay)
//	m ← β1·m + (1 − β1)·g
//	v ← β2·v + (1 − β2)·g²
//	p ← p − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + ε)
//
// computed in float64 per element and stored in float32. Its state is the
// step count and the m and v moments; SaveState and LoadState move it
// exactly.
type AdamW struct {
	cfg    Config
	params []*nn.Param
	m, v   [][]float32
	step   int64
}

// NewAdamW returns an AdamW over params (kept by reference, in this order)
// with zero moments.
func NewAdamW(params []*nn.Param, cfg Config) (*AdamW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(params) == 0 {
		return nil, errors.New("optim: no parameters")
	}
	o := &AdamW{cfg: cfg, params: append([]*nn.Param(nil), params...)}
	seen := map[string]bool{}
	for i, p := range params {
		if p == nil {
			return nil, fmt.Errorf("optim: params[%d] is nil", i)
		}
		if len(p.Grad) != len(p.Data) {
			return nil, fmt.Errorf("optim: param %q has %d values but %d gradients", p.Name, len(p.Data), len(p.Grad))
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("optim: two params are named %q", p.Name)
		}
		seen[p.Name] = true
		o.m = append(o.m, make([]float32, len(p.Data)))
		o.v = append(o.v, make([]float32, len(p.Data)))
	}
	return o, nil
}

// Config returns the hyperparameters.
func (o *AdamW) Config() Config { return o.cfg }

// Steps returns the number of updates taken (t of the last Step).
func (o *AdamW) Steps() int64 { return o.step }

// Step applies one AdamW update with learning rate lr to every parameter,
// from the gradients in their Grad (which it does not modify). It returns an
// error, changing nothing, if lr is negative or not finite or if any gradient
// is NaN or ±Inf.
func (o *AdamW) Step(lr float64) error {
	if !(lr >= 0) || math.IsInf(lr, 0) {
		return fmt.Errorf("optim: learning rate %g, must be non-negative and finite", lr)
	}
	for _, p := range o.params {
		if i := firstNonFinite(p.Grad); i >= 0 {
			return fmt.Errorf("optim: gradient of %q[%d] is %g; no update taken", p.Name, i, p.Grad[i])
		}
	}
	o.step++
	t := float64(o.step)
	b1, b2 := o.cfg.Beta1, o.cfg.Beta2
	stepSize := lr / (1 - math.Pow(b1, t))
	sqrtBC2 := math.Sqrt(1 - math.Pow(b2, t))
	eps := o.cfg.Eps
	for k, p := range o.params {
		decay := 1.0
		if p.Decay {
			decay = 1 - lr*o.cfg.WeightDecay
		}
		data, grad, m, v := p.Data, p.Grad, o.m[k], o.v[k]
		kc := [8]float64{b1, 1 - b1, b2, 1 - b2, decay, stepSize, sqrtBC2, eps}
		parallel(len(data), grain, func(lo, hi int) {
			adamwKernel(data[lo:hi], grad[lo:hi], m[lo:hi], v[lo:hi], &kc)
		})
	}
	return nil
}

// adamwScalar is the AdamW update of one chunk, in float64; k holds b1,
// 1-b1, b2, 1-b2, decay, stepSize, sqrtBC2 and eps. adamwKernel runs it, or
// on amd64 an AVX kernel with bitwise the same results.
func adamwScalar(data, grad, m, v []float32, k *[8]float64) {
	b1, c1, b2, c2, decay, stepSize, sqrtBC2, eps := k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
	for i := range data {
		g := float64(grad[i])
		mi := b1*float64(m[i]) + c1*g
		vi := b2*float64(v[i]) + c2*g*g
		m[i], v[i] = float32(mi), float32(vi)
		x := float64(data[i]) * decay
		data[i] = float32(x - stepSize*mi/(math.Sqrt(vi)/sqrtBC2+eps))
	}
}

// firstNonFinite returns the index of the first NaN or ±Inf in x, or -1.
// Long slices are scanned in parallel chunks; the smallest index found wins.
func firstNonFinite(x []float32) int {
	var first atomic.Int64
	first.Store(math.MaxInt64)
	parallel(len(x), grain, func(lo, hi int) {
		for i, v := range x[lo:hi] {
			if v-v != 0 { // NaN or ±Inf
				for j := int64(lo + i); ; {
					cur := first.Load()
					if j >= cur || first.CompareAndSwap(cur, j) {
						return
					}
				}
			}
		}
	})
	if f := first.Load(); f != math.MaxInt64 {
		return int(f)
	}
	return -1
}

// grain is the fewest elements worth a goroutine of their own, and the fixed
// chunk of ClipGradNorm's partial sums.
const grain = 1 << 14

// parallel runs fn over [0, n) split into at most nn.Threads() contiguous
// chunks of at least minChunk items (parallel.Split); fn must treat every
// index independently.
func parallel(n, minChunk int, fn func(lo, hi int)) {
	iparallel.Split(n, minChunk, nn.Threads(), func(_, lo, hi int) { fn(lo, hi) })
}
