// The evaluation noise: each final model's validation loss window by
// window, so that the summary can say how much of a difference the finite
// validation set alone could make.

package train

import (
	"archive/zip"
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
)

// windowLosses holds a final model's loss on every evaluated validation
// window, per domain (in env.domains order).
type windowLosses [][]float64

// evalWindows loads the final parameters of a strategy's run from its
// checkpoint and returns its loss on every evaluated validation window.
// The per-domain means equal the last record's validation losses exactly:
// same batches, same order of summation.
func evalWindows(cfg Config, e *env, strategy string) (windowLosses, error) {
	path := filepath.Join(cfg.Out, strategy, checkpointName)
	z, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("train: final evaluation: %w", err)
	}
	defer z.Close()
	mb, err := readEntry(&z.Reader, checkpointModel)
	if err != nil {
		return nil, fmt.Errorf("train: final evaluation: checkpoint %s: %w", path, err)
	}
	gcfg := gpt.Config{Vocab: e.ds.Tokenizer().VocabSize(), Seq: cfg.Seq, Layers: cfg.Layers, Heads: cfg.Heads, Width: cfg.Width}
	m, err := gpt.New(gcfg, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := m.LoadParams(bytes.NewReader(mb)); err != nil {
		return nil, fmt.Errorf("train: final evaluation: checkpoint %s: %w", path, err)
	}
	wl := make(windowLosses, len(e.val))
	for d, batches := range e.val {
		for _, b := range batches {
			losses, err := m.Evaluate(b.Tokens, b.Targets, len(b.IDs), cfg.Seq)
			if err != nil {
				return nil, fmt.Errorf("train: final evaluation: %w", err)
			}
			for _, l := range losses {
				wl[d] = append(wl[d], float64(l))
			}
		}
	}
	return wl, nil
}

// domainMean returns the mean loss of domain d, summed in window order
// (as the trainer's evaluation does).
func (w windowLosses) domainMean(d int) float64 {
	var s float64
	for _, l := range w[d] {
		s += l
	}
	return s / float64(len(w[d]))
}

// se returns the standard error of the domain-averaged validation loss
// over the windows (see standardError), NaN when a domain has fewer than
// two windows.
func (w windowLosses) se() float64 {
	var ok [][]float64
	for _, d := range w {
		if len(d) > 0 {
			ok = append(ok, d)
		}
	}
	return standardError(ok)
}

// pairedSE returns the standard error of the domain-averaged difference
// w - base over the same windows: the evaluation noise of a paired
// difference. NaN when the windows differ.
func (w windowLosses) pairedSE(base windowLosses) float64 {
	if len(w) != len(base) {
		return nan64
	}
	var diffs [][]float64
	for d := range w {
		if len(w[d]) != len(base[d]) {
			return nan64
		}
		if len(w[d]) == 0 {
			continue
		}
		df := make([]float64, len(w[d]))
		for i := range df {
			df[i] = w[d][i] - base[d][i]
		}
		diffs = append(diffs, df)
	}
	return standardError(diffs)
}
