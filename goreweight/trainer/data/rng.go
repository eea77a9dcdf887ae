package data

import "math/rand/v2"

// The package draws all randomness from PCG streams through the helpers
// below, never through math/rand's Shuffle, Perm or IntN, so that data order
// depends only on the seed and not on the Go version's choice of algorithm.

// newRNG returns the PCG stream for seed, purpose and index.
func newRNG(seed uint64, purpose string, index uint64) *rand.PCG {
	return rand.NewPCG(seed, hashString(purpose)^(index*0x9E3779B97F4A7C15))
}

// uintn returns a uniform integer in [0, n), n > 0, without modulo bias.
func uintn(r *rand.PCG, n uint64) uint64 {
	threshold := -n % n // 2^64 mod n
	for {
		if x := r.Uint64(); x >= threshold {
			return x % n
		}
	}
}

// shuffle permutes n elements by Fisher-Yates.
func shuffle(r *rand.PCG, n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, int(uintn(r, uint64(i+1))))
	}
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

// hashTokens extends h with tokens, one 32-bit word per step.
func hashTokens(h uint64, toks []int32) uint64 {
	for _, t := range toks {
		h = (h ^ uint64(uint32(t))) * fnvPrime
	}
	return h
}
