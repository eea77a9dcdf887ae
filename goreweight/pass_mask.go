package goreweight

// Masked (token-level) batches: WeightsMasked weights the counted entries
// of a dense buffer. The mask is folded into the passes at both ends: a
// count pass and a gather pass (per dense chunk, in parallel) compact the
// counted scores into scratch, passes 1 and 2 run unchanged on them (with
// their vector kernels and their chunk partition, which depends only on
// the number of counted entries), and pass 3 is fused with the scatter
// into the dense output. So the counted entries get exactly, bit for bit,
// the weights and Stats of Weights on the compacted batch, and the
// unmasked path is untouched.

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// A MaskedBatch is a dense batch of N entries (e.g. the B·T token losses of
// a batch of sequences, row-major) of which only some are counted.
type MaskedBatch struct {
	// Losses holds N losses (N >= 1).
	Losses []float32
	// Reference is nil or holds N reference losses: the score of entry i
	// is then Losses[i] - Reference[i] in float32 (the excess loss), and
	// everything below (normalisation, statistics, non-finite checks)
	// reads the scores.
	Reference []float32
	// Mask is nil (every entry is counted) or holds N bytes: nonzero =
	// counted. Entries not counted get weight exactly 0, whatever their
	// loss; they stay out of the min/max, the statistics and the
	// non-finite count, and their domain ids are not read.
	Mask []uint8
	// SkipNonFinite also leaves out, silently, the entries whose score is
	// NaN or ±Inf (the default mask of token-level losses, where ignored
	// positions hold NaN). Otherwise a counted non-finite score follows
	// Options.NonFinite, as in Weights.
	SkipNonFinite bool
	// Domains is nil or holds N domain ids (only the counted ones are
	// read, and must be valid).
	Domains []int32
}

// maskState is a Weigher's scratch for masked batches.
type maskState struct {
	b      MaskedBatch
	out    []float32   // the caller's dense output
	chunks []maskChunk // per dense chunk
	loss   []float32   // the counted scores, compacted (one spare slot)
	w      []float32   // their unnormalised weights (one spare slot)
	dom    []int32     // their domain ids
}

// maskChunk is one dense chunk's part of a masked batch.
type maskChunk struct {
	cnt, off int  // counted entries, and how many precede the chunk
	domBadAt int  // first counted entry with an invalid domain id, or -1
	runs     bool // the mask is mostly runs: copy eight entries at a time
	_        [32]byte
}

// WeightsMasked writes into dst (length N) the weights of the counted
// entries of a dense batch at temperature r, and 0 everywhere else. The
// counted entries get exactly the weights Weights gives the batch of
// their scores in index order (and the returned Stats are that batch's:
// M is the number of counted entries). Errors: ErrEmpty (wrapped) when no
// entry is counted, ErrInvalid on a length mismatch, a *NonFiniteError as
// in Weights; indices in errors are dense indices. The Weigher keeps the
// compacted scores and weights (and domain ids) as scratch, so in steady
// state a call allocates nothing.
func (w *Weigher) WeightsMasked(dst []float32, b MaskedBatch, r float64) (*Stats, error) {
	N := len(b.Losses)
	switch {
	case N == 0:
		return nil, ErrEmpty
	case len(dst) != N:
		return nil, invalidf("goreweight: output has length %d, want %d (one weight per entry)", len(dst), N)
	case b.Reference != nil && len(b.Reference) != N:
		return nil, invalidf("goreweight: reference has length %d, want %d (one reference loss per entry)", len(b.Reference), N)
	case b.Mask != nil && len(b.Mask) != N:
		return nil, invalidf("goreweight: mask has length %d, want %d (one flag per entry)", len(b.Mask), N)
	case b.Domains != nil && len(b.Domains) != N:
		return nil, invalidf("goreweight: domains has length %d, want %d (one domain id per entry)", len(b.Domains), N)
	case b.Domains == nil && w.logMult != nil:
		return nil, invalidf("goreweight: domain_multipliers are set (%d given) but the batch has no domain ids: give one domain id per entry", len(w.logMult))
	case !(r >= MinR):
		return nil, invalidf("goreweight: temperature r must be >= %g (1/r must be finite), got %v", MinR, r)
	}
	if b.Mask == nil && b.Reference == nil && !b.SkipNonFinite {
		return w.Weights(dst, b.Losses, b.Domains, r)
	}
	m := &w.mask
	m.b, m.out = b, dst
	defer func() { m.b, m.out = MaskedBatch{}, nil }()

	// Count, then gather the counted scores in index order.
	nd := (N + chunkSize - 1) / chunkSize
	if cap(m.chunks) < nd {
		m.chunks = make([]maskChunk, nd)
	}
	m.chunks = m.chunks[:nd]
	w.phase = phaseMaskCount
	w.parallelFor(nd)
	n := 0
	for i := range m.chunks {
		m.chunks[i].off = n
		n += m.chunks[i].cnt
	}
	switch {
	case n == 0:
		return nil, invalidf("goreweight: every one of the %d entries is masked: %w", N, ErrEmpty)
	case n > MaxBatch:
		return nil, invalidf("goreweight: %d counted entries are too many (at most %d)", n, MaxBatch)
	}
	if cap(m.loss) < n+1 {
		m.loss, m.w = make([]float32, n+1), make([]float32, n+1)
	}
	m.loss, m.w = m.loss[:n+1], m.w[:n+1]
	m.w[n] = 0 // the scatter reads one slot past the last counted weight
	var dom []int32
	if b.Domains != nil {
		if cap(m.dom) < n {
			m.dom = make([]int32, n)
		}
		dom = m.dom[:n]
	}
	w.phase = phaseMaskGather
	w.parallelFor(nd)
	if b.Domains != nil {
		for _, c := range m.chunks {
			if i := c.domBadAt; i >= 0 {
				if d := b.Domains[i]; d < 0 {
					return nil, invalidf("goreweight: domain id %d at index %d is negative", d, i)
				}
				return nil, invalidf("goreweight: domain id %d at index %d has no multiplier (%d given)", b.Domains[i], i, len(w.logMult))
			}
		}
	}

	// Passes 1 and 2 (and the cap) on the compacted batch, pass 3 fused
	// with the scatter.
	w.deferScale = true
	st, err := w.Weights(m.w[:n], m.loss[:n], dom, r)
	w.deferScale = false
	if err != nil {
		if e, ok := err.(*NonFiniteError); ok {
			e2 := *e
			e2.First = w.denseIndex(e.First)
			return nil, &e2
		}
		return nil, err
	}
	w.phase = phaseMaskScatter
	w.parallelFor(nd)
	return st, nil
}

// denseIndex returns the dense index of the k-th counted entry.
func (w *Weigher) denseIndex(k int) int {
	m := &w.mask
	for c, ch := range m.chunks {
		if k >= ch.off+ch.cnt {
			continue
		}
		lo := c * chunkSize
		hi := min(lo+chunkSize, len(m.b.Losses))
		j := ch.off
		for i := lo; i < hi; i++ {
			if w.counted(i) {
				if j == k {
					return i
				}
				j++
			}
		}
	}
	return -1
}

// score is the score of dense entry i.
func (w *Weigher) score(i int) float32 {
	if w.mask.b.Reference != nil {
		return w.mask.b.Losses[i] - w.mask.b.Reference[i]
	}
	return w.mask.b.Losses[i]
}

// counted reports whether dense entry i is counted.
func (w *Weigher) counted(i int) bool {
	b := &w.mask.b
	return (b.Mask == nil || b.Mask[i] != 0) && (!b.SkipNonFinite || finite32(w.score(i)))
}

// allOnes is eight mask bytes that are all 1.
const allOnes = 0x0101010101010101

// flag is 1 for a nonzero mask byte, 0 for 0, without a branch.
func flag(m uint8) int { return int((uint(m) + 0xff) >> 8) }

// runMaskChunk runs the current masked phase on dense chunk c.
func (w *Weigher) runMaskChunk(c int) {
	m := &w.mask
	lo := c * chunkSize
	hi := min(lo+chunkSize, len(m.b.Losses))
	ch := &m.chunks[c]
	switch w.phase {
	case phaseMaskCount:
		ch.runs = false
		ch.cnt = w.countChunk(lo, hi, ch)
	case phaseMaskGather:
		w.gatherChunk(lo, hi, ch)
	case phaseMaskScatter:
		w.scatterChunk(lo, hi, ch)
	}
}

// countChunk counts the counted entries of [lo, hi), and sets ch.runs when
// most blocks of eight mask bytes are all 0 or all 1.
func (w *Weigher) countChunk(lo, hi int, ch *maskChunk) int {
	b := &w.mask.b
	if b.SkipNonFinite {
		n := 0
		ls := b.Losses[lo:hi]
		for i := range ls {
			f := 1
			if b.Mask != nil {
				f = flag(b.Mask[lo+i])
			}
			if f != 0 && finite32(w.score(lo+i)) {
				n++
			}
		}
		return n
	}
	if b.Mask == nil {
		return hi - lo
	}
	ms := b.Mask[lo:hi]
	n, i, mixed := 0, 0, 0
	for ; i+8 <= len(ms); i += 8 {
		// Fold each byte's bits into its lowest bit, then count those.
		v := binary.LittleEndian.Uint64(ms[i:])
		u := v | v>>4
		u |= u >> 2
		u |= u >> 1
		n += bits.OnesCount64(u & allOnes)
		mixed += nonzero(v) & nonzero(v^allOnes)
	}
	for ; i < len(ms); i++ {
		n += flag(ms[i])
	}
	ch.runs = mixed*4 < len(ms)/8
	return n
}

// nonzero is 1 for v != 0, 0 for 0, without a branch.
func nonzero(v uint64) int { return int((v | -v) >> 63) }

// gatherChunk writes the counted scores of [lo, hi) (and their domain ids)
// to the compacted batch at ch.off, in index order.
func (w *Weigher) gatherChunk(lo, hi int, ch *maskChunk) {
	m := &w.mask
	b := &m.b
	ch.domBadAt = -1
	cnt := ch.cnt
	if cnt == 0 {
		return
	}
	out := m.loss[ch.off : ch.off+cnt]
	ls := b.Losses[lo:hi]
	if b.Domains == nil && !b.SkipNonFinite && b.Mask != nil {
		// Branch-free: store every entry, advance past the counted ones;
		// stop once all are stored, so no store leaves the chunk's range.
		// Eight flags at a time when the mask is mostly runs (padding,
		// prompts): blocks of counted or masked entries are copied or
		// skipped whole. A scattered mask makes that branch unpredictable,
		// so it takes the entry-by-entry loop.
		ms := b.Mask[lo:hi]
		var rs []float32
		if b.Reference != nil {
			rs = b.Reference[lo:hi]
		}
		k, i := 0, 0
		for ; ch.runs && i+8 <= len(ls) && k+8 <= cnt; i += 8 {
			switch v := binary.LittleEndian.Uint64(ms[i:]); {
			case v == 0:
			case v == allOnes && rs == nil:
				copy(out[k:k+8], ls[i:i+8])
				k += 8
			case rs == nil:
				for j := i; j < i+8; j++ {
					out[k] = ls[j]
					k += flag(ms[j])
				}
			default:
				for j := i; j < i+8; j++ {
					out[k] = ls[j] - rs[j]
					k += flag(ms[j])
				}
			}
		}
		if rs == nil {
			for ; k < cnt; i++ {
				out[k] = ls[i]
				k += flag(ms[i])
			}
		} else {
			for ; k < cnt; i++ {
				out[k] = ls[i] - rs[i]
				k += flag(ms[i])
			}
		}
		return
	}
	if b.Mask == nil && !b.SkipNonFinite {
		rs := b.Reference[lo:hi] // reference-only: the counted entries are all
		for i, l := range ls {
			out[i] = l - rs[i]
		}
	} else {
		k := 0
		for i := lo; i < hi && k < cnt; i++ {
			if w.counted(i) {
				out[k] = w.score(i)
				k++
			}
		}
	}
	if b.Domains == nil {
		return
	}
	dom := m.dom[ch.off : ch.off+cnt]
	nm := int32(len(w.logMult))
	k := 0
	for i := lo; i < hi && k < cnt; i++ {
		if b.Mask != nil && b.Mask[i] == 0 || b.SkipNonFinite && !finite32(w.score(i)) {
			continue
		}
		d := b.Domains[i]
		if ch.domBadAt < 0 && (d < 0 || (w.logMult != nil && d >= nm)) {
			ch.domBadAt = i
		}
		dom[k] = d
		k++
	}
}

// scatterChunk is pass 3 fused with the scatter: the chunk's compacted
// weights are normalised in place (pass 3's own loop, so rounded exactly
// as there), then dense entry i of [lo, hi) gets the weight of its
// compacted entry, or +0 when not counted.
func (w *Weigher) scatterChunk(lo, hi int, ch *maskChunk) {
	m := &w.mask
	b := &m.b
	dst := m.out[lo:hi]
	if ch.cnt == 0 {
		clear(dst)
		return
	}
	src := m.w[ch.off : ch.off+ch.cnt+1] // + the next chunk's first (or the spare) slot
	if w.norm != 1 {
		scaleBy(src[:ch.cnt], w.norm)
	}
	switch {
	case ch.cnt == hi-lo:
		copy(dst, src)
	case !b.SkipNonFinite:
		// Branch-free: each entry takes the next compacted weight's bits
		// ANDed with all ones (counted) or zero (not counted).
		ms := b.Mask[lo:hi]
		k, i := 0, 0
		for ; ch.runs && i+8 <= len(dst); i += 8 {
			switch v := binary.LittleEndian.Uint64(ms[i:]); v {
			case 0:
				clear(dst[i : i+8])
			case allOnes:
				copy(dst[i:i+8], src[k:k+8])
				k += 8
			default:
				for j := i; j < i+8; j++ {
					c := flag(ms[j])
					dst[j] = math.Float32frombits(math.Float32bits(src[k]) & uint32(-c))
					k += c
				}
			}
		}
		for ; i < len(dst); i++ {
			c := flag(ms[i])
			dst[i] = math.Float32frombits(math.Float32bits(src[k]) & uint32(-c))
			k += c
		}
	default:
		k := 0
		for i := range dst {
			if w.counted(lo + i) {
				dst[i] = src[k]
				k++
			} else {
				dst[i] = 0
			}
		}
	}
}
