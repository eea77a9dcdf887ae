package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/tensorfile"
)

// TestCorruptCheckpoint: a damaged checkpoint stops a resume and LoadModel
// with an error that Is ErrCheckpoint (and tensorfile.ErrFormat) and names
// the file; a missing one is an fs error.
func TestCorruptCheckpoint(t *testing.T) {
	c := tinyConfig(t)
	c.Strategy, c.Compare = "linupper", nil
	c.Steps, c.CkptEvery = 4, 2
	if _, err := Run(context.Background(), c, Options{}); err != nil {
		t.Fatal(err)
	}
	path := CheckpointPath(c.Out, "linupper")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sm, err := LoadModel(path); err != nil || sm.Step != 4 || sm.Strategy != "linupper" {
		t.Fatalf("LoadModel: %+v, %v", sm, err)
	}
	// Damage the parameter data inside the archive (entries are stored,
	// so the bytes are there to find) and truncate the archive.
	i := bytes.Index(good, []byte("goreweight.gpt"))
	if i < 0 {
		t.Fatal("parameter metadata not found in the archive")
	}
	flipped := bytes.Clone(good)
	flipped[i+200] ^= 0x01
	for name, b := range map[string][]byte{"flipped": flipped, "truncated": good[:len(good)/2], "empty": nil} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadModel(path)
		if !errors.Is(err, ErrCheckpoint) || !errors.Is(err, tensorfile.ErrFormat) || !bytes.Contains([]byte(err.Error()), []byte(path)) {
			t.Errorf("%s: LoadModel error %v, want ErrCheckpoint naming the file", name, err)
		}
		r := Config{Resume: c.Out, Quiet: true}
		if _, err := Run(context.Background(), r, Options{}); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("%s: resume error %v, want ErrCheckpoint", name, err)
		}
	}
	if _, err := LoadModel(filepath.Join(c.Out, "nope", "checkpoint.zip")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing checkpoint: %v", err)
	}
}
