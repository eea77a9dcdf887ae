//go:build amd64 && !purego

package optim

import "github.com/goreweight/goreweight/goreweight/trainer/nn"

// adamwAVX runs adamwScalar's update on n elements (n a multiple of 4), four
// float64 lanes at a time with the same operations in the same order and no
// fused multiply-add, so its results are bitwise those of adamwScalar.
// k holds b1, 1-b1, b2, 1-b2, decay, stepSize, sqrtBC2, eps.
//
//go:noescape
func adamwAVX(data, grad, m, v *float32, n int, k *[8]float64)

func adamwKernel(data, grad, m, v []float32, k *[8]float64) {
	n := len(data)
	if n4 := n &^ 3; nn.SIMD() && n4 > 0 {
		_, _, _ = grad[n-1], m[n-1], v[n-1]
		adamwAVX(&data[0], &grad[0], &m[0], &v[0], n4, k)
		data, grad, m, v = data[n4:], grad[n4:n], m[n4:n], v[n4:n]
	}
	adamwScalar(data, grad, m, v, k)
}
