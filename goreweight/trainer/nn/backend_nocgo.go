//go:build openblas && !cgo

package nn

// The openblas build tag needs cgo. Without it this file stops the build with
// an error that names the fix, instead of silently falling back to gonum.
var _ = openblasTagNeedsCgo_SetCGO_ENABLED1_AndInstall_libopenblasDev
