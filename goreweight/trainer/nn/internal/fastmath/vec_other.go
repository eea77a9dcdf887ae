//go:build !amd64 || purego

package fastmath

import "unsafe"

// The pure-Go fallbacks of vec_amd64.s, with the same names and contracts
// (the gonum internal/asm habit, as in simd_other.go): each works on the
// first n elements. UseSIMD is false on these builds, so vec.go never
// calls them today; they keep every call site correct anywhere.

func sumAVX2(x *float32, n int) float32 {
	var s float32
	for _, v := range unsafe.Slice(x, n) {
		s += v
	}
	return s
}

func sumSqDevAVX2(x *float32, n int, m float32) float32 {
	var s float32
	for _, v := range unsafe.Slice(x, n) {
		s += (v - m) * (v - m)
	}
	return s
}

func maxAVX2(x *float32, n int) float32 {
	xs := unsafe.Slice(x, n)
	m := xs[0]
	for _, v := range xs[1:] {
		m = max(m, v)
	}
	return m
}

func scaleAVX2(x *float32, n int, a float32) {
	xs := unsafe.Slice(x, n)
	for i := range xs {
		xs[i] *= a
	}
}

func dotAVX2(a, b *float32, n int) float32 {
	as, bs := unsafe.Slice(a, n), unsafe.Slice(b, n)
	var s float32
	for i := range as {
		s += as[i] * bs[i]
	}
	return s
}

func softmaxBwdAVX2(dp, p *float32, n int, dot float32) {
	d, ps := unsafe.Slice(dp, n), unsafe.Slice(p, n)
	for i := range d {
		d[i] = ps[i] * (d[i] - dot)
	}
}

func lnNormAVX2(out, x, w, b *float32, n int, m, rs float32) {
	o, xs, ws, bs := unsafe.Slice(out, n), unsafe.Slice(x, n), unsafe.Slice(w, n), unsafe.Slice(b, n)
	for i := range o {
		o[i] = (xs[i]-m)*rs*ws[i] + bs[i]
	}
}

func lnBwdSumsAVX2(d, w, x *float32, n int, m float32) (sg, sgx float32) {
	ds, ws, xs := unsafe.Slice(d, n), unsafe.Slice(w, n), unsafe.Slice(x, n)
	for i := range ds {
		g := ds[i] * ws[i]
		sg += g
		sgx += g * (xs[i] - m)
	}
	return sg, sgx
}

func lnBwdInAVX2(dx, d, w, x *float32, n int, m, rs, mg, k float32) {
	dxs, ds, ws, xs := unsafe.Slice(dx, n), unsafe.Slice(d, n), unsafe.Slice(w, n), unsafe.Slice(x, n)
	for i := range dxs {
		dxs[i] += (ds[i]*ws[i] - mg - (xs[i]-m)*k) * rs
	}
}

func lnParamAVX2(gw, gb, d, x *float32, n int, m, rs float32) {
	gws, gbs, ds, xs := unsafe.Slice(gw, n), unsafe.Slice(gb, n), unsafe.Slice(d, n), unsafe.Slice(x, n)
	for i := range gws {
		gws[i] += ds[i] * (xs[i] - m) * rs
		gbs[i] += ds[i]
	}
}
