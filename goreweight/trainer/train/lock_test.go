//go:build unix

package train

import (
	"context"
	"strings"
	"testing"
)

// TestRunDirLock checks that a run directory held by another process (here:
// another open file description of its lock file, which flock treats alike)
// cannot be resumed or started into, with an error naming the directory, and
// that the same resume works once the lock is released.
func TestRunDirLock(t *testing.T) {
	c := tinyConfig(t)
	c.Steps, c.EvalEvery, c.CkptEvery, c.ValMax = 4, 2, 2, 8
	c.Compare = StrategyList{"uniform"}
	if _, err := Run(context.Background(), c, Options{}); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockRunDir(c.Out)
	if err != nil {
		t.Fatalf("the finished run left its directory locked: %v", err)
	}
	_, err = Run(context.Background(), Config{Resume: c.Out}, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another goreweight-train process") || !strings.Contains(err.Error(), c.Out) {
		t.Errorf("resume of a locked run: err %v, want an error naming the directory in use", err)
	}
	unlock()
	if _, err := Run(context.Background(), Config{Resume: c.Out}, Options{}); err != nil {
		t.Errorf("resume after the lock is released: %v", err)
	}

	// A directory holding only the lock file of a run that never started is
	// still a valid new run directory.
	d := t.TempDir()
	unlock, err = lockRunDir(d)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	fresh := c
	fresh.Out = d
	if _, err := Run(context.Background(), fresh, Options{}); err != nil {
		t.Errorf("new run into a directory with a stale lock file: %v", err)
	}
}
