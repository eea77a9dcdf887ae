package main

/*
#include <stdint.h>
*/
import "C"

import (
	"math"

	"github.com/goreweight/goreweight/goreweight"
)

// scheduleAt parses a Schedule JSON, validates it and returns its
// temperature at the global step (+Inf during the warm-up).
func scheduleAt(scheduleJSON string, step int64) (float64, error) {
	var s goreweight.Schedule
	if err := decodeStrict(scheduleJSON, &s, "schedule"); err != nil {
		return 0, err
	}
	if err := s.Validate(); err != nil {
		return 0, err
	}
	if step < 0 {
		return 0, errInvalidf("goreweight: step must be >= 0, got %d", step)
	}
	return s.At(step), nil
}

// maxWeightBound checks its arguments and returns the core's MaxWeightBound.
func maxWeightBound(m int64, d, r float64) (float64, error) {
	switch {
	case m < 1:
		return 0, errInvalidf("goreweight: m must be >= 1, got %d", m)
	case !(d > 0) || math.IsInf(d, 1):
		return 0, errInvalidf("goreweight: the score range d must be a finite number > 0, got %v", d)
	case !(r > 0):
		return 0, errInvalidf("goreweight: temperature r must be > 0, got %v", r)
	}
	return goreweight.MaxWeightBound(int(m), d, r), nil
}

// grw_schedule_at stores in *r_out the temperature of a schedule, given as
// the JSON form of the core's Schedule (e.g. {"kind": "cosine", "r_start":
// 100, "r_end": 1, "steps": 5000, "warmup": 1000}), at a global step >= 0:
// +Inf during the warm-up (uniform weights), the last value past the end.
//
//export grw_schedule_at
func grw_schedule_at(scheduleJSON *C.char, step C.int64_t, rOut *C.double, err **C.char) (status C.int) {
	defer guard(&status, err)()
	s, e := goString(scheduleJSON, "schedule_json")
	if e == nil && rOut == nil {
		e = errInvalid("goreweight: r_out is NULL")
	}
	if e != nil {
		return done(err, e)
	}
	r, e := scheduleAt(s, int64(step))
	if e == nil {
		*rOut = C.double(r)
	}
	return done(err, e)
}
