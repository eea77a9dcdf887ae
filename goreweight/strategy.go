package goreweight

import (
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

// builtin is a built-in scoring strategy. One value holds everything the
// core knows about it: the score formula, its range over [-delta, delta]
// and how the vector kernel folds it. Every path derives from these
// fields: Score and the Weigher's pure-Go loop call score, the Weigher
// shifts by the supremum hi, and expKernelParams takes the kernel's shape
// and constants from kernel. ScoreRange exports lo and hi.
type builtin struct {
	name string
	// score sets s[i] to the score of x[i]. It is elementwise, so s and x
	// may be the same slice.
	score func(s, x []float64, delta float64)
	// lo and hi bound the score over x in [-delta, delta]; both are
	// attained, and hi is the supremum the exponents are shifted by.
	lo, hi func(delta float64) float64
	// kernel folds the exponent z = (score(x) - hi)·invR, with
	// x = (l - lmin)·sc - delta, into one of the vector kernel's shapes and
	// its constants A, B, C (see expKernelParams). nil: no vector kernel.
	kernel func(sc, invR, delta float64) (shape int, a, b, c float64)
	// constant is true when every score is equal: the weights are uniform
	// by construction.
	constant bool
}

func (b builtin) Name() string { return b.name }

func (b builtin) Score(s, x []float64, delta float64) { b.score(s, x[:len(s)], delta) }

// Shapes of the vector kernel (kernels_amd64.s: the values are fixed
// there). With q = l - lmin and x = q·A + B (one FMA), the exponent is
//
//	shapeMin   z = min(x, C)
//	shapeQuad  z = C - x·(x·invR)
//	shapeAbs   z = min(|x| + C, 0)
const (
	shapeMin  = 1
	shapeQuad = 2
	shapeAbs  = 3
)

func zero(float64) float64      { return 0 }
func one(float64) float64       { return 1 }
func self(d float64) float64    { return d }
func negSelf(d float64) float64 { return -d }

// builtins are the built-in scoring strategies, the single definition of
// their math.
var builtins = []builtin{
	{
		name:     Uniform,
		score:    func(s, x []float64, d float64) { clear(s) },
		lo:       zero,
		hi:       zero,
		constant: true,
	},
	{
		name: LinUpper,
		score: func(s, x []float64, d float64) {
			for i, v := range x[:len(s)] {
				s[i] = min(v+d, d)
			}
		},
		lo: zero,
		hi: self,
		// z = (min(x+δ, δ) - δ)·invR = min(q·sc·invR - δ·invR, 0)
		kernel: func(sc, invR, d float64) (int, float64, float64, float64) {
			return shapeMin, sc * invR, -d * invR, 0
		},
	},
	{
		name: Quadratic,
		score: func(s, x []float64, d float64) {
			id := 1 / d // one division per block, not per sample
			for i, v := range x[:len(s)] {
				u := v * id // x/δ, in [-1, 1]; x²/δ² would overflow for a huge δ
				s[i] = 1 - u*u
			}
		},
		lo: zero,
		hi: one,
		// u = x/δ = q·(sc/δ) - 1, z = (1 - u² - 1)·invR = 0 - u·(u·invR)
		kernel: func(sc, invR, d float64) (int, float64, float64, float64) {
			return shapeQuad, sc / d, -1, 0
		},
	},
	{
		name: Extremes,
		score: func(s, x []float64, d float64) {
			for i, v := range x[:len(s)] {
				s[i] = abs(v)
			}
		},
		lo: zero,
		hi: self,
		// z = (|x| - δ)·invR = min(|q·sc·invR - δ·invR| - δ·invR, 0)
		kernel: func(sc, invR, d float64) (int, float64, float64, float64) {
			return shapeAbs, sc * invR, -d * invR, -d * invR
		},
	},
	{
		name: DROKL,
		score: func(s, x []float64, d float64) {
			copy(s, x)
		},
		lo: negSelf,
		hi: self,
		// z = (x - δ)·invR = min(q·sc·invR - 2δ·invR, 0)
		kernel: func(sc, invR, d float64) (int, float64, float64, float64) {
			return shapeMin, sc * invR, -2 * d * invR, 0
		},
	},
}

// ScoreRange returns the range [lo, hi] of a built-in scoring strategy's
// score over normalised losses in [-delta, delta] (both ends are
// attained): [0, delta] for linupper and extremes, [-delta, delta] for
// dro-kl, [0, 1] for quadratic, [0, 0] for uniform. hi - lo is the score
// range D of MaxWeightBound. ok is false for the selectors (topk, truncate,
// whose scores are 0 or -Inf), for user strategies, for unknown names and
// for an invalid delta.
func ScoreRange(name string, delta float64) (lo, hi float64, ok bool) {
	if !(delta > 0) || math.IsInf(delta, 1) {
		return 0, 0, false
	}
	registryMu.RLock()
	s := registry[name]
	registryMu.RUnlock()
	b, isBuiltin := s.(builtin)
	if !isBuiltin {
		return 0, 0, false
	}
	return b.lo(delta), b.hi(delta), true
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
	for _, b := range builtins {
		registry[b.name] = b
	}
	for _, s := range []selector{{TopK, true}, {Truncate, false}} {
		registry[s.name] = s
	}
}

// Register makes a user strategy available by name, for Options.Strategy and
// for configurations given as JSON (through the C ABI and Python). It is an
// error to register an empty name or a name already taken.
func Register(s Strategy) error {
	if s == nil {
		return invalidf("goreweight: Register: nil strategy")
	}
	name := s.Name()
	if name == "" {
		return invalidf("goreweight: Register: strategy has an empty name")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, ok := registry[name]; ok {
		return invalidf("goreweight: Register: strategy %q is already registered", name)
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
		return nil, invalidf("goreweight: unknown strategy %q (known: %v)", name, Strategies())
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
