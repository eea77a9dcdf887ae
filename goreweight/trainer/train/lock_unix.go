//go:build unix

package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockName is the lock file of a run directory. Its lock (flock, released
// by the kernel when the process ends, also on SIGKILL) is what keeps two
// processes from training into one run directory at once: two writers would
// race on the checkpoints and logs that a resume relies on.
const lockName = ".goreweight-train.lock"

// lockRunDir takes the run directory's lock, or returns an error naming the
// directory when another process holds it. The returned function releases
// it.
func lockRunDir(dir string) (func(), error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: locking run directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("train: run directory %s is in use by another goreweight-train process (it holds %s); wait for it to finish or stop it, then resume", dir, lockName)
		}
		return nil, fmt.Errorf("train: locking run directory %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
