package main

/*
#include <stdint.h>

// The arguments of grw_weights_packed, in one struct so that callers whose
// per-argument conversion is costly (Python's ctypes: ~0.3 us an argument)
// pass one pointer. Fields marked "out" are written by the call.
typedef struct grw_weights_args {
	uint64_t handle;       // a weigher or a reweighter
	double r;              // temperature (weigher only; a reweighter uses its schedule)
	const float *losses;   // n losses
	const int32_t *domains; // NULL or n domain ids
	int64_t n;
	float *weights_out;    // n weights (out)
	int32_t want_stats;    // nonzero: stats_json receives the flat stats JSON
	int32_t reserved;
	int64_t nonfinite;     // out: number of non-finite losses
	char *stats_json;      // out: free with grw_free; NULL unless want_stats
} grw_weights_args;
*/
import "C"

import (
	"unsafe"
)

// isWeigher tells the kind of a handle that may be a weigher or a
// reweighter (grw_weights_packed and grw_weights_masked take either); any
// other kind is an error.
func isWeigher(h uint64) (bool, error) {
	o, err := find(h)
	if err != nil {
		return false, err
	}
	switch o.(type) {
	case *weigherObj:
		return true, nil
	case *reweighterObj:
		return false, nil
	}
	return false, errInvalidf("goreweight: handle %d is a %s, not a weigher or a reweighter", h, o.kind())
}

// packedWeights dispatches on the handle's kind.
func packedWeights(h uint64, r float64, b batch, wantStats bool) (result, error) {
	w, err := isWeigher(h)
	switch {
	case err != nil:
		return result{}, err
	case w:
		return weigherWeights(h, r, b, wantStats)
	}
	return reweighterWeights(h, b, wantStats)
}

// statsOut is the stats out-parameter of an argument struct (its
// stats_json field, at field) when wantStats is nonzero, else NULL: the
// struct form of a stats_json argument that may be NULL.
func statsOut(field **C.char, wantStats C.int32_t) **C.char {
	if wantStats != 0 {
		return field
	}
	return nil
}

// grw_weights_packed is grw_weigher_weights or grw_reweighter_weights
// (chosen by the handle's kind) with the arguments and results in one
// struct: the fast path for callers that pay per argument.
//
//export grw_weights_packed
func grw_weights_packed(a *C.grw_weights_args, err **C.char) (status C.int) {
	defer guard(&status, err)()
	if a == nil {
		return done(err, errInvalid("goreweight: args is NULL"))
	}
	stats := statsOut(&a.stats_json, a.want_stats)
	clearOuts(&a.nonfinite, &a.stats_json)
	b := batch{losses: unsafe.Pointer(a.losses), domains: unsafe.Pointer(a.domains), out: unsafe.Pointer(a.weights_out), n: int64(a.n)}
	res, e := packedWeights(uint64(a.handle), float64(a.r), b, stats != nil)
	if e == nil {
		deliver(res, &a.nonfinite, stats)
	}
	return done(err, e)
}
