package goreweight

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
)

var negInf = math.Inf(-1)

// A Strategy maps each normalised loss to a score; the weights are then
// softmax(score / r). Built-in strategies are listed by Strategies; users add
// their own with Register without forking.
//
// Score sets s[i] to the score of x[i] for every i. The slices have equal
// length, the batch size M. x[i] lies in [-delta, delta]: -delta for the
// lowest loss in the batch, +delta for the highest. Entries that belong to
// non-finite losses hold 0 and their scores are ignored. A score of -Inf
// gives the sample weight 0; NaN or +Inf is an error.
type Strategy interface {
	// Name is the name under which the strategy is registered.
	Name() string
	// Score writes the scores of the normalised losses x into s.
	Score(s, x []float64, delta float64)
}

// Built-in strategy names.
const (
	Uniform   = "uniform"   // constant score: every weight is exactly 1/M
	LinUpper  = "linupper"  // min(x+delta, delta): down-weights low losses, flat above the midpoint
	Quadratic = "quadratic" // 1 - x²/delta²: favours losses near the midpoint
	Extremes  = "extremes"  // |x|: favours both ends
	DROKL     = "dro-kl"    // x: the normalised loss itself (KL-regularised DRO)
	TopK      = "topk"      // equal weight on the highest fraction q of losses, 0 elsewhere
	Truncate  = "truncate"  // drop the highest fraction q of losses, equal weight on the rest
)

// builtin is a strategy whose score the core evaluates inline, without
// going through the Score method (which exists for users and for tests).
type builtin struct {
	name string
	// sup is the supremum of the score over [-delta, delta] as a multiple
	// of delta (scale) or a constant.
	sup func(delta float64) float64
	f   func(x, delta float64) float64
}

func (b builtin) Name() string { return b.name }

func (b builtin) Score(s, x []float64, delta float64) {
	for i, v := range x {
		s[i] = b.f(v, delta)
	}
}

// selector is a built-in strategy that picks a subset of the batch by rank
// and gives it equal weight; it has no score.
type selector struct {
	name string
	top  bool // true: keep the highest fraction q; false: drop it
}

func (s selector) Name() string { return s.name }

// Score for a selector ranks x directly: 0 for kept samples, -Inf for the
// others, with q = 0.5. The Weigher uses its own fraction Options.Q instead.
func (s selector) Score(dst, x []float64, delta float64) {
	keep := make([]bool, len(x))
	vals := make([]float32, len(x))
	idx := make([]int32, len(x))
	for i, v := range x {
		vals[i] = float32(v)
		idx[i] = int32(i)
	}
	selectRank(keep, vals, idx, s.count(0.5, len(x)), s.top)
	for i, k := range keep {
		if k {
			dst[i] = 0
		} else {
			dst[i] = negInf
		}
	}
}

// count returns how many of n valid samples a selector keeps with fraction q.
func (s selector) count(q float64, n int) int {
	if s.top {
		k := int(ceilFrac(q, n))
		return max(1, min(k, n))
	}
	drop := int(floorFrac(q, n))
	return max(1, n-drop)
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Strategy{}
)

func init() {
	for _, s := range []Strategy{
		builtin{Uniform, func(float64) float64 { return 0 }, func(x, d float64) float64 { return 0 }},
		builtin{LinUpper, func(d float64) float64 { return d }, func(x, d float64) float64 { return min(x+d, d) }},
		builtin{Quadratic, func(float64) float64 { return 1 }, func(x, d float64) float64 { return 1 - x*x/(d*d) }},
		builtin{Extremes, func(d float64) float64 { return d }, func(x, d float64) float64 { return abs(x) }},
		builtin{DROKL, func(d float64) float64 { return d }, func(x, d float64) float64 { return x }},
		selector{TopK, true},
		selector{Truncate, false},
	} {
		registry[s.Name()] = s
	}
}

// Register makes a user strategy available by name, for Options.Strategy and
// for configurations given as JSON (through the C ABI and Python). It is an
// error to register an empty name or a name already taken.
func Register(s Strategy) error {
	if s == nil {
		return fmt.Errorf("goreweight: Register: nil strategy")
	}
	name := s.Name()
	if name == "" {
		return fmt.Errorf("goreweight: Register: strategy has an empty name")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, ok := registry[name]; ok {
		return fmt.Errorf("goreweight: Register: strategy %q is already registered", name)
	}
	registry[name] = s
	return nil
}

// Lookup returns the strategy registered under name.
func Lookup(name string) (Strategy, error) {
	registryMu.RLock()
	s, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("goreweight: unknown strategy %q (known: %v)", name, Strategies())
	}
	return s, nil
}

// Strategies returns the registered strategy names in sorted order.
func Strategies() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// ceilFrac returns ceil(q·n), forgiving the rounding error of q·n
// (0.3·10 is 3, not 4).
func ceilFrac(q float64, n int) float64 { return math.Ceil(q*float64(n) - 1e-9) }

// floorFrac returns floor(q·n), forgiving the rounding error of q·n.
func floorFrac(q float64, n int) float64 { return math.Floor(q*float64(n) + 1e-9) }

// selectRank marks in keep the samples a selector keeps. vals holds the
// losses and idx the sample indices of the candidates (both are reordered).
// Candidates are ranked by loss, highest first, ties broken by the lower
// index; top keeps the first k of that order, otherwise the last k.
func selectRank(keep []bool, vals []float32, idx []int32, k int, top bool) {
	slices.SortFunc(idx, func(a, b int32) int {
		va, vb := vals[a], vals[b]
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return int(a - b)
	})
	var chosen []int32
	if top {
		chosen = idx[:k]
	} else {
		chosen = idx[len(idx)-k:]
	}
	for _, i := range chosen {
		keep[i] = true
	}
}
