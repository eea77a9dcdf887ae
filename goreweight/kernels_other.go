//go:build !amd64 || purego

package goreweight

// useAVX2 is false: there are no assembly kernels on this platform.
var useAVX2 = false

func expVecAVX2(dst, x []float64) { panic("goreweight: no AVX2 kernels") }
func expScoresAVX2(kind int, dst, ls []float32, p *expParams, a *expAcc) {
	panic("goreweight: no AVX2 kernels")
}
func scanAVX2(ls []float32, a *scanAcc)  { panic("goreweight: no AVX2 kernels") }
func scaleAVX2(dst []float32, f float64) { panic("goreweight: no AVX2 kernels") }
