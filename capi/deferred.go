package main

/*
#include <stdint.h>

// The number of doubles in one rank's sums (grw_deferred_sums,
// grw_deferred_finish): the vector form of goreweight.DeferredSums.
#define GRW_DEFERRED_NSUMS 13
*/
import "C"

import (
	"encoding/json"
	"sync"
	"unsafe"

	"github.com/goreweight/goreweight/goreweight"
)

// The deferred (approximate) global scope: a core goreweight.Deferred
// behind a handle. Per optimizer step: grw_deferred_micro for each
// micro-batch (the unnormalised weights u out), then, under data
// parallelism, grw_deferred_sums on every rank and an all-gather of the
// sums, then grw_deferred_finish (the scale 1/Z for the accumulated
// gradients). The sums are GRW_DEFERRED_NSUMS doubles per rank, the
// vector form of goreweight.DeferredSums.

// deferredNSums is GRW_DEFERRED_NSUMS; TestDeferredNSums checks that it
// is goreweight.DeferredSumsLen.
const deferredNSums = C.GRW_DEFERRED_NSUMS

// deferredObj is a core Deferred behind a handle.
type deferredObj struct {
	sync.Mutex
	d *goreweight.Deferred
}

func (*deferredObj) kind() string { return "deferred" }

// deferredNew decodes a DeferredConfig JSON on top of
// goreweight.DefaultDeferredConfig and returns the handle of a new
// Deferred at step 0; the core validates.
func deferredNew(configJSON string) (uint64, error) {
	c := goreweight.DefaultDeferredConfig()
	if err := decodeStrict(configJSON, &c, "deferred config"); err != nil {
		return 0, err
	}
	d, err := goreweight.NewDeferred(c)
	if err != nil {
		return 0, err
	}
	return newHandle(&deferredObj{d: d}), nil
}

// deferredRestore returns the handle of a Deferred restored from a state.
func deferredRestore(state string) (uint64, error) {
	d, err := goreweight.RestoreDeferred([]byte(state))
	if err != nil {
		return 0, err
	}
	return newHandle(&deferredObj{d: d}), nil
}

// deferredMicro writes the unnormalised weights of one micro-batch of n
// losses into out and returns their sum. n = 0 is allowed (the pointers
// may then be NULL).
func deferredMicro(h uint64, losses unsafe.Pointer, n int64, out unsafe.Pointer) (z float64, err error) {
	var l, u []float32
	switch {
	case n < 0 || n > maxBatch:
		return 0, errInvalidf("goreweight: n (the number of losses) must be in [0, %d], got %d", int64(maxBatch), n)
	case n > 0 && losses == nil:
		return 0, errInvalid("goreweight: losses is NULL")
	case n > 0 && out == nil:
		return 0, errInvalid("goreweight: u_out is NULL")
	case n > 0:
		if err := checkOverlap(out, 4*n, "u_out", buffer{losses, 4 * n, "losses"}); err != nil {
			return 0, err
		}
		l, u = unsafe.Slice((*float32)(losses), n), unsafe.Slice((*float32)(out), n)
	}
	err = withObject(h, func(o *deferredObj) error { z, err = o.d.Micro(u, l); return err })
	return z, err
}

// deferredSums writes this rank's sums of the open step into out (n must
// be deferredNSums).
func deferredSums(h uint64, out unsafe.Pointer, n int64) error {
	if n != deferredNSums {
		return errInvalidf("goreweight: the sums have %d numbers (GRW_DEFERRED_NSUMS), got n = %d", deferredNSums, n)
	}
	if out == nil {
		return errInvalid("goreweight: sums_out is NULL")
	}
	return withObject(h, func(o *deferredObj) error {
		s := o.d.Sums()
		copy(unsafe.Slice((*float64)(out), n), s.AppendVector(make([]float64, 0, deferredNSums)))
		return nil
	})
}

// deferredFinish ends the open step with the sums of nranks ranks (nranks
// = 0 and sums NULL: this rank's own) and returns the scale 1/Z and the
// step's flat stats JSON.
func deferredFinish(h uint64, sums unsafe.Pointer, nranks int64) (scale float64, stats []byte, err error) {
	var global []goreweight.DeferredSums
	switch {
	case nranks < 0 || nranks > 1<<24:
		return 0, nil, errInvalidf("goreweight: nranks must be in [0, %d], got %d", 1<<24, nranks)
	case nranks > 0 && sums == nil:
		return 0, nil, errInvalid("goreweight: global_sums is NULL with nranks > 0")
	case nranks == 0 && sums != nil:
		return 0, nil, errInvalid("goreweight: global_sums is given with nranks = 0")
	case nranks > 0:
		v := unsafe.Slice((*float64)(sums), nranks*deferredNSums)
		for k := int64(0); k < nranks; k++ {
			s, err := goreweight.DeferredSumsFromVector(v[k*deferredNSums : (k+1)*deferredNSums])
			if err != nil {
				return 0, nil, errInvalidf("goreweight: sums of rank %d: %w", k, err)
			}
			global = append(global, s)
		}
	}
	err = withObject(h, func(o *deferredObj) error {
		st, err := o.d.Finish(global)
		if err != nil {
			return err
		}
		scale, stats = st.Scale, flatMapJSON(st.Flat())
		return nil
	})
	return scale, stats, err
}

// deferredStats returns the flat stats JSON of the last finished step
// ("{}" before the first).
func deferredStats(h uint64) (b []byte, err error) {
	err = withObject(h, func(o *deferredObj) error {
		b = []byte("{}")
		if st := o.d.LastStats(); st != nil {
			b = flatMapJSON(st.Flat())
		}
		return nil
	})
	return b, err
}

// deferredRange returns the range of the next (or open) step.
func deferredRange(h uint64) (lo, hi float64, known bool, err error) {
	err = withObject(h, func(o *deferredObj) error { lo, hi, known = o.d.Range(); return nil })
	return lo, hi, known, err
}

func deferredSetRange(h uint64, lo, hi float64) error {
	return withObject(h, func(o *deferredObj) error { return o.d.SetRange(lo, hi) })
}

func deferredStep(h uint64) (step int64, open bool, err error) {
	err = withObject(h, func(o *deferredObj) error { step, open = o.d.Step(), o.d.Open(); return nil })
	return step, open, err
}

func deferredSetStep(h uint64, step int64) error {
	return withObject(h, func(o *deferredObj) error { return o.d.SetStep(step) })
}

func deferredR(h uint64) (r float64, err error) {
	err = withObject(h, func(o *deferredObj) error { r = o.d.R(); return nil })
	return r, err
}

func deferredDiscard(h uint64) error {
	return withObject(h, func(o *deferredObj) error { o.d.Discard(); return nil })
}

func deferredState(h uint64) (b []byte, err error) {
	err = withObject(h, func(o *deferredObj) error { b, err = o.d.State(); return err })
	return b, err
}

func deferredLoadState(h uint64, state string) error {
	return withObject(h, func(o *deferredObj) error { return o.d.LoadState([]byte(state)) })
}

func deferredConfig(h uint64) (b []byte, err error) {
	err = withObject(h, func(o *deferredObj) error { b, err = json.Marshal(o.d.Config()); return err })
	return b, err
}

// grw_deferred_new creates a Deferred (the approximate global scope) at
// step 0 from its configuration as JSON: a Reweighter's Config plus
// "range_momentum" (in [0, 1), default 0), e.g. {"strategy": "linupper",
// "schedule": {"kind": "constant", "r": 1}}; topk, truncate, user
// strategies, cap and domain_multipliers are refused (GRW_EINVAL naming
// the key). It stores the handle in *handle.
//
//export grw_deferred_new
func grw_deferred_new(configJSON *C.char, handle *C.uint64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return newHandleOut(configJSON, "config_json", handle, err, deferredNew)
}

// grw_deferred_restore creates a Deferred from a state written by
// grw_deferred_state and stores its handle in *handle.
//
//export grw_deferred_restore
func grw_deferred_restore(stateJSON *C.char, handle *C.uint64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return newHandleOut(stateJSON, "state_json", handle, err, deferredRestore)
}

// grw_deferred_micro writes into u_out[0..n) the unnormalised weights u_i
// (in (0, 1]; 0 for non-finite losses) of one micro-batch's losses[0..n)
// and adds them to the open step (opening one if none is); *z_out (if not
// NULL) receives their sum. n = 0 is allowed. Non-finite losses under
// "raise" give GRW_ENONFINITE; on error nothing is accumulated.
//
//export grw_deferred_micro
func grw_deferred_micro(h C.uint64_t, losses *C.float, n C.int64_t, uOut *C.float, zOut *C.double, err **C.char) (status C.int) {
	defer guard(&status, err)()
	if zOut != nil {
		*zOut = 0
	}
	z, e := deferredMicro(uint64(h), unsafe.Pointer(losses), int64(n), unsafe.Pointer(uOut))
	if e == nil && zOut != nil {
		*zOut = C.double(z)
	}
	return done(err, e)
}

// grw_deferred_sums writes into sums_out[0..n) this rank's sums of the
// open step; n must be GRW_DEFERRED_NSUMS (13: m, valid,
// nonfinite, clipped, Σu, Σu², Σu·ln u, Σu·l, Σl, min l, max l, max u,
// min u). All-gather them over the ranks for grw_deferred_finish.
//
//export grw_deferred_sums
func grw_deferred_sums(h C.uint64_t, sumsOut *C.double, n C.int64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return done(err, deferredSums(uint64(h), unsafe.Pointer(sumsOut), int64(n)))
}

// grw_deferred_finish ends the open step: global_sums holds nranks ×
// GRW_DEFERRED_NSUMS doubles (every rank's grw_deferred_sums, this rank's included), or is
// NULL with nranks = 0 for a single process. *scale_out receives 1/Z, by
// which the caller multiplies the step's accumulated gradients; *stats_json
// (if not NULL) the step's flat stats (free with grw_free). Then the range
// is updated from the step's true min/max and the step advances. It is an
// error (GRW_EINVAL) when no step is open (finish twice), GRW_EEMPTY or
// GRW_ENONFINITE when the step holds no finite loss; on error nothing
// changes (grw_deferred_discard drops the step).
//
//export grw_deferred_finish
func grw_deferred_finish(h C.uint64_t, globalSums *C.double, nranks C.int64_t, scaleOut *C.double, statsJSON **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	if statsJSON != nil {
		*statsJSON = nil
	}
	if scaleOut == nil {
		return done(err, errInvalid("goreweight: scale_out is NULL"))
	}
	*scaleOut = 0
	scale, st, e := deferredFinish(uint64(h), unsafe.Pointer(globalSums), int64(nranks))
	if e == nil {
		*scaleOut = C.double(scale)
		if statsJSON != nil {
			*statsJSON = cString(st)
		}
	}
	return done(err, e)
}

// grw_deferred_discard abandons the open step (if any): the step does not
// advance; drop its gradients.
//
//export grw_deferred_discard
func grw_deferred_discard(h C.uint64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return done(err, deferredDiscard(uint64(h)))
}

// grw_deferred_range stores the normalisation range of the next (or open)
// step in *lo and *hi, and in *known 1 if a range is known (0 before the
// first finite loss).
//
//export grw_deferred_range
func grw_deferred_range(h C.uint64_t, lo, hi *C.double, known *C.int32_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	if lo == nil || hi == nil || known == nil {
		return done(err, errInvalid("goreweight: lo, hi or known (out-parameters) is NULL"))
	}
	l, u, k, e := deferredRange(uint64(h))
	if e == nil {
		*lo, *hi, *known = C.double(l), C.double(u), 0
		if k {
			*known = 1
		}
	}
	return done(err, e)
}

// grw_deferred_set_range sets the normalisation range of the next step
// (finite, lo <= hi); an error while a step is open.
//
//export grw_deferred_set_range
func grw_deferred_set_range(h C.uint64_t, lo, hi C.double, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return done(err, deferredSetRange(uint64(h), float64(lo), float64(hi)))
}

// grw_deferred_step stores in *out the global step of the open (or next)
// step, and in *open (if not NULL) 1 if a step is open.
//
//export grw_deferred_step
func grw_deferred_step(h C.uint64_t, out *C.int64_t, open *C.int32_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	if out == nil {
		return done(err, errInvalid("goreweight: step (the out-parameter) is NULL"))
	}
	s, o, e := deferredStep(uint64(h))
	if e == nil {
		*out = C.int64_t(s)
		if open != nil {
			*open = 0
			if o {
				*open = 1
			}
		}
	}
	return done(err, e)
}

// grw_deferred_set_step moves to a global step >= 0; an error while a step
// is open.
//
//export grw_deferred_set_step
func grw_deferred_set_step(h C.uint64_t, step C.int64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return done(err, deferredSetStep(uint64(h), int64(step)))
}

// grw_deferred_r stores in *out the temperature of the current step (+Inf
// during a uniform warm-up).
//
//export grw_deferred_r
func grw_deferred_r(h C.uint64_t, out *C.double, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return doubleOut(h, out, "r", err, deferredR)
}

// grw_deferred_stats stores in *out the flat stats JSON of the last
// finished step ("{}" before the first): the keys of
// grw_reweighter_stats plus range_lo, range_hi, clipped, clipped_frac, z
// and scale. Free with grw_free.
//
//export grw_deferred_stats
func grw_deferred_stats(h C.uint64_t, out **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return jsonOut(h, out, err, deferredStats)
}

// grw_deferred_state stores in *out the state as JSON (configuration,
// step, range and the open step's sums, if any; free with grw_free).
//
//export grw_deferred_state
func grw_deferred_state(h C.uint64_t, out **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return jsonOut(h, out, err, deferredState)
}

// grw_deferred_load_state replaces the Deferred's state by one written by
// grw_deferred_state.
//
//export grw_deferred_load_state
func grw_deferred_load_state(h C.uint64_t, stateJSON *C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return withString(h, stateJSON, "state_json", err, deferredLoadState)
}

// grw_deferred_config stores in *out the configuration, defaults filled
// in, as JSON (free with grw_free).
//
//export grw_deferred_config
func grw_deferred_config(h C.uint64_t, out **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return jsonOut(h, out, err, deferredConfig)
}
