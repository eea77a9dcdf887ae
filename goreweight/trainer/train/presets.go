// Presets: the paper's and the authors' settings one flag away.

package train

import (
	"fmt"
	"slices"
	"strings"

	"github.com/goreweight/goreweight/goreweight"
)

// Preset is a named set of settings applied on top of a configuration
// before the keys given with it (which override it).
type Preset struct {
	// Name is the value of --preset.
	Name string
	// Doc says in one line what the preset runs.
	Doc string
	// apply sets the preset's keys.
	apply func(*Config)
}

// presets are the built-in presets. The authors' small-scale configs use
// 1000 uniform warm-up steps, so those presets train 2000 steps (1000 with
// the chosen r); scale both with --steps and --warmup-r.
var presets = []Preset{
	{"paper-quadratic", "uniform vs quadratic: 1000 uniform warm-up steps, then r = 1 constant (the authors' config); 2000 steps",
		func(c *Config) {
			c.Strategy, c.Compare = "", StrategyList{goreweight.Uniform, goreweight.Quadratic}
			c.Schedule, c.REnd, c.WarmupR, c.Steps, c.Cap = goreweight.ScheduleConstant, 1, 1000, 2000, 0
		}},
	{"paper-extremes", "uniform vs extremes: 1000 uniform warm-up steps, then r = 0.4 constant (the authors' config); 2000 steps",
		func(c *Config) {
			c.Strategy, c.Compare = "", StrategyList{goreweight.Uniform, goreweight.Extremes}
			c.Schedule, c.REnd, c.WarmupR, c.Steps, c.Cap = goreweight.ScheduleConstant, 0.4, 1000, 2000, 0
		}},
	{"paper-step", "uniform vs linupper: r = 100 for 2000 steps, then r = 1 (the authors' step variant); 4000 steps",
		func(c *Config) {
			c.Strategy, c.Compare = "", StrategyList{goreweight.Uniform, goreweight.LinUpper}
			c.Schedule, c.RStart, c.REnd, c.RSteps, c.WarmupR, c.Steps, c.Cap = goreweight.ScheduleStep, 100, 1, 2000, 0, 4000, 0
		}},
	{"anneal", "uniform vs linupper vs quadratic vs extremes: r linear 100 -> 1 over the first half after a steps/10 warm-up, then r = 1 (the continuous anneal)",
		func(c *Config) {
			c.Strategy, c.Compare = "", StrategyList{goreweight.Uniform, goreweight.LinUpper, goreweight.Quadratic, goreweight.Extremes}
			c.Schedule, c.RStart, c.REnd, c.RSteps, c.WarmupR, c.Cap = goreweight.ScheduleLinear, 100, 1, 0, -1, 0
		}},
	{"capped", "paper-extremes with every weight capped at 2/M (the bound of Theorem 1, enforced exactly)",
		func(c *Config) {
			c.Strategy, c.Compare = "", StrategyList{goreweight.Uniform, goreweight.Extremes}
			c.Schedule, c.REnd, c.WarmupR, c.Steps, c.Cap = goreweight.ScheduleConstant, 0.4, 1000, 2000, 2
		}},
}

// Presets returns the built-in presets, in the order of the documentation.
func Presets() []Preset { return slices.Clone(presets) }

// WithPreset returns c with the preset name applied (and Preset set to
// name). The empty name returns c unchanged.
func (c Config) WithPreset(name string) (Config, error) {
	if name == "" {
		return c, nil
	}
	for _, p := range presets {
		if p.Name == name {
			p.apply(&c)
			c.Preset = name
			return c, nil
		}
	}
	var names []string
	for _, p := range presets {
		names = append(names, p.Name)
	}
	return c, fmt.Errorf("train: preset = %q: unknown preset (known: %s)", name, strings.Join(names, ", "))
}
