package nn

// Embedding is GPT's input encoder: the sum of a token embedding and a learned
// position embedding,
//
//	out[b,t,:] = Tok[ids[b,t],:] + Pos[t,:].
type Embedding struct {
	// Tok is the token table, shape [V, C].
	Tok *Param
	// Pos is the position table, shape [maxT, C].
	Pos *Param
}

// Forward writes the encodings of ids (B×T token ids in [0, V), T <= maxT) into
// out (B×T×C).
func (e *Embedding) Forward(out []float32, ids []int32, B, T int) {
	C := e.Tok.Shape[1]
	tok, pos := e.Tok.Data, e.Pos.Data
	parallelFor(B*T, 64, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			t := i % T
			o := out[i*C : (i+1)*C]
			w := tok[int(ids[i])*C : int(ids[i])*C+C]
			p := pos[t*C : t*C+C]
			for j := range o {
				o[j] = w[j] + p[j]
			}
		}
	})
}

// Backward adds the gradient dOut (B×T×C) to Tok.Grad, scattered by token id,
// and to Pos.Grad, summed over the batch.
func (e *Embedding) Backward(dOut []float32, ids []int32, B, T int) {
	C := e.Tok.Shape[1]
	dTok, dPos := e.Tok.Grad, e.Pos.Grad
	// Token ids repeat, so rows of dTok receive many additions: split by
	// columns and visit the rows in order, which fixes every summation order.
	parallelFor(C, 8, func(_, lo, hi int) {
		for i := 0; i < B*T; i++ {
			d := dOut[i*C+lo : i*C+hi]
			g := dTok[int(ids[i])*C+lo : int(ids[i])*C+hi]
			for j := range d {
				g[j] += d[j]
			}
		}
	})
	parallelFor(T, 1, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			g := dPos[t*C : t*C+C]
			for b := 0; b < B; b++ {
				d := dOut[(b*T+t)*C : (b*T+t)*C+C]
				for j := range g {
					g[j] += d[j]
				}
			}
		}
	})
}
