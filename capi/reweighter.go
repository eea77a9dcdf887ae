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

// reweighterObj is a core Reweighter behind a handle.
type reweighterObj struct {
	sync.Mutex
	rw      *goreweight.Reweighter
	last    *goreweight.Stats // stats of the last successful call; nil before it or after an error
	scratch []float32         // converted Arrow losses
}

func (*reweighterObj) kind() string { return "reweighter" }

// reweighterNew decodes a Config JSON on top of goreweight.DefaultConfig
// and returns the handle of a new Reweighter at step 0; the core validates.
func reweighterNew(configJSON string) (uint64, error) {
	c := goreweight.DefaultConfig()
	if err := decodeStrict(configJSON, &c, "config"); err != nil {
		return 0, err
	}
	rw, err := goreweight.New(c)
	if err != nil {
		return 0, err
	}
	return newHandle(&reweighterObj{rw: rw}), nil
}

// reweighterRestore returns the handle of a Reweighter restored from a
// state written by reweighterState.
func reweighterRestore(state string) (uint64, error) {
	rw, err := goreweight.Restore([]byte(state))
	if err != nil {
		return 0, err
	}
	return newHandle(&reweighterObj{rw: rw}), nil
}

// reweighterWeights computes one global batch's weights at the current
// step's temperature and advances the step.
func reweighterWeights(h uint64, b batch, wantStats bool) (res result, err error) {
	err = withObject(h, func(o *reweighterObj) error {
		losses, domains, out, release, err := b.open(&o.scratch)
		if err != nil {
			return err
		}
		defer release()
		st, err := o.rw.Weights(out, losses, domains)
		res, err = o.keep(st, err, wantStats)
		return err
	})
	return res, err
}

// keep records the outcome of one of the reweighter's weights calls as the
// last stats (nil after an error: the core may have overwritten part of
// the old ones) and returns its result.
func (o *reweighterObj) keep(st *goreweight.Stats, err error, wantStats bool) (result, error) {
	if err != nil {
		o.last = nil
		return result{}, err
	}
	o.last = st
	return finish(st, wantStats), nil
}

// reweighterStats returns the flat stats JSON of the last successful call
// ("{}" before the first call and after a failed one).
func reweighterStats(h uint64) (b []byte, err error) {
	err = withObject(h, func(o *reweighterObj) error {
		b = flatJSON(o.last)
		return nil
	})
	return b, err
}

// reweighterStep returns the step the next call will use.
func reweighterStep(h uint64) (step int64, err error) {
	err = withObject(h, func(o *reweighterObj) error { step = o.rw.Step(); return nil })
	return step, err
}

// reweighterSetStep moves the reweighter to a global step.
func reweighterSetStep(h uint64, step int64) error {
	return withObject(h, func(o *reweighterObj) error { return o.rw.SetStep(step) })
}

// reweighterR returns the temperature at the current step (+Inf in warm-up).
func reweighterR(h uint64) (r float64, err error) {
	err = withObject(h, func(o *reweighterObj) error { r = o.rw.R(); return nil })
	return r, err
}

// reweighterState returns the state JSON (configuration and step).
func reweighterState(h uint64) (b []byte, err error) {
	err = withObject(h, func(o *reweighterObj) error { b, err = o.rw.State(); return err })
	return b, err
}

// reweighterLoadState replaces configuration and step by a state.
func reweighterLoadState(h uint64, state string) error {
	return withObject(h, func(o *reweighterObj) error {
		if err := o.rw.LoadState([]byte(state)); err != nil {
			return err
		}
		o.last = nil
		return nil
	})
}

// reweighterConfig returns the configuration as JSON.
func reweighterConfig(h uint64) (b []byte, err error) {
	err = withObject(h, func(o *reweighterObj) error { b, err = json.Marshal(o.rw.Config()); return err })
	return b, err
}

// grw_reweighter_new creates a Reweighter at step 0 from its Config as
// JSON, e.g. {"strategy": "linupper", "delta": 1, "schedule": {"kind":
// "linear", "r_start": 100, "r_end": 1, "steps": 10000, "warmup": 500}},
// and stores its handle in *handle.
//
//export grw_reweighter_new
func grw_reweighter_new(configJSON *C.char, handle *C.uint64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return newHandleOut(configJSON, "config_json", handle, err, reweighterNew)
}

// grw_reweighter_restore creates a Reweighter from a state written by
// grw_reweighter_state, at the saved step, and stores its handle in *handle.
//
//export grw_reweighter_restore
func grw_reweighter_restore(stateJSON *C.char, handle *C.uint64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return newHandleOut(stateJSON, "state_json", handle, err, reweighterRestore)
}

// grw_reweighter_weights writes into weights_out[0..n) the weights of one
// global batch at the current step's temperature, then advances the step
// (not on error). The other arguments are those of grw_weigher_weights.
//
//export grw_reweighter_weights
func grw_reweighter_weights(h C.uint64_t, losses *C.float, domains *C.int32_t, n C.int64_t,
	weightsOut *C.float, nonfiniteOut *C.int64_t, statsJSON **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	clearOuts(nonfiniteOut, statsJSON)
	b := batch{losses: unsafe.Pointer(losses), domains: unsafe.Pointer(domains), out: unsafe.Pointer(weightsOut), n: int64(n)}
	res, e := reweighterWeights(uint64(h), b, statsJSON != nil)
	if e == nil {
		deliver(res, nonfiniteOut, statsJSON)
	}
	return done(err, e)
}

// grw_reweighter_weights_arrow is grw_reweighter_weights with the losses
// given through the Arrow C Data Interface, as in grw_weigher_weights_arrow.
//
//export grw_reweighter_weights_arrow
func grw_reweighter_weights_arrow(h C.uint64_t, arrowSchema, arrowArray unsafe.Pointer, domains *C.int32_t, n C.int64_t,
	weightsOut *C.float, nonfiniteOut *C.int64_t, statsJSON **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	clearOuts(nonfiniteOut, statsJSON)
	b := batch{arrow: true, schema: arrowSchema, array: arrowArray, domains: unsafe.Pointer(domains), out: unsafe.Pointer(weightsOut), n: int64(n)}
	res, e := reweighterWeights(uint64(h), b, statsJSON != nil)
	if e == nil {
		deliver(res, nonfiniteOut, statsJSON)
	}
	return done(err, e)
}

// grw_reweighter_stats stores in *out the flat stats JSON of the last
// successful grw_reweighter_weights call ("{}" before the first call and
// after a failed one). Free with grw_free.
//
//export grw_reweighter_stats
func grw_reweighter_stats(h C.uint64_t, out **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return jsonOut(h, out, err, reweighterStats)
}

// grw_reweighter_step stores in *out the global step the next call uses.
//
//export grw_reweighter_step
func grw_reweighter_step(h C.uint64_t, out *C.int64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	if out == nil {
		return done(err, errInvalid("goreweight: step (the out-parameter) is NULL"))
	}
	s, e := reweighterStep(uint64(h))
	if e == nil {
		*out = C.int64_t(s)
	}
	return done(err, e)
}

// grw_reweighter_set_step moves the Reweighter to a global step >= 0.
//
//export grw_reweighter_set_step
func grw_reweighter_set_step(h C.uint64_t, step C.int64_t, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return done(err, reweighterSetStep(uint64(h), int64(step)))
}

// grw_reweighter_r stores in *out the temperature of the current step
// (+Inf during a uniform warm-up).
//
//export grw_reweighter_r
func grw_reweighter_r(h C.uint64_t, out *C.double, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return doubleOut(h, out, "r", err, reweighterR)
}

// grw_reweighter_state stores in *out the Reweighter's state as JSON (its
// configuration and step; free with grw_free).
//
//export grw_reweighter_state
func grw_reweighter_state(h C.uint64_t, out **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return jsonOut(h, out, err, reweighterState)
}

// grw_reweighter_load_state replaces the Reweighter's configuration and
// step by a state written by grw_reweighter_state.
//
//export grw_reweighter_load_state
func grw_reweighter_load_state(h C.uint64_t, stateJSON *C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return withString(h, stateJSON, "state_json", err, reweighterLoadState)
}

// grw_reweighter_config stores in *out the configuration, defaults filled
// in, as JSON (free with grw_free).
//
//export grw_reweighter_config
func grw_reweighter_config(h C.uint64_t, out **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	return jsonOut(h, out, err, reweighterConfig)
}
