package optim

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/goreweight/goreweight/goreweight/trainer/nn"
	"github.com/goreweight/goreweight/goreweight/trainer/tensorfile"
)

// The AdamW state is a safetensors file (package tensorfile) holding, for
// each parameter NAME in the optimiser's order, its first and second
// moments as "exp_avg.NAME" and "exp_avg_sq.NAME" (PyTorch's names) in the
// parameter's shape, with the metadata
//
//	format   "goreweight.adamw"
//	version  "2"
//	step     the number of updates taken, in decimal
//
// plus tensorfile's checksum. The hyperparameters are not part of the
// state: they come from the caller's configuration when the optimiser is
// rebuilt, so a resumed run may change, say, the weight decay. Version 1
// (a custom binary format, starting "GRWADAM") is no longer read.
const (
	stateFormat   = "goreweight.adamw"
	stateVersion  = "2"
	stateOldMagic = "GRWADAM\n"
)

// ErrStateFile is wrapped by every error about an AdamW state file's
// content. It Is tensorfile.ErrFormat.
var ErrStateFile = tensorfile.NewErrFormat("optim: invalid AdamW state")

// stateShape is the shape a parameter's moments are stored in: its own, or
// flat when it has none that fits.
func stateShape(p *nn.Param) []int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	if len(p.Shape) == 0 || n != len(p.Data) {
		return []int{len(p.Data)}
	}
	return p.Shape
}

// SaveState writes the step count and moments to w. It does not close w or
// make the write atomic.
func (o *AdamW) SaveState(w io.Writer) error {
	ts := make([]tensorfile.Tensor, 0, 2*len(o.params))
	for k, p := range o.params {
		sh := stateShape(p)
		ts = append(ts, tensorfile.Tensor{Name: "exp_avg." + p.Name, Shape: sh, Data: o.m[k]},
			tensorfile.Tensor{Name: "exp_avg_sq." + p.Name, Shape: sh, Data: o.v[k]})
	}
	meta := map[string]string{"format": stateFormat, "version": stateVersion, "step": strconv.FormatInt(o.step, 10)}
	if err := tensorfile.Write(w, ts, meta); err != nil {
		return fmt.Errorf("optim: writing AdamW state: %w", err)
	}
	return nil
}

// LoadState reads a state written by SaveState for the same parameters (same
// count, names and shapes, in order) and replaces the step count and
// moments. On any error the optimiser is left unchanged.
func (o *AdamW) LoadState(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("optim: reading AdamW state: %w", err)
	}
	if bytes.HasPrefix(b, []byte(stateOldMagic)) {
		return fmt.Errorf("%w: it is in the version 1 format of goreweight before 2026-12, which this build no longer reads", ErrStateFile)
	}
	f, err := tensorfile.Decode(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStateFile, err)
	}
	if !f.Verified {
		return fmt.Errorf("%w: it has no goreweight checksum (not written by SaveState)", ErrStateFile)
	}
	if f.Meta["format"] != stateFormat || f.Meta["version"] != stateVersion {
		return fmt.Errorf("%w: format %q version %q, want %q version %s", ErrStateFile, f.Meta["format"], f.Meta["version"], stateFormat, stateVersion)
	}
	step, err := strconv.ParseInt(f.Meta["step"], 10, 64)
	if err != nil || step < 0 {
		return fmt.Errorf("%w: step %q is not a count", ErrStateFile, f.Meta["step"])
	}
	if len(f.Tensors) != 2*len(o.params) {
		return fmt.Errorf("%w: it has %d parameters, the optimiser has %d", ErrStateFile, len(f.Tensors)/2, len(o.params))
	}
	m := make([][]float32, len(o.params))
	v := make([][]float32, len(o.params))
	for k, p := range o.params {
		sh := stateShape(p)
		for j, name := range []string{"exp_avg." + p.Name, "exp_avg_sq." + p.Name} {
			t := f.Tensors[2*k+j]
			if t.Name != name {
				return fmt.Errorf("%w: tensor %q where the optimiser has %q", ErrStateFile, t.Name, name)
			}
			if !slices.Equal(t.Shape, sh) {
				return fmt.Errorf("%w: tensor %q has shape %v, want %v", ErrStateFile, name, t.Shape, sh)
			}
		}
		m[k], v[k] = f.Tensors[2*k].Data, f.Tensors[2*k+1].Data
	}
	o.step, o.m, o.v = step, m, v
	return nil
}
