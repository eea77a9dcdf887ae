//go:build !unix

package train

// lockName is the lock file of a run directory (unused where flock is not
// available).
const lockName = ".goreweight-train.lock"

// lockRunDir does nothing where flock is not available: there, two processes
// must not be pointed at one run directory.
func lockRunDir(dir string) (func(), error) { return func() {}, nil }
