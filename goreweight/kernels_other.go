//go:build !amd64 || purego

package goreweight

import "math"

// useAVX2 is false: there are no assembly kernels on this platform (or
// with -tags purego), so the Weigher runs its pure-Go loops. The functions
// below are the kernels' pure-Go fallbacks, with the contracts of
// kernels_amd64.go (the gonum internal/asm habit: same names, chosen by
// build tag), so that every call site builds and is correct everywhere.
var useAVX2 = false

// expVecAVX2 sets dst[i] = e^x[i] for i < len(x) rounded down to a multiple
// of 4 (expNeg: 0 below -707).
func expVecAVX2(dst, x []float64) {
	n := len(x) &^ 3
	for i, v := range x[:n] {
		dst[i] = expNeg(v)
	}
}

// expScoresAVX2 is pass 2's fast path for a kernel shape on len(ls)
// rounded down to a multiple of 4, lane by lane (lane = i mod 4) as the
// assembly accumulates, with math.FMA where it fuses.
func expScoresAVX2(kind int, dst, ls []float32, p *expParams, a *expAcc) {
	n := len(ls) &^ 3
	for i, lf := range ls[:n] {
		k := i & 3
		l := float64(lf)
		x := math.FMA(l-p.lmin[k], p.a[k], p.b[k])
		var z float64
		switch kind {
		case shapeMin:
			z = min(x, p.c[k])
		case shapeQuad:
			z = math.FMA(-x, x*p.invR[k], p.c[k])
		default: // shapeAbs
			z = min(math.Abs(x)+p.c[k], 0)
		}
		e := expNeg(z)
		a.s[k] += e
		a.s2[k] = math.FMA(e, e, a.s2[k])
		a.el[k] = math.FMA(e, z, a.el[k])
		a.sl[k] = math.FMA(e, l, a.sl[k])
		a.zmax[k] = max(a.zmax[k], z)
		a.zmin[k] = min(a.zmin[k], z)
		dst[i] = float32(e)
	}
}

// scanAVX2 is pass 1's fast loop on len(ls) rounded down to a multiple of
// 8: lane-wise (lane = i mod 8) min and max into a.mn, a.mx, and
// a.s[k] += float64(ls[i]) for i ≡ k (mod 4), in index order.
func scanAVX2(ls []float32, a *scanAcc) {
	n := len(ls) &^ 7
	for i, v := range ls[:n] {
		k := i & 7
		if v < a.mn[k] {
			a.mn[k] = v
		}
		if v > a.mx[k] {
			a.mx[k] = v
		}
		a.s[i&3] += float64(v)
	}
}

// scaleAVX2 sets dst[i] = float32(float64(dst[i])·f) for len(dst) rounded
// down to a multiple of 8.
func scaleAVX2(dst []float32, f float64) {
	n := len(dst) &^ 7
	for i, v := range dst[:n] {
		dst[i] = float32(float64(v) * f)
	}
}
