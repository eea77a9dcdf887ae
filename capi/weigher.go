package main

/*
#include <stdint.h>
*/
import "C"

import (
	"encoding/json"
	"sync"
	"unsafe"

	"github.com/goreweight/goreweight/goreweight"
)

// weigherObj is a core Weigher behind a handle: fixed options, r per call.
type weigherObj struct {
	sync.Mutex
	w       *goreweight.Weigher
	scratch []float32 // converted Arrow losses
}

func (*weigherObj) kind() string { return "weigher" }

// weigherNew decodes the options JSON (the core's Options) on top of
// goreweight.DefaultOptions and returns the handle of a new Weigher; the
// core validates.
func weigherNew(optionsJSON string) (uint64, error) {
	o := goreweight.DefaultOptions()
	if err := decodeStrict(optionsJSON, &o, "options"); err != nil {
		return 0, err
	}
	w, err := goreweight.NewWeigher(o)
	if err != nil {
		return 0, err
	}
	return newHandle(&weigherObj{w: w}), nil
}

// weigherOptions returns the options in effect as JSON.
func weigherOptions(h uint64) (b []byte, err error) {
	err = withObject(h, func(o *weigherObj) error { b, err = json.Marshal(o.w.Options()); return err })
	return b, err
}

// weigherWeights computes the weights of one batch at temperature r.
func weigherWeights(h uint64, r float64, b batch, wantStats bool) (res result, err error) {
	err = withObject(h, func(o *weigherObj) error {
		losses, domains, out, release, err := b.open(&o.scratch)
		if err != nil {
			return err
		}
		defer release()
		st, err := o.w.Weights(out, losses, domains, r)
		if err != nil {
			return err
		}
		res = finish(st, wantStats)
		return nil
	})
	return res, err
}

// deliver stores a result in the caller's optional out-parameters.
func deliver(res result, nonFinite *C.int64_t, stats **C.char) {
	if nonFinite != nil {
		*nonFinite = C.int64_t(res.nonFinite)
	}
	if stats != nil {
		*stats = cString(res.stats)
	}
}

// clearOuts resets the optional out-parameters before a call.
func clearOuts(nonFinite *C.int64_t, stats **C.char) {
	if nonFinite != nil {
		*nonFinite = 0
	}
	if stats != nil {
		*stats = nil
	}
}

// grw_weigher_new creates a Weigher from its options as JSON, e.g.
// {"strategy": "linupper", "delta": 1, "cap": 2, "nonfinite": "zero"}
// (omitted fields take goreweight.DefaultOptions' values; explicit zero
// values such as "delta": 0 are errors, as are unknown fields), and
// stores its handle in *handle.
//
//export grw_weigher_new
func grw_weigher_new(optionsJSON *C.char, handle *C.uint64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return newHandleOut(optionsJSON, "options_json", handle, err, weigherNew)
}

// grw_weigher_options stores the Weigher's options as
// JSON in *out (free with grw_free).
//
//export grw_weigher_options
func grw_weigher_options(h C.uint64_t, out **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return jsonOut(h, out, err, weigherOptions)
}

// grw_weigher_weights writes into weights_out[0..n) the weights of the n
// losses at temperature r (r = +Inf: uniform). domains is NULL or holds n
// domain ids >= 0. nonfinite_out (may be NULL) receives the number of
// non-finite losses. stats_json (may be NULL: then no stats are computed
// into JSON, the fast path) receives the batch's flat stats as JSON (free
// with grw_free).
//
//export grw_weigher_weights
func grw_weigher_weights(h C.uint64_t, r C.double, losses *C.float, domains *C.int32_t, n C.int64_t,
	weightsOut *C.float, nonfiniteOut *C.int64_t, statsJSON **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	clearOuts(nonfiniteOut, statsJSON)
	b := batch{losses: unsafe.Pointer(losses), domains: unsafe.Pointer(domains), out: unsafe.Pointer(weightsOut), n: int64(n)}
	res, e := weigherWeights(uint64(h), float64(r), b, statsJSON != nil)
	if e == nil {
		deliver(res, nonfiniteOut, statsJSON)
	}
	return done(err, e)
}

// grw_weigher_weights_arrow is grw_weigher_weights with the losses given
// through the Arrow C Data Interface: arrow_schema and arrow_array point to
// a struct ArrowSchema and a struct ArrowArray of type float16, float32 or
// float64 (nulls count as non-finite). The schema is released and the
// array moved (its release set to NULL), as the interface prescribes, even
// on error once the import has begun. A float32 array without nulls is
// read in place. n is the length of weights_out (and of domains, if not
// NULL) and must equal the array's length.
//
//export grw_weigher_weights_arrow
func grw_weigher_weights_arrow(h C.uint64_t, r C.double, arrowSchema, arrowArray unsafe.Pointer, domains *C.int32_t, n C.int64_t,
	weightsOut *C.float, nonfiniteOut *C.int64_t, statsJSON **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	clearOuts(nonfiniteOut, statsJSON)
	b := batch{arrow: true, schema: arrowSchema, array: arrowArray, domains: unsafe.Pointer(domains), out: unsafe.Pointer(weightsOut), n: int64(n)}
	res, e := weigherWeights(uint64(h), float64(r), b, statsJSON != nil)
	if e == nil {
		deliver(res, nonfiniteOut, statsJSON)
	}
	return done(err, e)
}
