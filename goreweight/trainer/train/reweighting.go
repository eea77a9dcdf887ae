// Mapping a Config to the core's reweighting configuration.

package train

import (
	"github.com/goreweight/goreweight/goreweight"
)

// Reweighting returns the core configuration of one strategy's run: the
// options and the temperature schedule built from Schedule, RStart, REnd,
// RSteps and WarmupR.
func (c Config) Reweighting(strategy string) goreweight.Config {
	after := int64(c.Steps - c.Warmup())
	n := int64(c.RSteps)
	if n == 0 {
		n = max(after/2, 1)
	}
	var s goreweight.Schedule
	switch c.Schedule {
	case goreweight.ScheduleConstant:
		s = goreweight.Constant(c.REnd)
	case goreweight.ScheduleStep:
		s = goreweight.StepSchedule([]int64{n}, []float64{c.RStart, c.REnd})
	default: // linear, cosine, exponential; anything else fails Validate
		s = goreweight.Schedule{Kind: c.Schedule, RStart: c.RStart, REnd: c.REnd, Steps: n}
	}
	o := goreweight.DefaultOptions()
	o.Strategy, o.Delta, o.Cap, o.Q = strategy, c.Delta, c.Cap, c.Q
	return goreweight.Config{Options: o, Schedule: s.WithWarmup(int64(c.Warmup()))}
}

// deferredConfig returns the core configuration of one strategy's run in
// deferred scope: Reweighting(strategy) with range momentum 0 (each step
// normalises with the previous step's global min/max).
func (c Config) deferredConfig(strategy string) goreweight.DeferredConfig {
	return goreweight.DeferredConfig{Config: c.Reweighting(strategy)}
}
