package goreweight

import (
	"fmt"
	"math"
)

// Schedule kinds (Schedule.Kind).
const (
	ScheduleConstant    = "constant"    // r = R
	ScheduleLinear      = "linear"      // r from RStart to REnd linearly over Steps
	ScheduleCosine      = "cosine"      // r from RStart to REnd along a half cosine over Steps
	ScheduleExponential = "exponential" // r from RStart to REnd geometrically over Steps
	ScheduleStep        = "step"        // r = Values[k] where k boundaries are <= t
)

// A Schedule gives the temperature r as a pure function of the global step,
// so that a resumed run uses exactly the r an uninterrupted one would.
//
// For step < Warmup, R returns +Inf: the weights are uniform. After the
// warm-up the schedule runs on t = step - Warmup: the annealing kinds go
// from RStart at t = 0 to REnd at t = Steps and hold REnd after; the step
// kind uses Values[0] for t < Boundaries[0], Values[1] up to Boundaries[1],
// and so on, holding the last value.
//
// The two variants of the authors' code are
//
//	Constant(r).WithWarmup(1000)         // uniform burn-in, then a fixed r
//	StepSchedule([]int64{2000}, []float64{100, r}) // r = 100 for 2000 steps, then r
type Schedule struct {
	Kind       string    `json:"kind"`
	R          float64   `json:"r,omitempty"`
	RStart     float64   `json:"r_start,omitempty"`
	REnd       float64   `json:"r_end,omitempty"`
	Steps      int64     `json:"steps,omitempty"`
	Boundaries []int64   `json:"boundaries,omitempty"`
	Values     []float64 `json:"values,omitempty"`
	Warmup     int64     `json:"warmup,omitempty"`
}

// Constant returns the schedule r(step) = r.
func Constant(r float64) Schedule { return Schedule{Kind: ScheduleConstant, R: r} }

// Linear returns a schedule from rStart to rEnd linearly over steps steps.
func Linear(rStart, rEnd float64, steps int64) Schedule {
	return Schedule{Kind: ScheduleLinear, RStart: rStart, REnd: rEnd, Steps: steps}
}

// Cosine returns a schedule from rStart to rEnd along a half cosine over steps steps.
func Cosine(rStart, rEnd float64, steps int64) Schedule {
	return Schedule{Kind: ScheduleCosine, RStart: rStart, REnd: rEnd, Steps: steps}
}

// Exponential returns a schedule from rStart to rEnd geometrically over
// steps steps: r = rStart·(rEnd/rStart)^(t/steps).
func Exponential(rStart, rEnd float64, steps int64) Schedule {
	return Schedule{Kind: ScheduleExponential, RStart: rStart, REnd: rEnd, Steps: steps}
}

// StepSchedule returns the piecewise-constant schedule that uses values[k]
// once k of the (strictly increasing) boundaries have been reached.
func StepSchedule(boundaries []int64, values []float64) Schedule {
	return Schedule{Kind: ScheduleStep, Boundaries: append([]int64(nil), boundaries...), Values: append([]float64(nil), values...)}
}

// WithWarmup returns s preceded by n steps of uniform weights.
func (s Schedule) WithWarmup(n int64) Schedule { s.Warmup = n; return s }

// MinR is the smallest temperature accepted anywhere, the smallest normal
// float64 (about 2.2e-308): below it 1/r overflows or loses precision.
const MinR = 0x1p-1022

func checkR(name string, r float64) error {
	if !(r >= MinR) || math.IsInf(r, 1) {
		return optionErr("schedule."+name, "schedule %s must be a finite number >= %g (1/r must be finite), got %v", name, MinR, r)
	}
	return nil
}

// Validate reports the first problem with the schedule, or nil.
func (s Schedule) Validate() error {
	if s.Warmup < 0 {
		return optionErr("schedule.warmup", "schedule warmup must be >= 0, got %d", s.Warmup)
	}
	switch s.Kind {
	case ScheduleConstant:
		return checkR("r", s.R)
	case ScheduleLinear, ScheduleCosine, ScheduleExponential:
		if err := checkR("r_start", s.RStart); err != nil {
			return err
		}
		if err := checkR("r_end", s.REnd); err != nil {
			return err
		}
		if s.Steps < 1 {
			return optionErr("schedule.steps", "%s schedule needs steps >= 1, got %d", s.Kind, s.Steps)
		}
		return nil
	case ScheduleStep:
		if len(s.Values) != len(s.Boundaries)+1 {
			return optionErr("schedule.values", "step schedule needs one more value than boundaries, got %d values and %d boundaries", len(s.Values), len(s.Boundaries))
		}
		for i, b := range s.Boundaries {
			if b < 1 || (i > 0 && b <= s.Boundaries[i-1]) {
				return optionErr("schedule.boundaries", "step schedule boundaries must be >= 1 and strictly increasing, got %v", s.Boundaries)
			}
		}
		for i, v := range s.Values {
			if err := checkR(fmt.Sprintf("values[%d]", i), v); err != nil {
				return err
			}
		}
		return nil
	case "":
		return optionErr("schedule.kind", "schedule kind is missing (constant, linear, cosine, exponential or step)")
	}
	return optionErr("schedule.kind", "unknown schedule kind %q (constant, linear, cosine, exponential or step)", s.Kind)
}

// At returns the temperature at the global step: +Inf during the warm-up
// (uniform weights). The schedule must be valid.
func (s Schedule) At(step int64) float64 {
	if step < s.Warmup {
		return math.Inf(1)
	}
	t := step - s.Warmup
	switch s.Kind {
	case ScheduleConstant:
		return s.R
	case ScheduleStep:
		k := 0
		for k < len(s.Boundaries) && t >= s.Boundaries[k] {
			k++
		}
		return s.Values[k]
	}
	if t >= s.Steps {
		return s.REnd
	}
	f := float64(t) / float64(s.Steps)
	switch s.Kind {
	case ScheduleLinear:
		return s.RStart + (s.REnd-s.RStart)*f
	case ScheduleCosine:
		return s.REnd + (s.RStart-s.REnd)*(1+math.Cos(math.Pi*f))/2
	case ScheduleExponential:
		return s.RStart * math.Pow(s.REnd/s.RStart, f)
	}
	return math.NaN()
}
