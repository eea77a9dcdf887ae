package gpt

import (
	"fmt"
	"math"
)

// layerActs are one block's forward activations (N = B*T rows).
type layerActs struct {
	ln1, ln1Mean, ln1Rstd []float32 // N×C, N, N
	qkv                   []float32 // N×3C
	att                   []float32 // B×H×T×T attention probabilities
	atty                  []float32 // N×C attention output, before c_proj
	attProj               []float32 // N×C
	res2                  []float32 // N×C residual after attention
	ln2, ln2Mean, ln2Rstd []float32 // N×C, N, N
	fc, fcGelu            []float32 // N×4C before and after GELU
	fcTanh                []float32 // N×4C the tanh inside GELU, for its backward
	fcProj                []float32 // N×C
	res3                  []float32 // N×C residual after the MLP: the block's output
}

// acts are a forward pass's activations and per-sequence results.
type acts struct {
	B, T             int
	tokens, targets  []int32   // copies of the inputs
	x0               []float32 // N×C embeddings
	layers           []layerActs
	lnf, lnfMean     []float32 // N×C, N
	lnfRstd          []float32 // N
	probs            []float32 // N×V logits, then softmax in place
	tokLoss          []float32 // N per-token losses
	loss             []float64 // B per-sequence mean losses (NaN when count is 0)
	count            []int     // B non-ignored targets per sequence
	slab             []float32
	slabTok, slabTgt []int32
}

// layer returns the activations of block l; with a single slot every block shares it.
func (a *acts) layer(l int) *layerActs { return &a.layers[l%len(a.layers)] }

// sequenceLosses returns the per-sequence losses as a new float32 slice.
func (a *acts) sequenceLosses() []float32 {
	out := make([]float32, a.B)
	for b, l := range a.loss {
		out[b] = float32(l)
	}
	return out
}

// tokenLosses returns the per-token losses as a new B×T slice, NaN where the
// target is ignored.
func (a *acts) tokenLosses() []float32 {
	out := make([]float32, a.B*a.T)
	nan := float32(math.NaN())
	for i, tg := range a.targets {
		if tg < 0 {
			out[i] = nan
		} else {
			out[i] = a.tokLoss[i]
		}
	}
	return out
}

// carver hands out consecutive windows of a slab; with slab nil it only counts.
type carver struct {
	slab []float32
	off  int
}

func (c *carver) take(n int) []float32 {
	off := c.off
	c.off += n
	if c.slab == nil {
		return nil
	}
	return c.slab[off : off+n : off+n]
}

// size returns the number of float32s of B×T activations with nLayers slots,
// or an error when it is unreasonably large.
func actSize(cfg Config, B, T, nLayers int) (int, error) {
	N, C := int64(B)*int64(T), int64(cfg.Width)
	perLayer := N*(22*C+4) + int64(B)*int64(cfg.Heads)*int64(T)*int64(T)
	total := int64(nLayers)*perLayer + N*(2*C+2+int64(cfg.Vocab)+1)
	if total > maxElements || perLayer > maxElements {
		return 0, fmt.Errorf("gpt: activations for B=%d T=%d need %d floats, too many", B, T, total)
	}
	return int(total), nil
}

// ensure sizes a for B×T with nLayers slots, reusing its slab when it is big enough.
func (a *acts) ensure(cfg Config, B, T, nLayers int) error {
	if a.B == B && a.T == T && len(a.layers) == nLayers {
		return nil
	}
	n, err := actSize(cfg, B, T, nLayers)
	if err != nil {
		return err
	}
	if cap(a.slab) < n {
		a.slab = nil // let the old one go before allocating the new one
		a.slab = make([]float32, n)
	}
	N := B * T
	if cap(a.slabTok) < N {
		a.slabTok, a.slabTgt = make([]int32, N), make([]int32, N)
	}
	c := &carver{slab: a.slab[:n]}
	C, H, V := cfg.Width, cfg.Heads, cfg.Vocab
	a.B, a.T = B, T
	a.tokens, a.targets = a.slabTok[:N], a.slabTgt[:N]
	a.x0 = c.take(N * C)
	a.layers = make([]layerActs, nLayers)
	for l := range a.layers {
		la := &a.layers[l]
		la.ln1, la.ln1Mean, la.ln1Rstd = c.take(N*C), c.take(N), c.take(N)
		la.qkv = c.take(N * 3 * C)
		la.att = c.take(B * H * T * T)
		la.atty, la.attProj, la.res2 = c.take(N*C), c.take(N*C), c.take(N*C)
		la.ln2, la.ln2Mean, la.ln2Rstd = c.take(N*C), c.take(N), c.take(N)
		la.fc, la.fcGelu, la.fcTanh = c.take(N*4*C), c.take(N*4*C), c.take(N*4*C)
		la.fcProj, la.res3 = c.take(N*C), c.take(N*C)
	}
	a.lnf, a.lnfMean, a.lnfRstd = c.take(N*C), c.take(N), c.take(N)
	a.probs = c.take(N * V)
	a.tokLoss = c.take(N)
	if c.off != n {
		return fmt.Errorf("gpt: internal error: carved %d floats of %d", c.off, n)
	}
	a.loss, a.count = make([]float64, B), make([]int, B)
	for b := range a.loss {
		a.loss[b] = math.NaN()
	}
	return nil
}

// grads are the activation gradients of Backward: one block's worth, reused
// from the top block down.
type grads struct {
	B, T      int
	dtokLoss  []float32 // N
	dlogits   []float32 // N×V
	dlnf      []float32 // N×C
	dres, dx  []float32 // N×C: dL/d(block output), dL/d(block input)
	layerSlab []float32 // the per-block buffers below, cleared together
	dres2     []float32 // N×C
	dfcProj   []float32 // N×C
	dfcGelu   []float32 // N×4C
	dfc       []float32 // N×4C
	dln2      []float32 // N×C
	dattProj  []float32 // N×C
	datty     []float32 // N×C
	dqkv      []float32 // N×3C
	dln1      []float32 // N×C
	slab      []float32
}

// ensure sizes g for B×T (the sizes were already checked by acts.ensure).
func (g *grads) ensure(cfg Config, B, T int) {
	if g.B == B && g.T == T {
		return
	}
	N, C, V := B*T, cfg.Width, cfg.Vocab
	perLayer := N * 17 * C
	n := N + N*V + 3*N*C + perLayer
	if cap(g.slab) < n {
		g.slab = nil
		g.slab = make([]float32, n)
	}
	c := &carver{slab: g.slab[:n]}
	g.B, g.T = B, T
	g.dtokLoss, g.dlogits, g.dlnf = c.take(N), c.take(N*V), c.take(N*C)
	g.dres, g.dx = c.take(N*C), c.take(N*C)
	g.layerSlab = c.take(perLayer)
	l := &carver{slab: g.layerSlab}
	g.dres2, g.dfcProj = l.take(N*C), l.take(N*C)
	g.dfcGelu, g.dfc = l.take(N*4*C), l.take(N*4*C)
	g.dln2, g.dattProj, g.datty = l.take(N*C), l.take(N*C), l.take(N*C)
	g.dqkv, g.dln1 = l.take(N*3*C), l.take(N*C)
}
