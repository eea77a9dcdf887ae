// Package gpt is a GPT-2 style decoder-only transformer in float32 with
// hand-written backward passes, built from the layers of package nn.
//
// The architecture: token plus learned position embeddings; Layers pre-LayerNorm
// blocks, each causal multi-head self-attention and a 4×-wide GELU (tanh) MLP,
// both added to the residual stream; a final LayerNorm; and a language-model
// head tied to the token embedding. Parameter names follow Hugging Face's GPT-2
// ("wte", "h.0.attn.c_attn.weight", ...), with matrices stored in
// nn.Linear's [out, in] layout.
//
// The loss is per sequence: Forward returns the mean token cross-entropy of
// each of the B sequences, and Backward takes one constant weight per sequence
// and accumulates the gradient of the weighted sum. That is what loss-based
// sample reweighting needs: the weights are computed from the losses between
// the two calls. For token-level weighting, TokenLosses (or EvaluateTokens)
// gives the per-token cross-entropies and BackwardTokens takes one weight per
// target token.
//
// A Model is not safe for concurrent use. Its buffers are sized by the
// largest (B, T) seen and reused, so steady-state steps do not allocate
// activations.
package gpt

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

// Model is a GPT with its parameters, their gradients, and the activations of
// the latest Forward.
type Model struct {
	cfg    Config
	params []*nn.Param
	data   []float32 // all parameter values, params' Data are windows into it
	grad   []float32 // all gradients, likewise

	emb    nn.Embedding
	blocks []block
	lnf    nn.LayerNorm
	head   nn.Linear // W is the token embedding (weight tying), no bias
	attn   nn.Attention
	gelu   nn.GELU
	res    nn.Residual
	ce     nn.SoftmaxCrossEntropy

	train acts  // one set of activations per layer, kept for Backward
	eval  acts  // one layer's worth, reused by Evaluate
	grads grads // activation gradients of Backward

	ready bool // train holds the activations of a Forward
}

// block holds one transformer block's layers.
type block struct {
	ln1     nn.LayerNorm
	qkv     nn.Linear // c_attn: C -> 3C
	attProj nn.Linear // attn.c_proj: C -> C
	ln2     nn.LayerNorm
	fc      nn.Linear // mlp.c_fc: C -> 4C
	fcProj  nn.Linear // mlp.c_proj: 4C -> C
}

// initStd is GPT-2's initialisation standard deviation.
const initStd = 0.02

// New returns a model of shape cfg initialised from seed the GPT-2 way: every
// matrix and embedding N(0, 0.02), the two residual projections of each block
// (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2*Layers)), biases 0, LayerNorm
// weights 1 and biases 0. Each tensor draws from its own PCG stream keyed by
// (seed, tensor index), so the same seed gives bitwise the same model.
func New(cfg Config, seed uint64) (*Model, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	projStd := initStd / math.Sqrt(2*float64(cfg.Layers))
	for i, p := range m.params {
		switch {
		case isLNWeight(p.Name):
			for j := range p.Data {
				p.Data[j] = 1
			}
		case !p.Decay: // biases and LayerNorm biases
			clear(p.Data)
		default:
			std := initStd
			if isResidualProj(p.Name) {
				std = projStd
			}
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			for j := range p.Data {
				p.Data[j] = float32(r.NormFloat64() * std)
			}
		}
	}
	return m, nil
}

// newModel allocates a zeroed model of shape cfg and wires its layers.
func newModel(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n, _ := cfg.numParams()
	m := &Model{cfg: cfg, data: make([]float32, n), grad: make([]float32, n)}
	off := 0
	param := func(name string, decay bool, shape ...int) *nn.Param {
		size := 1
		for _, d := range shape {
			size *= d
		}
		p := &nn.Param{Name: name, Data: m.data[off : off+size : off+size], Grad: m.grad[off : off+size : off+size], Shape: shape, Decay: decay}
		off += size
		m.params = append(m.params, p)
		return p
	}
	V, S, C := cfg.Vocab, cfg.Seq, cfg.Width
	m.emb = nn.Embedding{Tok: param("wte", true, V, C), Pos: param("wpe", true, S, C)}
	m.blocks = make([]block, cfg.Layers)
	for l := range m.blocks {
		pre := fmt.Sprintf("h.%d.", l)
		b := &m.blocks[l]
		b.ln1 = nn.LayerNorm{W: param(pre+"ln_1.weight", false, C), B: param(pre+"ln_1.bias", false, C)}
		b.qkv = nn.Linear{W: param(pre+"attn.c_attn.weight", true, 3*C, C), B: param(pre+"attn.c_attn.bias", false, 3*C)}
		b.attProj = nn.Linear{W: param(pre+"attn.c_proj.weight", true, C, C), B: param(pre+"attn.c_proj.bias", false, C)}
		b.ln2 = nn.LayerNorm{W: param(pre+"ln_2.weight", false, C), B: param(pre+"ln_2.bias", false, C)}
		b.fc = nn.Linear{W: param(pre+"mlp.c_fc.weight", true, 4*C, C), B: param(pre+"mlp.c_fc.bias", false, 4*C)}
		b.fcProj = nn.Linear{W: param(pre+"mlp.c_proj.weight", true, C, 4*C), B: param(pre+"mlp.c_proj.bias", false, C)}
	}
	m.lnf = nn.LayerNorm{W: param("ln_f.weight", false, C), B: param("ln_f.bias", false, C)}
	m.head = nn.Linear{W: m.emb.Tok}
	m.attn = nn.Attention{Heads: cfg.Heads}
	if off != n {
		return nil, fmt.Errorf("gpt: internal error: laid out %d parameters, expected %d", off, n)
	}
	return m, nil
}

func isLNWeight(name string) bool {
	return hasSuffix(name, "ln_1.weight") || hasSuffix(name, "ln_2.weight") || name == "ln_f.weight"
}

func isResidualProj(name string) bool {
	return hasSuffix(name, "attn.c_proj.weight") || hasSuffix(name, "mlp.c_proj.weight")
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// Config returns the model's shape.
func (m *Model) Config() Config { return m.cfg }

// NumParams returns the number of scalar parameters (the tied head counted once).
func (m *Model) NumParams() int { return len(m.data) }

// Params returns the model's parameters in a fixed order: wte, wpe, then per
// block ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj (weight
// before bias), then ln_f. Data and Grad alias the model's storage; the slice
// itself is a copy.
func (m *Model) Params() []*nn.Param { return append([]*nn.Param(nil), m.params...) }

// ZeroGrad sets every parameter gradient to zero.
func (m *Model) ZeroGrad() { nn.Zero(m.grad) }

// checkBatch validates the arguments of Forward and Evaluate.
func (m *Model) checkBatch(tokens, targets []int32, B, T int) error {
	if B < 1 {
		return fmt.Errorf("gpt: batch size B = %d, must be at least 1", B)
	}
	if T < 1 || T > m.cfg.Seq {
		return fmt.Errorf("gpt: sequence length T = %d, must be in [1, %d] (Config.Seq)", T, m.cfg.Seq)
	}
	if B > maxElements/T {
		return fmt.Errorf("gpt: batch %d×%d is too large", B, T)
	}
	if len(tokens) != B*T {
		return fmt.Errorf("gpt: len(tokens) = %d, want B*T = %d*%d = %d", len(tokens), B, T, B*T)
	}
	if len(targets) != B*T {
		return fmt.Errorf("gpt: len(targets) = %d, want B*T = %d*%d = %d", len(targets), B, T, B*T)
	}
	V := int32(m.cfg.Vocab)
	for i, tok := range tokens {
		if tok < 0 || tok >= V {
			return fmt.Errorf("gpt: tokens[%d] = %d (sequence %d, position %d) is outside the vocabulary [0, %d)", i, tok, i/T, i%T, V)
		}
	}
	for i, tg := range targets {
		if tg < -1 || tg >= V {
			return fmt.Errorf("gpt: targets[%d] = %d (sequence %d, position %d) is outside [0, %d) and not -1 (ignore)", i, tg, i/T, i%T, V)
		}
	}
	return nil
}

// Forward runs the model on B sequences of length T <= Config.Seq; tokens and
// targets are row-major B×T and a target of -1 is ignored. It returns a new
// slice of per-sequence losses: losses[b] is the mean token cross-entropy (in
// nats) over the non-ignored targets of sequence b, or NaN when sequence b has
// none. The activations are kept for Backward.
func (m *Model) Forward(tokens, targets []int32, B, T int) ([]float32, error) {
	if err := m.checkBatch(tokens, targets, B, T); err != nil {
		return nil, err
	}
	m.ready = false
	if err := m.train.ensure(m.cfg, B, T, m.cfg.Layers); err != nil {
		return nil, err
	}
	m.forward(&m.train, tokens, targets)
	m.ready = true
	return m.train.sequenceLosses(), nil
}

// Evaluate is Forward without keeping activations for Backward: its buffers
// hold one block's activations instead of Layers', so it needs far less
// memory for large batches. It leaves the state of the latest Forward, and so
// what Backward would differentiate, untouched. Its losses are bitwise equal
// to Forward's.
func (m *Model) Evaluate(tokens, targets []int32, B, T int) ([]float32, error) {
	if err := m.checkBatch(tokens, targets, B, T); err != nil {
		return nil, err
	}
	if err := m.eval.ensure(m.cfg, B, T, 1); err != nil {
		return nil, err
	}
	m.forward(&m.eval, tokens, targets)
	return m.eval.sequenceLosses(), nil
}

// forward runs the network on a.B×a.T tokens. With a single layer slot in a,
// every block reuses it: a block's input (the previous block's res3) is dead
// by the time the block overwrites res3.
func (m *Model) forward(a *acts, tokens, targets []int32) {
	B, T, N := a.B, a.T, a.B*a.T
	copy(a.tokens, tokens)
	copy(a.targets, targets)
	m.emb.Forward(a.x0, a.tokens, B, T)
	x := a.x0
	for l := range m.blocks {
		b, la := &m.blocks[l], a.layer(l)
		b.ln1.Forward(la.ln1, la.ln1Mean, la.ln1Rstd, x, N)
		b.qkv.Forward(la.qkv, la.ln1, N)
		m.attn.Forward(la.atty, la.att, la.qkv, B, T)
		b.attProj.Forward(la.attProj, la.atty, N)
		m.res.Forward(la.res2, x, la.attProj)
		b.ln2.Forward(la.ln2, la.ln2Mean, la.ln2Rstd, la.res2, N)
		b.fc.Forward(la.fc, la.ln2, N)
		m.gelu.Forward(la.fcGelu, la.fcTanh, la.fc)
		b.fcProj.Forward(la.fcProj, la.fcGelu, N)
		m.res.Forward(la.res3, la.res2, la.fcProj)
		x = la.res3
	}
	m.lnf.Forward(a.lnf, a.lnfMean, a.lnfRstd, x, N)
	m.head.Forward(a.probs, a.lnf, N)
	m.ce.Forward(a.probs, a.tokLoss, a.probs, a.targets, m.cfg.Vocab)
	// Per-sequence means, in float64 and in token order.
	for b := 0; b < B; b++ {
		var s float64
		n := 0
		for t := 0; t < T; t++ {
			if a.targets[b*T+t] >= 0 {
				s += float64(a.tokLoss[b*T+t])
				n++
			}
		}
		a.count[b] = n
		a.loss[b] = math.NaN()
		if n > 0 {
			a.loss[b] = s / float64(n)
		}
	}
}

// Backward back-propagates L = Σ_b weights[b]·losses[b] through the latest
// Forward and ADDS dL/dθ to every parameter's Grad (call ZeroGrad first for a
// fresh gradient). The weights are constants, one per sequence. A sequence
// with weight 0 contributes nothing, so a NaN-loss sequence (no target) must
// have weight 0; giving it any other weight, or a non-finite weight, is an
// error. With every weight 1/B the result is the gradient of the plain mean of
// the per-sequence losses. Backward may be repeated for the same Forward.
func (m *Model) Backward(weights []float32) error {
	if !m.ready {
		return errors.New("gpt: Backward needs a successful Forward first")
	}
	a, cfg := &m.train, m.cfg
	B, T := a.B, a.T
	if len(weights) != B {
		return fmt.Errorf("gpt: len(weights) = %d, want the batch size %d of the latest Forward", len(weights), B)
	}
	for b, w := range weights {
		if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
			return fmt.Errorf("gpt: weights[%d] = %g is not finite", b, w)
		}
		if w != 0 && a.count[b] == 0 {
			return fmt.Errorf("gpt: weights[%d] = %g but sequence %d has no non-ignored target (its loss is NaN); give it weight 0", b, w, b)
		}
	}
	g := &m.grads
	g.ensure(cfg, B, T)
	// dL/dtokLoss[b,t] = weights[b] / count[b] for each non-ignored target.
	for b, w := range weights {
		for t := 0; t < T; t++ {
			d := float32(0)
			if w != 0 && a.targets[b*T+t] >= 0 {
				d = float32(float64(w) / float64(a.count[b]))
			}
			g.dtokLoss[b*T+t] = d
		}
	}
	m.backward()
	return nil
}

// TokenLosses returns the per-token losses of the latest Forward as a new
// B×T row-major slice: the cross-entropy (in nats) of each target, NaN where
// the target is ignored (-1). The mean of row b's non-NaN entries is
// Forward's losses[b].
func (m *Model) TokenLosses() ([]float32, error) {
	if !m.ready {
		return nil, errors.New("gpt: TokenLosses needs a successful Forward first")
	}
	return m.train.tokenLosses(), nil
}

// EvaluateTokens is Evaluate returning per-token losses (see TokenLosses):
// no activations are kept for Backward, and the losses are bitwise equal to
// those TokenLosses gives after a Forward of the same batch.
func (m *Model) EvaluateTokens(tokens, targets []int32, B, T int) ([]float32, error) {
	if err := m.checkBatch(tokens, targets, B, T); err != nil {
		return nil, err
	}
	if err := m.eval.ensure(m.cfg, B, T, 1); err != nil {
		return nil, err
	}
	m.forward(&m.eval, tokens, targets)
	return m.eval.tokenLosses(), nil
}

// BackwardTokens back-propagates L = Σ_{b,t} weights[b·T+t]·l[b,t], the
// per-token losses of TokenLosses, through the latest Forward and ADDS dL/dθ
// to every parameter's Grad. The weights are constants, one per target
// token (B×T row-major, the latest Forward's shape); an ignored target must
// have weight 0, and every weight must be finite. With weights[b·T+t] =
// w_b/count_b on the non-ignored targets it is Backward(w).
func (m *Model) BackwardTokens(weights []float32) error {
	if !m.ready {
		return errors.New("gpt: BackwardTokens needs a successful Forward first")
	}
	a, cfg := &m.train, m.cfg
	B, T := a.B, a.T
	if len(weights) != B*T {
		return fmt.Errorf("gpt: len(weights) = %d, want B*T = %d*%d = %d of the latest Forward", len(weights), B, T, B*T)
	}
	for i, w := range weights {
		if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
			return fmt.Errorf("gpt: weights[%d] = %g (sequence %d, position %d) is not finite", i, w, i/T, i%T)
		}
		if w != 0 && a.targets[i] < 0 {
			return fmt.Errorf("gpt: weights[%d] = %g but the target of sequence %d, position %d is ignored; give it weight 0", i, w, i/T, i%T)
		}
	}
	g := &m.grads
	g.ensure(cfg, B, T)
	copy(g.dtokLoss, weights)
	m.backward()
	return nil
}

// backward back-propagates g.dtokLoss, dL/d(per-token loss), through the
// latest Forward and adds dL/dθ to the parameters' gradients.
func (m *Model) backward() {
	a, cfg := &m.train, m.cfg
	B, T, N, V := a.B, a.T, a.B*a.T, cfg.Vocab
	g := &m.grads
	nn.Zero(g.dlogits)
	nn.Zero(g.dlnf)
	nn.Zero(g.dres)
	m.ce.Backward(g.dlogits, g.dtokLoss, a.probs, a.targets, V)
	m.head.Backward(g.dlnf, g.dlogits, a.lnf, N)
	m.lnf.Backward(g.dres, g.dlnf, a.layer(cfg.Layers-1).res3, a.lnfMean, a.lnfRstd, N)
	// g.dres holds dL/d(output of block l); each block leaves dL/d(its input) in g.dx.
	for l := cfg.Layers - 1; l >= 0; l-- {
		b, la := &m.blocks[l], a.layer(l)
		x := a.x0
		if l > 0 {
			x = a.layer(l - 1).res3
		}
		nn.Zero(g.layerSlab)
		nn.Zero(g.dx)
		m.res.Backward(g.dres2, g.dfcProj, g.dres)
		b.fcProj.Backward(g.dfcGelu, g.dfcProj, la.fcGelu, N)
		m.gelu.Backward(g.dfc, g.dfcGelu, la.fc, la.fcTanh)
		b.fc.Backward(g.dln2, g.dfc, la.ln2, N)
		b.ln2.Backward(g.dres2, g.dln2, la.res2, la.ln2Mean, la.ln2Rstd, N)
		m.res.Backward(g.dx, g.dattProj, g.dres2)
		b.attProj.Backward(g.datty, g.dattProj, la.atty, N)
		m.attn.Backward(g.dqkv, g.datty, la.qkv, la.att, B, T)
		b.qkv.Backward(g.dln1, g.dqkv, la.ln1, N)
		b.ln1.Backward(g.dx, g.dln1, x, la.ln1Mean, la.ln1Rstd, N)
		g.dres, g.dx = g.dx, g.dres
	}
	m.emb.Backward(g.dres, a.tokens, B, T)
}
