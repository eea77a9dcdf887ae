//go:build (openblas || scipyopenblas) && cgo

package nn

// wantBackend is the library this build links, then the kernel set it chose.
const wantBackend = blasLibrary + " ("
