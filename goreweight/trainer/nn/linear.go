package nn

// Linear is an affine map with PyTorch's nn.Linear layout,
//
//	out[i,:] = in[i,:] · Wᵀ + B,
//
// W of shape [Out, In] and an optional bias B of shape [Out]. GPT's language
// model head is a Linear whose W is the token embedding and whose B is nil.
type Linear struct {
	// W is the weight, shape [Out, In].
	W *Param
	// B is the bias, shape [Out], or nil for none.
	B *Param
}

// Forward computes out (n×Out) from in (n×In). Each goroutine takes a block
// of rows: it writes the bias into them, then adds in·Wᵀ with one sgemm.
func (l *Linear) Forward(out, in []float32, n int) {
	nOut, nIn := l.W.Shape[0], l.W.Shape[1]
	parallelFor(n, gemmRowGrain, func(_, lo, hi int) {
		beta := float32(0)
		if l.B != nil {
			for i := lo; i < hi; i++ {
				copy(out[i*nOut:(i+1)*nOut], l.B.Data)
			}
			beta = 1
		}
		gemm(false, true, hi-lo, nOut, nIn, 1, in[lo*nIn:], nIn, l.W.Data, nIn, beta, out[lo*nOut:], nOut)
	})
}

// Backward adds dOut·W to dIn (n×In) and dOutᵀ·in and the column sums of
// dOut to the gradients of W and B, given dOut (n×Out) and the forward input
// in (n×In). dIn may be nil when the input needs no gradient.
func (l *Linear) Backward(dIn, dOut, in []float32, n int) {
	nOut, nIn := l.W.Shape[0], l.W.Shape[1]
	if dIn != nil {
		matmul(false, false, n, nIn, nOut, 1, dOut, nOut, l.W.Data, nIn, 1, dIn, nIn)
	}
	// dW rows (output features) split across goroutines; each also owns the
	// matching bias entries, the column sums of its slice of dOut.
	dW := l.W.Grad
	var dB []float32
	if l.B != nil {
		dB = l.B.Grad
	}
	parallelFor(nOut, gemmRowGrain, func(_, lo, hi int) {
		gemm(true, false, hi-lo, nIn, n, 1, dOut[lo:], nOut, in, nIn, 1, dW[lo*nIn:], nIn)
		if dB == nil {
			return
		}
		colSums(dB[lo:hi], dOut[lo:], n, hi-lo, nOut)
	})
}
