//go:build amd64 && !purego

package fastmath

// UseSIMD reports whether the AVX2+FMA kernels of simd_amd64.s run: true
// when the CPU has AVX2 and FMA and the OS saves the YMM registers. Tests
// turn it off to compare against the scalar code; build with -tags purego
// to never use the assembly.
var UseSIMD = cpuHasAVX2FMA()

// geluFwdAVX2 is GELU's forward over n elements (n a multiple of 8), storing
// tanh(u) in th.
//
//go:noescape
func geluFwdAVX2(out, th, in *float32, n int)

// geluBwdAVX2 adds dOut * gelu'(in) to dIn for n elements (n a multiple of
// 8), given th = tanh(u) from the forward pass.
//
//go:noescape
func geluBwdAVX2(dIn, dOut, in, th *float32, n int)

// expSumAVX2 replaces x[i] by exp(x[i]-shift) for n elements (n a multiple
// of 8) and returns their sum.
//
//go:noescape
func expSumAVX2(x *float32, n int, shift float32) float32

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

func cpuHasAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 { // XMM and YMM state enabled
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0 // AVX2
}
