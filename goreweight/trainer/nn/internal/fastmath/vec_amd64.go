//go:build amd64 && !purego

package fastmath

// Row kernels of vec_amd64.s; n is a multiple of 8 (maxAVX2: and >= 8).

//go:noescape
func sumAVX2(x *float32, n int) float32

//go:noescape
func sumSqDevAVX2(x *float32, n int, m float32) float32

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func scaleAVX2(x *float32, n int, a float32)

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func softmaxBwdAVX2(dp, p *float32, n int, dot float32)

//go:noescape
func lnNormAVX2(out, x, w, b *float32, n int, m, rs float32)

//go:noescape
func lnBwdSumsAVX2(d, w, x *float32, n int, m float32) (sg, sgx float32)

//go:noescape
func lnBwdInAVX2(dx, d, w, x *float32, n int, m, rs, mg, k float32)

//go:noescape
func lnParamAVX2(gw, gb, d, x *float32, n int, m, rs float32)
