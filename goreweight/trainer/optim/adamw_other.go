//go:build !amd64 || purego

package optim

func adamwKernel(data, grad, m, v []float32, k *[8]float64) { adamwScalar(data, grad, m, v, k) }
