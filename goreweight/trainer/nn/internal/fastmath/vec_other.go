//go:build !amd64 || purego

package fastmath

const noKernels = "fastmath: no SIMD kernels"

func sumAVX2(x *float32, n int) float32                                  { panic(noKernels) }
func sumSqDevAVX2(x *float32, n int, m float32) float32                  { panic(noKernels) }
func maxAVX2(x *float32, n int) float32                                  { panic(noKernels) }
func scaleAVX2(x *float32, n int, a float32)                             { panic(noKernels) }
func dotAVX2(a, b *float32, n int) float32                               { panic(noKernels) }
func softmaxBwdAVX2(dp, p *float32, n int, dot float32)                  { panic(noKernels) }
func lnNormAVX2(out, x, w, b *float32, n int, m, rs float32)             { panic(noKernels) }
func lnBwdSumsAVX2(d, w, x *float32, n int, m float32) (sg, sgx float32) { panic(noKernels) }
func lnBwdInAVX2(dx, d, w, x *float32, n int, m, rs, mg, k float32)      { panic(noKernels) }
func lnParamAVX2(gw, gb, d, x *float32, n int, m, rs float32)            { panic(noKernels) }
