package goreweight

// Pass 2 of Weigher.Weights: exponentiate the scores and sum what the
// statistics need (the general loop, the fast loop and its AVX2 kernel),
// and the rescue pass's maximum exponent.

import (
	"math"
)

// exp is pass 2 over [lo, hi): dst = e^(z + ln m_d - shift), unnormalised,
// and the sums the statistics need.
func (w *Weigher) exp(lo, hi int, p *partial, da []domAcc, blk *[2]block) {
	if da == nil && w.logMult == nil && w.bad == 0 && w.kind != kindSelect && w.kind != kindCustom {
		w.expFast(lo, hi, p, blk)
		return
	}
	zb := &blk[0]
	var s, s2, el, sl float64
	emax, emin := 0.0, math.Inf(1)
	shift := w.shift
	for b := lo; b < hi; b += blockSize {
		e := min(b+blockSize, hi)
		z := zb[:e-b]
		w.scores(z, b)
		for j, zj := range z {
			i := b + j
			l := w.losses[i]
			if zj != zj { // non-finite loss
				w.dst[i] = 0
				if da != nil {
					d := &da[w.didx[i]]
					d.n++
					d.bad++
				}
				continue
			}
			lz := zj - shift
			if w.logMult != nil {
				lz += w.logMult[w.domains[i]]
			}
			ev := expNeg(lz)
			w.dst[i] = float32(ev)
			if ev > 0 {
				s += ev
				s2 += ev * ev
				el += ev * lz
				sl += ev * float64(l)
			}
			emax = max(emax, ev)
			emin = min(emin, ev)
			if da != nil {
				d := &da[w.didx[i]]
				d.n++
				d.lsum += float64(l)
				d.esum += ev
			}
		}
	}
	p.s, p.s2, p.el, p.sl, p.emax, p.emin = s, s2, el, sl, emax, emin
}

// expFast is pass 2 for the common case: a built-in score, every loss
// finite, no domains. Two sets of accumulators halve the add chains.
func (w *Weigher) expFast(lo, hi int, p *partial, blk *[2]block) {
	if useAVX2 && !w.uniform && w.expFastAVX2(lo, hi, p, &blk[0]) {
		return
	}
	zb, eb := &blk[0], &blk[1]
	var s0, s1, q0, q1, e0, e1, l0, l1 float64
	zmax, zmin := math.Inf(-1), math.Inf(1)
	shift := w.shift
	for b := lo; b < hi; b += blockSize {
		n := min(blockSize, hi-b)
		z, ev := zb[:n], eb[:n]
		w.scores(z, b)
		if shift != 0 {
			for j := range z {
				z[j] -= shift
			}
		}
		expBlock(ev, z)
		ls, ds := w.losses[b:b+n], w.dst[b:b+n]
		j := 0
		for ; j+2 <= n; j += 2 {
			za, zb := z[j], z[j+1]
			va, vb := ev[j], ev[j+1]
			ds[j], ds[j+1] = float32(va), float32(vb)
			s0 += va
			s1 += vb
			q0 += va * va
			q1 += vb * vb
			e0 += va * za
			e1 += vb * zb
			l0 += va * float64(ls[j])
			l1 += vb * float64(ls[j+1])
			if za > zmax {
				zmax = za
			}
			if zb > zmax {
				zmax = zb
			}
			if za < zmin {
				zmin = za
			}
			if zb < zmin {
				zmin = zb
			}
		}
		for ; j < n; j++ {
			va := ev[j]
			ds[j] = float32(va)
			s0 += va
			q0 += va * va
			e0 += va * z[j]
			l0 += va * float64(ls[j])
			zmax, zmin = max(zmax, z[j]), min(zmin, z[j])
		}
	}
	p.s, p.s2, p.el, p.sl = s0+s1, q0+q1, e0+e1, l0+l1
	p.emax, p.emin = expNeg(zmax), expNeg(zmin)
}

// expFastAVX2 is expFast with the bulk of the chunk in expScoresAVX2 and
// the last len%4 samples in Go. It returns false, having done nothing, when
// the kernel's folded constants could overflow (see expKernelParams).
func (w *Weigher) expFastAVX2(lo, hi int, p *partial, zb *block) bool {
	kind, prm, ok := w.expKernelParams()
	if !ok {
		return false
	}
	a := expAcc{zmax: bcast(-inf), zmin: bcast(inf)}
	n := (hi - lo) &^ 3
	expScoresAVX2(kind, w.dst[lo:lo+n], w.losses[lo:lo+n], &prm, &a)
	s, s2, el, sl := sum4(&a.s), sum4(&a.s2), sum4(&a.el), sum4(&a.sl)
	zmax, zmin := max4(&a.zmax), min4(&a.zmin)
	if n < hi-lo {
		z := zb[:hi-lo-n]
		w.scores(z, lo+n)
		for j, zj := range z {
			zj -= w.shift
			ev := expNeg(zj)
			w.dst[lo+n+j] = float32(ev)
			s += ev
			s2 += ev * ev
			el += ev * zj
			sl += ev * float64(w.losses[lo+n+j])
			zmax, zmin = max(zmax, zj), min(zmin, zj)
		}
	}
	p.s, p.s2, p.el, p.sl = s, s2, el, sl
	p.emax, p.emin = expNeg(zmax), expNeg(zmin)
	return true
}

// zmax finds the largest exponent in [lo, hi) for the rescue pass.
func (w *Weigher) zmax(lo, hi int, p *partial, zb *block) {
	m := math.Inf(-1)
	for b := lo; b < hi; b += blockSize {
		e := min(b+blockSize, hi)
		z := zb[:e-b]
		w.scores(z, b)
		for j, zj := range z {
			if zj != zj {
				continue
			}
			if w.logMult != nil {
				zj += w.logMult[w.domains[b+j]]
			}
			m = max(m, zj)
		}
	}
	p.zmax = m
}
