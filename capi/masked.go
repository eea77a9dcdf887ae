package main

/*
#include <stdint.h>

// Flags of a masked batch (grw_masked_args.flags).
#define GRW_MASK_SKIP_NONFINITE 1 // entries whose score is NaN or Inf are not counted (and not reported)

// The arguments of grw_weights_masked: a dense batch of n entries (e.g. the
// B*T token losses of a batch, row-major) of which only the entries with a
// nonzero mask byte are counted. Fields marked "out" are written by the call.
typedef struct grw_masked_args {
	uint64_t handle;          // a weigher or a reweighter
	double r;                 // temperature (weigher only; a reweighter uses its schedule)
	const float *losses;      // n losses
	const float *reference;   // NULL or n reference losses: scores are losses - reference (float32)
	const uint8_t *mask;      // NULL (every entry counted) or n bytes, nonzero = counted
	const int32_t *domains;   // NULL or n domain ids (only the counted ones are read)
	int64_t n;
	float *weights_out;       // n weights (out): 0 exactly where not counted
	int32_t flags;            // GRW_MASK_* bits; others must be 0
	int32_t want_stats;       // nonzero: stats_json receives the flat stats JSON
	int64_t nonfinite;        // out: counted entries with a non-finite score
	char *stats_json;         // out: free with grw_free; NULL unless want_stats
} grw_masked_args;
*/
import "C"

import (
	"unsafe"

	"github.com/goreweight/goreweight/goreweight"
)

// maskSkipNonFinite is GRW_MASK_SKIP_NONFINITE.
const maskSkipNonFinite = 1

// A maskedBatch is one masked call's buffers, all owned by the caller.
type maskedBatch struct {
	losses, reference, mask, domains, out unsafe.Pointer
	n                                     int64
	flags                                 int32
}

// open returns the core's view of the caller's buffers (no copy).
func (b maskedBatch) open() (goreweight.MaskedBatch, []float32, error) {
	var mb goreweight.MaskedBatch
	if err := checkLen(b.n, "n (the number of entries)"); err != nil {
		return mb, nil, err
	}
	switch {
	case b.losses == nil:
		return mb, nil, errInvalid("goreweight: losses is NULL")
	case b.out == nil:
		return mb, nil, errInvalid("goreweight: weights_out is NULL")
	case b.flags&^maskSkipNonFinite != 0:
		return mb, nil, errInvalidf("goreweight: flags %#x has unknown bits (known: GRW_MASK_SKIP_NONFINITE = %d)", b.flags, maskSkipNonFinite)
	}
	n := b.n
	if err := checkOverlap(b.out, 4*n, "weights_out", buffer{b.losses, 4 * n, "losses"}, buffer{b.reference, 4 * n, "reference"},
		buffer{b.mask, n, "mask"}, buffer{b.domains, 4 * n, "domains"}); err != nil {
		return mb, nil, err
	}
	mb.Losses = unsafe.Slice((*float32)(b.losses), n)
	if b.reference != nil {
		mb.Reference = unsafe.Slice((*float32)(b.reference), n)
	}
	if b.mask != nil {
		mb.Mask = unsafe.Slice((*uint8)(b.mask), n)
	}
	if b.domains != nil {
		mb.Domains = unsafe.Slice((*int32)(b.domains), n)
	}
	mb.SkipNonFinite = b.flags&maskSkipNonFinite != 0
	return mb, unsafe.Slice((*float32)(b.out), n), nil
}

// weigherWeightsMasked computes the weights of one masked batch at
// temperature r.
func weigherWeightsMasked(h uint64, r float64, b maskedBatch, wantStats bool) (res result, err error) {
	err = withObject(h, func(o *weigherObj) error {
		mb, out, err := b.open()
		if err != nil {
			return err
		}
		st, err := o.w.WeightsMasked(out, mb, r)
		if err != nil {
			return err
		}
		res = finish(st, wantStats)
		return nil
	})
	return res, err
}

// reweighterWeightsMasked computes one masked global batch's weights at the
// current step's temperature and advances the step.
func reweighterWeightsMasked(h uint64, b maskedBatch, wantStats bool) (res result, err error) {
	err = withObject(h, func(o *reweighterObj) error {
		mb, out, err := b.open()
		if err != nil {
			return err
		}
		st, err := o.rw.WeightsMasked(out, mb)
		res, err = o.keep(st, err, wantStats)
		return err
	})
	return res, err
}

// maskedWeights dispatches on the handle's kind.
func maskedWeights(h uint64, r float64, b maskedBatch, wantStats bool) (result, error) {
	w, err := isWeigher(h)
	switch {
	case err != nil:
		return result{}, err
	case w:
		return weigherWeightsMasked(h, r, b, wantStats)
	}
	return reweighterWeightsMasked(h, b, wantStats)
}

// grw_weights_masked writes into weights_out[0..n) the weights of the
// counted entries of a dense batch (see struct grw_masked_args), and 0 at
// every other entry. The counted entries get exactly the weights that
// grw_weigher_weights / grw_reweighter_weights give the batch of their
// scores in index order, and the stats are that batch's (m = the counted
// entries); entries not counted stay out of the min/max, the stats and the
// non-finite count. A weigher handle uses args->r; a reweighter handle its
// schedule, advancing its step (not on error). GRW_EEMPTY when no entry is
// counted; GRW_ENONFINITE as in grw_weigher_weights, with dense indices.
//
//export grw_weights_masked
func grw_weights_masked(a *C.grw_masked_args, err **C.char) (status C.int) {
	defer guard(&status, err)()
	if a == nil {
		return done(err, errInvalid("goreweight: args is NULL"))
	}
	stats := statsOut(&a.stats_json, a.want_stats)
	clearOuts(&a.nonfinite, &a.stats_json)
	b := maskedBatch{losses: unsafe.Pointer(a.losses), reference: unsafe.Pointer(a.reference), mask: unsafe.Pointer(a.mask),
		domains: unsafe.Pointer(a.domains), out: unsafe.Pointer(a.weights_out), n: int64(a.n), flags: int32(a.flags)}
	res, e := maskedWeights(uint64(a.handle), float64(a.r), b, stats != nil)
	if e == nil {
		deliver(res, &a.nonfinite, stats)
	}
	return done(err, e)
}

// grw_weigher_weights_masked is grw_weights_masked for a weigher, with the
// arguments one by one: mask and reference may be NULL, flags holds
// GRW_MASK_* bits.
//
//export grw_weigher_weights_masked
func grw_weigher_weights_masked(h C.uint64_t, r C.double, losses, reference *C.float, mask *C.uint8_t, flags C.int32_t,
	domains *C.int32_t, n C.int64_t, weightsOut *C.float, nonfiniteOut *C.int64_t, statsJSON **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	clearOuts(nonfiniteOut, statsJSON)
	b := maskedBatch{losses: unsafe.Pointer(losses), reference: unsafe.Pointer(reference), mask: unsafe.Pointer(mask),
		domains: unsafe.Pointer(domains), out: unsafe.Pointer(weightsOut), n: int64(n), flags: int32(flags)}
	res, e := weigherWeightsMasked(uint64(h), float64(r), b, statsJSON != nil)
	if e == nil {
		deliver(res, nonfiniteOut, statsJSON)
	}
	return done(err, e)
}

// grw_reweighter_weights_masked is grw_weights_masked for a reweighter, with
// the arguments one by one (see grw_weigher_weights_masked): the current
// step's temperature, then the step advances (not on error).
//
//export grw_reweighter_weights_masked
func grw_reweighter_weights_masked(h C.uint64_t, losses, reference *C.float, mask *C.uint8_t, flags C.int32_t,
	domains *C.int32_t, n C.int64_t, weightsOut *C.float, nonfiniteOut *C.int64_t, statsJSON **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	clearOuts(nonfiniteOut, statsJSON)
	b := maskedBatch{losses: unsafe.Pointer(losses), reference: unsafe.Pointer(reference), mask: unsafe.Pointer(mask),
		domains: unsafe.Pointer(domains), out: unsafe.Pointer(weightsOut), n: int64(n), flags: int32(flags)}
	res, e := reweighterWeightsMasked(uint64(h), b, statsJSON != nil)
	if e == nil {
		deliver(res, nonfiniteOut, statsJSON)
	}
	return done(err, e)
}
