//go:build !openblas && !scipyopenblas

package nn

const wantBackend = "gonum"
