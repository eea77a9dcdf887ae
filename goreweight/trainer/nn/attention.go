package nn

import (
	"math"

	"github.com/goreweight/goreweight/goreweight/trainer/nn/internal/fastmath"
)

// Attention is causal multi-head self-attention over a packed qkv buffer (the
// output of GPT's c_attn Linear): for sequence b, head h and hs = C/H,
//
//	q, k, v = qkv[b,:,h*hs:(h+1)*hs], qkv[b,:,C+h*hs:...], qkv[b,:,2C+h*hs:...]
//	att     = softmax(q·kᵀ / sqrt(hs) masked to j <= t)   (T×T)
//	out[b,:,h*hs:(h+1)*hs] = att · v.
//
// Work is split over the B*H (sequence, head) pairs. Each pair's products are
// done in row blocks of at most 32 query positions so that the masked upper
// triangle is mostly skipped. An Attention keeps scratch space for Backward
// and is not safe for concurrent use.
type Attention struct {
	// Heads is H; C must be a multiple of it.
	Heads int

	block   int         // query rows per block; 0 means defaultAttnBlock
	scratch [][]float32 // per-worker block×T buffers for Backward
}

// defaultAttnBlock is the query-row block size of the causal products.
const defaultAttnBlock = 32

func (a *Attention) rowBlock() int {
	if a.block > 0 {
		return a.block
	}
	return defaultAttnBlock
}

// Forward computes out (B×T×C) from qkv (B×T×3C) and stores the attention
// probabilities in att (B×H×T×T, zero above the diagonal) for Backward.
func (a *Attention) Forward(out, att, qkv []float32, B, T int) {
	C := len(qkv) / (3 * B * T)
	H := a.Heads
	hs := C / H
	scale := float32(1 / math.Sqrt(float64(hs)))
	bs := a.rowBlock()
	parallelFor(B*H, 1, func(_, lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			q := qkv[b*T*3*C+h*hs:]
			k := q[C:]
			v := q[2*C:]
			p := att[bh*T*T : (bh+1)*T*T]
			y := out[b*T*C+h*hs:]
			for r0 := 0; r0 < T; r0 += bs {
				r1 := min(r0+bs, T)
				// Scores of query rows [r0, r1) against keys [0, r1).
				gemm(false, true, r1-r0, r1, hs, scale, q[r0*3*C:], 3*C, k, 3*C, 0, p[r0*T:], T)
				for t := r0; t < r1; t++ {
					softmaxCausalRow(p[t*T:(t+1)*T], t)
				}
				gemm(false, false, r1-r0, hs, r1, 1, p[r0*T:], T, v, 3*C, 0, y[r0*C:], C)
			}
		}
	})
}

// softmaxCausalRow replaces row[0:t+1] by its softmax and zeroes row[t+1:].
func softmaxCausalRow(row []float32, t int) {
	s := row[:t+1]
	mx := fastmath.Max(s)
	fastmath.Scale(s, 1/fastmath.ExpSum(s, mx))
	clear(row[t+1:])
}

// Backward adds the gradient with respect to qkv to dQKV (B×T×3C), given dOut
// (B×T×C), the forward qkv and the probabilities att it stored. With P = att
// and dY the slice of dOut for one (b, h):
//
//	dV += Pᵀ·dY,  dP = dY·Vᵀ,  dS = P ⊙ (dP - rowsum(P ⊙ dP)),
//	dQ += dS·K / sqrt(hs),  dK += dSᵀ·Q / sqrt(hs).
func (a *Attention) Backward(dQKV, dOut, qkv, att []float32, B, T int) {
	C := len(qkv) / (3 * B * T)
	H := a.Heads
	hs := C / H
	scale := float32(1 / math.Sqrt(float64(hs)))
	bs := min(a.rowBlock(), T)
	nw := Threads()
	if len(a.scratch) < nw {
		a.scratch = append(a.scratch, make([][]float32, nw-len(a.scratch))...)
	}
	for w := range a.scratch[:nw] {
		if len(a.scratch[w]) < bs*T {
			a.scratch[w] = make([]float32, bs*T)
		}
	}
	parallelFor(B*H, 1, func(worker, lo, hi int) {
		ds := a.scratch[worker]
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			off := b*T*3*C + h*hs
			q, k, v := qkv[off:], qkv[off+C:], qkv[off+2*C:]
			dq, dk, dv := dQKV[off:], dQKV[off+C:], dQKV[off+2*C:]
			p := att[bh*T*T : (bh+1)*T*T]
			dy := dOut[b*T*C+h*hs:]
			for r0 := 0; r0 < T; r0 += bs {
				r1 := min(r0+bs, T)
				n := r1 - r0
				// dV[0:r1] += P[r0:r1, 0:r1]ᵀ · dY[r0:r1]
				gemm(true, false, r1, hs, n, 1, p[r0*T:], T, dy[r0*C:], C, 1, dv, 3*C)
				// dP[r0:r1, 0:r1] = dY[r0:r1] · V[0:r1]ᵀ, then the softmax backward in place.
				gemm(false, true, n, r1, hs, 1, dy[r0*C:], C, v, 3*C, 0, ds, T)
				for t := r0; t < r1; t++ {
					pr := p[t*T : t*T+t+1]
					dr := ds[(t-r0)*T : (t-r0)*T+r1]
					fastmath.SoftmaxBackward(dr[:t+1], pr, fastmath.Dot(pr, dr))
					clear(dr[t+1:])
				}
				// dQ[r0:r1] += dS · K[0:r1] * scale;  dK[0:r1] += dSᵀ · Q[r0:r1] * scale
				gemm(false, false, n, hs, r1, scale, ds, T, k, 3*C, 1, dq[r0*3*C:], 3*C)
				gemm(true, false, r1, hs, n, scale, ds, T, q[r0*3*C:], 3*C, 1, dk, 3*C)
			}
		}
	})
}
