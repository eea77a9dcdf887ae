package fastmath

// Row operations of LayerNorm and softmax: the bulk through the AVX2 kernels
// when UseSIMD, the tail (and everything otherwise) in scalar Go. Sums are
// float32, accumulated in 8 lanes combined pairwise by the kernels; rows are
// at most a few thousand elements.

// bulk returns how many leading elements of an n-element row the kernels take.
func bulk(n int) int {
	if !UseSIMD {
		return 0
	}
	return n &^ 7
}

// Sum returns Σ x.
func Sum(x []float32) float32 {
	var s float32
	k := bulk(len(x))
	if k > 0 {
		s = sumAVX2(&x[0], k)
	}
	for _, v := range x[k:] {
		s += v
	}
	return s
}

// SumSqDev returns Σ (x - m)².
func SumSqDev(x []float32, m float32) float32 {
	var s float32
	k := bulk(len(x))
	if k > 0 {
		s = sumSqDevAVX2(&x[0], k, m)
	}
	for _, v := range x[k:] {
		s += (v - m) * (v - m)
	}
	return s
}

// Max returns the largest element of the non-empty x.
func Max(x []float32) float32 {
	k := bulk(len(x))
	m := x[0]
	if k > 0 {
		m = maxAVX2(&x[0], k)
	}
	for _, v := range x[k:] {
		m = max(m, v)
	}
	return m
}

// Scale multiplies x by a in place.
func Scale(x []float32, a float32) {
	k := bulk(len(x))
	if k > 0 {
		scaleAVX2(&x[0], k, a)
	}
	for i := k; i < len(x); i++ {
		x[i] *= a
	}
}

// Dot returns Σ a·b (len(b) >= len(a)).
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	k := bulk(len(a))
	if k > 0 {
		s = dotAVX2(&a[0], &b[0], k)
	}
	for i := k; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

// SoftmaxBackward sets dp[i] = p[i]·(dp[i] − dot), the softmax Jacobian
// applied to dp given dot = Σ p·dp (len(p) >= len(dp)).
func SoftmaxBackward(dp, p []float32, dot float32) {
	p = p[:len(dp)]
	k := bulk(len(dp))
	if k > 0 {
		softmaxBwdAVX2(&dp[0], &p[0], k, dot)
	}
	for i := k; i < len(dp); i++ {
		dp[i] = p[i] * (dp[i] - dot)
	}
}

// LNNormalize sets out = (x − m)·rs·w + b.
func LNNormalize(out, x, w, b []float32, m, rs float32) {
	n := len(x)
	out, w, b = out[:n], w[:n], b[:n]
	k := bulk(n)
	if k > 0 {
		lnNormAVX2(&out[0], &x[0], &w[0], &b[0], k, m, rs)
	}
	for i := k; i < n; i++ {
		out[i] = (x[i]-m)*rs*w[i] + b[i]
	}
}

// LNBackwardSums returns Σ d·w and Σ d·w·(x − m).
func LNBackwardSums(d, w, x []float32, m float32) (sg, sgx float32) {
	n := len(x)
	d, w = d[:n], w[:n]
	k := bulk(n)
	if k > 0 {
		sg, sgx = lnBwdSumsAVX2(&d[0], &w[0], &x[0], k, m)
	}
	for i := k; i < n; i++ {
		g := d[i] * w[i]
		sg += g
		sgx += g * (x[i] - m)
	}
	return sg, sgx
}

// LNBackwardInput adds (d·w − mg − (x − m)·k)·rs to dx.
func LNBackwardInput(dx, d, w, x []float32, m, rs, mg, k float32) {
	n := len(x)
	dx, d, w = dx[:n], d[:n], w[:n]
	b := bulk(n)
	if b > 0 {
		lnBwdInAVX2(&dx[0], &d[0], &w[0], &x[0], b, m, rs, mg, k)
	}
	for i := b; i < n; i++ {
		dx[i] += (d[i]*w[i] - mg - (x[i]-m)*k) * rs
	}
}

// LNParamGrads adds d·(x − m)·rs to gw and d to gb.
func LNParamGrads(gw, gb, d, x []float32, m, rs float32) {
	n := len(x)
	gw, gb, d = gw[:n], gb[:n], d[:n]
	k := bulk(n)
	if k > 0 {
		lnParamAVX2(&gw[0], &gb[0], &d[0], &x[0], k, m, rs)
	}
	for i := k; i < n; i++ {
		gw[i] += d[i] * (x[i] - m) * rs
		gb[i] += d[i]
	}
}
