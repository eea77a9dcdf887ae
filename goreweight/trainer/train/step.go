// One optimiser step: Accum micro-batches, their weights (per micro-batch
// or of the whole step, per sequence or per token, of the loss or of the
// excess over a reference model), and the accumulated gradient.

package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/data"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
)

// microBatchHook, when set (by tests), is called after each micro-batch's
// backward with the strategy, the optimiser step being taken (from 1) and
// the number of its micro-batches done (1..Accum).
var microBatchHook func(strategy string, step, micro int)

// stepOut is what one optimiser step leaves for the logs.
type stepOut struct {
	batches []data.Batch
	// losses and weights are per sequence, in micro-batch order (Accum·Batch):
	// the mean token loss, and the weight applied (at token level the sum
	// of the sequence's token weights); the weights of a step sum to 1.
	losses, weights []float32
	// entryWeights are the weights at the run's granularity (Accum·Batch,
	// or Accum·Batch·Seq at token level), as applied.
	entryWeights []float32
	// stats describe the weights of the step (see stepStats).
	stats *goreweight.Stats
	// deferred is the core's account of a deferred-scope step (the range
	// it normalised with, the clipped count, 1/Z), nil in other scopes.
	deferred *goreweight.DeferredStats
}

// entries are the losses of a step (or a micro-batch) at the run's
// granularity: one per sequence, or one per target token (row-major).
type entries struct {
	loss, score []float32 // the loss, and what is weighted: loss - reference loss
	domain      []int32
	counted     []bool // token level: the target is not ignored; nil: all count
}

func (e *entries) append(o entries) {
	e.loss = append(e.loss, o.loss...)
	e.score = append(e.score, o.score...)
	e.domain = append(e.domain, o.domain...)
	if o.counted != nil {
		e.counted = append(e.counted, o.counted...)
	}
}

// countedOnly returns the indices of the entries that count, in order,
// and their scores and domains: what a core call sees at token level
// (scatter puts its weights back).
func (e entries) countedOnly() (idx []int, scores []float32, domains []int32) {
	for i, c := range e.counted {
		if c {
			idx = append(idx, i)
			scores = append(scores, e.score[i])
			domains = append(domains, e.domain[i])
		}
	}
	return idx, scores, domains
}

// scatter writes w, the weights of the entries idx (from countedOnly),
// into dst at those entries and 0 everywhere else.
func scatter(dst []float32, idx []int, w []float32) {
	clear(dst)
	for j, i := range idx {
		dst[i] = w[j]
	}
}

// tokenLevel reports whether the run weights tokens.
func (t *trainer) tokenLevel() bool { return t.cfg.Granularity == GranularityToken }

// entriesOf builds the entries of batch b from its losses at the run's
// granularity (loss), scoring them against the reference model, if any.
func (t *trainer) entriesOf(b data.Batch, loss []float32) (entries, error) {
	e := entries{loss: loss, score: loss, domain: b.Domains}
	B, T := len(b.IDs), t.cfg.Seq
	if t.tokenLevel() {
		e.domain = make([]int32, B*T)
		e.counted = make([]bool, B*T)
		for i := range e.domain {
			e.domain[i] = b.Domains[i/T]
			e.counted[i] = b.Targets[i] >= 0
		}
	}
	if t.ref == nil {
		return e, nil
	}
	ref, err := t.lossesOf(t.ref, b)
	if err != nil {
		return e, fmt.Errorf("reference model: %w", err)
	}
	e.score = make([]float32, len(loss))
	for i := range loss {
		e.score[i] = loss[i] - ref[i]
	}
	return e, nil
}

// lossesOf returns model m's losses of batch b at the run's granularity,
// without gradients.
func (t *trainer) lossesOf(m *gpt.Model, b data.Batch) ([]float32, error) {
	if t.tokenLevel() {
		return m.EvaluateTokens(b.Tokens, b.Targets, len(b.IDs), t.cfg.Seq)
	}
	return m.Evaluate(b.Tokens, b.Targets, len(b.IDs), t.cfg.Seq)
}

// weigh writes the core's weights of the entries' scores into dst (0 at
// the entries that do not count) and returns a copy of the core's stats.
func (t *trainer) weigh(dst []float32, e entries) (goreweight.Stats, error) {
	scores, domains := e.score, e.domain
	var idx []int
	if e.counted != nil {
		idx, scores, domains = e.countedOnly()
		if len(idx) == 0 {
			return goreweight.Stats{}, fmt.Errorf("no target token to weight: %w", goreweight.ErrEmpty)
		}
	}
	w := dst
	if idx != nil {
		w = make([]float32, len(idx))
	}
	s, err := t.st.rw.Weights(w, scores, domains)
	if err != nil {
		return goreweight.Stats{}, err
	}
	if idx != nil {
		scatter(dst, idx, w)
	}
	c := *s
	c.Domains = slices.Clone(s.Domains)
	return c, nil
}

// accumulate takes the next Accum micro-batches, computes their weights
// and accumulates the gradient of Σ w·l over them into the (zeroed)
// parameter gradients. micro scope: one core call per micro-batch, each at
// the step's temperature, its weights divided by Accum; global scope: a
// first forward pass without gradients gives the losses of every
// micro-batch, one core call weighs them all, then each micro-batch's
// forward and backward uses its slice; deferred scope: no first pass, see
// accumulateDeferred.
func (t *trainer) accumulate() (stepOut, error) {
	cfg, st := t.cfg, t.st
	G, B, T := cfg.Accum, cfg.Batch, cfg.Seq
	tok := t.tokenLevel()
	n := B // entries per micro-batch
	if tok {
		n = B * T
	}
	out := stepOut{batches: make([]data.Batch, G), losses: make([]float32, 0, G*B), weights: make([]float32, G*B)}
	for k := range out.batches {
		out.batches[k] = st.it.Next(B)
	}
	w := make([]float32, G*n)
	var all entries
	var calls []goreweight.Stats
	backward := func(k int) error {
		wk := w[k*n : (k+1)*n]
		var err error
		if tok {
			err = st.model.BackwardTokens(wk)
		} else {
			err = st.model.Backward(wk)
		}
		if err != nil {
			return err
		}
		if microBatchHook != nil {
			microBatchHook(t.strategy, t.step+1, k+1)
		}
		return nil
	}
	// record turns a micro-batch's losses into its entries and adds them
	// to the step's.
	record := func(b data.Batch, l []float32) (entries, error) {
		e, err := t.entriesOf(b, l)
		if err == nil {
			all.append(e)
		}
		return e, err
	}
	forward := func(b data.Batch) ([]float32, error) {
		seq, err := st.model.Forward(b.Tokens, b.Targets, B, T)
		if err != nil {
			return nil, err
		}
		out.losses = append(out.losses, seq...)
		if tok {
			return st.model.TokenLosses()
		}
		return seq, nil
	}
	// forwardEntries is forward, recording the micro-batch's entries.
	forwardEntries := func(b data.Batch) (entries, error) {
		l, err := forward(b)
		if err != nil {
			return entries{}, err
		}
		return record(b, l)
	}
	st.model.ZeroGrad()
	if cfg.Scope == ScopeDeferred {
		ds, err := t.accumulateDeferred(out.batches, w, n, forwardEntries, backward)
		if err != nil {
			st.def.Discard()
			return out, err
		}
		out.deferred = ds
		calls = append(calls, ds.Stats)
	} else if cfg.Scope == ScopeGlobal {
		for _, b := range out.batches {
			l, err := t.lossesOf(st.model, b)
			if err != nil {
				return out, err
			}
			if _, err := record(b, l); err != nil {
				return out, err
			}
		}
		s, err := t.weigh(w, all)
		if err != nil {
			return out, err
		}
		calls = append(calls, s)
		for k, b := range out.batches {
			if _, err := forward(b); err != nil {
				return out, err
			}
			if err := backward(k); err != nil {
				return out, err
			}
		}
	} else {
		for k, b := range out.batches {
			e, err := forwardEntries(b)
			if err != nil {
				return out, err
			}
			// Every micro-batch at the step's temperature: r advances
			// once per optimiser step.
			if err := st.rw.SetStep(int64(t.step)); err != nil {
				return out, err
			}
			wk := w[k*n : (k+1)*n]
			s, err := t.weigh(wk, e)
			if err != nil {
				return out, err
			}
			calls = append(calls, s)
			if G > 1 {
				for i := range wk {
					wk[i] = float32(float64(wk[i]) / float64(G))
				}
			}
			if err := backward(k); err != nil {
				return out, err
			}
		}
	}
	if tok {
		for i := range out.weights {
			var s float64
			for _, v := range w[i*T : (i+1)*T] {
				s += float64(v)
			}
			out.weights[i] = float32(s)
		}
	} else {
		copy(out.weights, w)
	}
	out.entryWeights = w
	if len(calls) == 1 && t.ref == nil && out.deferred == nil {
		out.stats = &calls[0]
	} else {
		out.stats = stepStats(calls, w, all)
	}
	return out, nil
}

// accumulateDeferred is accumulate's deferred scope: each micro-batch's
// forward, the core Deferred's unnormalised weights u of its entries
// (normalised with the previous step's global range) and its backward of
// Σ u·l; then Finish gives 1/Z over the whole step, by which the
// accumulated gradients and the weights in w are multiplied (the weights
// then sum to 1 over the step), and the reweighter is moved to the next
// step with the Deferred, so that both track the trainer's step. On error
// the caller discards the Deferred's open step. forwardEntries and
// backward are accumulate's.
func (t *trainer) accumulateDeferred(batches []data.Batch, w []float32, n int,
	forwardEntries func(data.Batch) (entries, error), backward func(int) error) (*goreweight.DeferredStats, error) {
	d := t.st.def
	d.Discard() // nothing is open between steps; a failed step's leftovers go
	if err := d.SetStep(int64(t.step)); err != nil {
		return nil, err
	}
	for k, b := range batches {
		e, err := forwardEntries(b)
		if err != nil {
			return nil, err
		}
		if err := deferredMicro(d, w[k*n:(k+1)*n], e); err != nil {
			return nil, err
		}
		if err := backward(k); err != nil {
			return nil, err
		}
	}
	ds, err := d.Finish(nil)
	if err != nil {
		return nil, err
	}
	scale := ds.Scale
	for _, p := range t.params {
		for i, g := range p.Grad {
			p.Grad[i] = float32(float64(g) * scale)
		}
	}
	for i, u := range w {
		w[i] = float32(float64(u) * scale)
	}
	if err := t.st.rw.SetStep(d.Step()); err != nil {
		return nil, err
	}
	c := *ds
	return &c, nil
}

// deferredMicro writes into dst the Deferred's unnormalised weights of the
// entries' scores (0 at the entries that do not count).
func deferredMicro(d *goreweight.Deferred, dst []float32, e entries) error {
	if e.counted == nil {
		_, err := d.Micro(dst, e.score)
		return err
	}
	idx, scores, _ := e.countedOnly()
	u := make([]float32, len(idx))
	if _, err := d.Micro(u, scores); err != nil {
		return err
	}
	scatter(dst, idx, u)
	return nil
}

// stepStats describes the weights w of a whole optimiser step (they sum
// to 1 over the step) when they come from several core calls (micro scope
// with accumulation) or from scores that are not the losses (a reference
// model): the weight statistics are those of w over all the step's
// entries, with M = Valid, the counted entries with a finite score; the
// loss statistics are those of the losses themselves, not of the scores.
// The counts (Valid, NonFinite, Capped) are the calls' sums, R and Step
// the first call's, Uniform whether every call was.
func stepStats(calls []goreweight.Stats, w []float32, e entries) *goreweight.Stats {
	s := &goreweight.Stats{Step: calls[0].Step, R: calls[0].R, Uniform: true}
	for _, c := range calls {
		s.Uniform = s.Uniform && c.Uniform
		s.M += c.M
		s.Valid += c.Valid
		s.NonFinite += c.NonFinite
		s.Capped += c.Capped
	}
	type dom struct {
		count, nonfinite, finite int
		loss, wsum               float64
	}
	doms := map[int32]*dom{}
	valid := float64(s.Valid)
	var sumW2, ent, lossSum, weighted float64
	s.MaxWM, s.MinWM = math.Inf(-1), math.Inf(1)
	s.LossMin, s.LossMax = math.Inf(1), math.Inf(-1)
	nLoss := 0
	for i, wi := range w {
		if e.counted != nil && !e.counted[i] {
			continue
		}
		d := doms[e.domain[i]]
		if d == nil {
			d = &dom{}
			doms[e.domain[i]] = d
		}
		d.count++
		wf := float64(wi)
		d.wsum += wf
		sc, l := float64(e.score[i]), float64(e.loss[i])
		if math.IsNaN(sc) || math.IsInf(sc, 0) {
			d.nonfinite++
			continue
		}
		s.MaxWM = max(s.MaxWM, wf*valid)
		s.MinWM = min(s.MinWM, wf*valid)
		sumW2 += wf * wf
		if wf > 0 {
			ent -= wf * math.Log(wf)
			weighted += wf * l
		}
		if !math.IsNaN(l) && !math.IsInf(l, 0) {
			lossSum += l
			nLoss++
			d.loss += l
			d.finite++
			s.LossMin, s.LossMax = min(s.LossMin, l), max(s.LossMax, l)
		}
	}
	s.ESS = 1 / sumW2
	s.ESSFrac = s.ESS / valid
	s.Entropy = ent
	s.LossMean = lossSum / float64(nLoss)
	s.Weighted = weighted
	ids := make([]int32, 0, len(doms))
	for id := range doms {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		d := doms[id]
		ds := goreweight.DomainStats{ID: id, Count: d.count, NonFinite: d.nonfinite, MeanLoss: math.NaN(), WeightSum: d.wsum}
		if d.finite > 0 {
			ds.MeanLoss = d.loss / float64(d.finite)
		}
		ds.MeanWeight = d.wsum / float64(d.count)
		ds.MeanWM = ds.MeanWeight * valid
		s.Domains = append(s.Domains, ds)
	}
	return s
}
