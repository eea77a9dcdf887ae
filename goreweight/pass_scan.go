package goreweight

// Pass 1 of Weigher.Weights: the scan (min, max, sum, non-finite count,
// domain ids), and the compaction of the domain ids it found.

import (
	"math"
	"slices"
)

// finite32 reports whether v is neither NaN nor ±Inf.
func finite32(v float32) bool { return math.Float32bits(v)&0x7f800000 != 0x7f800000 }

// scan is pass 1 over losses[lo:hi].
func (w *Weigher) scan(lo, hi int, p *partial) {
	*p = partial{badAt: -1, domBadAt: -1, maxDom: -1}
	ls := w.losses[lo:hi]
	// Fast path: four independent chains; NaN fails every comparison and
	// any NaN or Inf makes the float64 sum non-finite, which sends the
	// chunk to the careful loop below.
	mn0, mx0 := ls[0], ls[0]
	mn1, mx1, mn2, mx2, mn3, mx3 := mn0, mx0, mn0, mx0, mn0, mx0
	var s0, s1, s2, s3 float64
	i := 0
	if useAVX2 && len(ls) >= 8 {
		// The same four chains, 8 losses at a time.
		a := scanAcc{s: [4]float64{}}
		for k := range a.mn {
			a.mn[k], a.mx[k] = mn0, mx0
		}
		i = len(ls) &^ 7
		scanAVX2(ls[:i], &a)
		mn0, mn1, mn2, mn3 = min(a.mn[0], a.mn[4]), min(a.mn[1], a.mn[5]), min(a.mn[2], a.mn[6]), min(a.mn[3], a.mn[7])
		mx0, mx1, mx2, mx3 = max(a.mx[0], a.mx[4]), max(a.mx[1], a.mx[5]), max(a.mx[2], a.mx[6]), max(a.mx[3], a.mx[7])
		s0, s1, s2, s3 = a.s[0], a.s[1], a.s[2], a.s[3]
	}
	for ; i+4 <= len(ls); i += 4 {
		v0, v1, v2, v3 := ls[i], ls[i+1], ls[i+2], ls[i+3]
		if v0 < mn0 {
			mn0 = v0
		}
		if v0 > mx0 {
			mx0 = v0
		}
		if v1 < mn1 {
			mn1 = v1
		}
		if v1 > mx1 {
			mx1 = v1
		}
		if v2 < mn2 {
			mn2 = v2
		}
		if v2 > mx2 {
			mx2 = v2
		}
		if v3 < mn3 {
			mn3 = v3
		}
		if v3 > mx3 {
			mx3 = v3
		}
		s0 += float64(v0)
		s1 += float64(v1)
		s2 += float64(v2)
		s3 += float64(v3)
	}
	for ; i < len(ls); i++ {
		v := ls[i]
		if v < mn0 {
			mn0 = v
		}
		if v > mx0 {
			mx0 = v
		}
		s0 += float64(v)
	}
	sum := (s0 + s1) + (s2 + s3)
	if !math.IsNaN(sum) && !math.IsInf(sum, 0) {
		p.lmin = min(min(mn0, mn1), min(mn2, mn3))
		p.lmax = max(max(mx0, mx1), max(mx2, mx3))
		p.lsum = sum
	} else {
		p.lmin, p.lmax, sum = float32(math.Inf(1)), float32(math.Inf(-1)), 0
		for i, v := range ls {
			if !finite32(v) {
				if p.bad == 0 {
					p.badAt = lo + i
				}
				p.bad++
				continue
			}
			p.lmin = min(p.lmin, v)
			p.lmax = max(p.lmax, v)
			sum += float64(v)
		}
		p.lsum = sum
	}
	if w.domains == nil {
		return
	}
	nm := int32(len(w.logMult))
	for i, d := range w.domains[lo:hi] {
		if d < 0 || (w.logMult != nil && d >= nm) {
			p.domBadAt = lo + i
			return
		}
		p.maxDom = max(p.maxDom, d)
	}
}

// denseDomains bounds the largest id for which compactDomains uses a
// table indexed by id (O(max id) memory) rather than a sort: the table is
// never larger than a few times the batch.
func denseDomains(M int) int64 { return 4*int64(M) + 1024 }

// compactDomains maps the batch's domain ids (all >= 0, the largest
// maxDom) to dense indices 0..ndom-1 in increasing id order, so that the
// per-domain sums cost O(distinct ids), not O(largest id): an id of
// 2^31-1 costs as much as an id of 1. It sets ndom, domIDs and didx and
// allocates nothing in steady state.
func (w *Weigher) compactDomains(maxDom int32) {
	M := len(w.domains)
	if cap(w.didx) < M {
		w.didx = make([]int32, M)
	}
	didx := w.didx[:M]
	ids := w.domIDs[:0]
	if int64(maxDom) < denseDomains(M) {
		n := int(maxDom) + 1
		if cap(w.domTab) < n {
			w.domTab = make([]int32, n)
		}
		tab := w.domTab[:n]
		clear(tab)
		for _, d := range w.domains {
			tab[d] = 1 // present
		}
		for id, present := range tab {
			if present != 0 {
				tab[id] = int32(len(ids))
				ids = append(ids, int32(id))
			}
		}
		for i, d := range w.domains {
			didx[i] = tab[d]
		}
	} else {
		ids = append(ids, w.domains...)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		for i, d := range w.domains {
			j, _ := slices.BinarySearch(ids, d)
			didx[i] = int32(j)
		}
	}
	w.domIDs, w.didx, w.ndom = ids, didx, len(ids)
}
