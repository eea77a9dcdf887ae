// The reference model of Config.Reference: its checkpoint, checked against
// the run, and its fingerprint.

package train

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
)

// ReferenceInfo describes the reference model of a run (Config.Reference).
type ReferenceInfo struct {
	// Path is the checkpoint file the model was read from.
	Path string `json:"path"`
	// Strategy and Step are the checkpoint's strategy and optimiser steps.
	Strategy string `json:"strategy"`
	Step     int    `json:"step"`
	// Layers, Heads, Width and Seq are the reference model's shape, Params
	// its parameter count.
	Layers int `json:"layers"`
	Heads  int `json:"heads"`
	Width  int `json:"width"`
	Seq    int `json:"seq"`
	Params int `json:"params"`
	// SHA256 is the hex SHA-256 of the checkpoint file: a resumed run
	// refuses a reference that changed.
	SHA256 string `json:"sha256"`
}

// reference is a loaded reference model.
type reference struct {
	model *gpt.Model
	info  ReferenceInfo
}

// referenceCheckpoint finds the checkpoint file of a Reference value: the
// file itself, DIR/checkpoint.zip (a strategy directory), or the only
// checkpoint of a run directory (DIR/<strategy>/ or DIR/seed-<n>/<strategy>/).
func referenceCheckpoint(dir string) (string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", keyError("reference", fmt.Sprintf("train: reference = %q: %v (want a goreweight-train run directory, strategy directory or checkpoint file)", dir, err), err)
	}
	if !st.IsDir() {
		return dir, nil
	}
	if p := filepath.Join(dir, checkpointName); fileExists(p) {
		return p, nil
	}
	var found []string
	for _, pat := range []string{filepath.Join(dir, "*", checkpointName), filepath.Join(dir, "seed-*", "*", checkpointName)} {
		m, _ := filepath.Glob(pat)
		found = append(found, m...)
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return "", keyError("reference", fmt.Sprintf("train: reference = %q holds no goreweight-train checkpoint (%s, <strategy>/%s or seed-<n>/<strategy>/%s)", dir, checkpointName, checkpointName, checkpointName), fs.ErrNotExist)
	case 1:
		return found[0], nil
	}
	var rel []string
	for _, f := range found {
		r, _ := filepath.Rel(dir, filepath.Dir(f))
		rel = append(rel, r)
	}
	return "", keyError("reference", fmt.Sprintf("train: reference = %q holds %d checkpoints (%s): name one of them, e.g. %s", dir, len(found), strings.Join(rel, ", "), filepath.Join(dir, rel[0])), nil)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// loadReference reads the reference model of cfg (nil when cfg.Reference
// is empty) and checks that it can score this run's batches: the same
// tokenizer and vocabulary, and a context of at least cfg.Seq tokens.
func loadReference(cfg Config, vocab int) (*reference, error) {
	if cfg.Reference == "" {
		return nil, nil
	}
	path, err := referenceCheckpoint(cfg.Reference)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: reference: %w", err)
	}
	sm, err := LoadModel(path)
	if err != nil {
		return nil, fmt.Errorf("train: reference %s: %w", cfg.Reference, err)
	}
	mc := sm.Model.Config()
	mismatch := func(what string) error {
		return keyError("reference", fmt.Sprintf("train: reference = %q (%s): %s", cfg.Reference, path, what), nil)
	}
	if sm.Config.Tokenizer != "" && sm.Config.Tokenizer != cfg.Tokenizer {
		return nil, mismatch(fmt.Sprintf("its tokenizer is %q, this run's is %q: the reference must share the tokenizer", sm.Config.Tokenizer, cfg.Tokenizer))
	}
	if mc.Vocab != vocab {
		return nil, mismatch(fmt.Sprintf("its vocabulary has %d tokens, this run's tokenizer %q has %d: the reference must share the vocabulary", mc.Vocab, cfg.Tokenizer, vocab))
	}
	if mc.Seq < cfg.Seq {
		return nil, mismatch(fmt.Sprintf("its context is %d tokens, shorter than this run's seq %d", mc.Seq, cfg.Seq))
	}
	sum := sha256.Sum256(b)
	return &reference{model: sm.Model, info: ReferenceInfo{Path: path, Strategy: sm.Strategy, Step: sm.Step,
		Layers: mc.Layers, Heads: mc.Heads, Width: mc.Width, Seq: mc.Seq, Params: sm.Model.NumParams(),
		SHA256: hex.EncodeToString(sum[:])}}, nil
}

// errReferenceChanged is wrapped by the error of a resumed run whose
// reference checkpoint is not the one it started with.
var errReferenceChanged = errors.New("the reference model changed since the run started")
