//go:build (openblas || scipyopenblas) && !cgo

package nn

// The openblas and scipyopenblas build tags need cgo. Without it this file
// stops the build with an error that names the fix, instead of silently
// falling back to gonum.
var _ = openblasTagsNeedCgo_SetCGO_ENABLED1_AndAC_Compiler
