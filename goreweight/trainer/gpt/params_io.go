package gpt

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/goreweight/goreweight/goreweight/trainer/tensorfile"
)

// The parameter file is a safetensors file (package tensorfile) holding
// every parameter under its Params name ("wte", "h.0.attn.c_attn.weight",
// ...) and shape, in nn.Linear's [out, in] layout, with the metadata
//
//	format   "goreweight.gpt"
//	version  "2"
//	vocab, seq, layers, heads, width   the Config, in decimal
//
// plus tensorfile's checksum. Gradients are not stored. Python reads it
// with safetensors.numpy.load_file. Version 1, a custom CRC'd binary
// format, is no longer read (its files start with "GRWGPT"; the error says
// so): checkpoints are for resuming a run with the build that wrote them.
const (
	paramsFormat  = "goreweight.gpt"
	paramsVersion = "2"
	oldMagic      = "GRWGPT\x1a\n"
)

// ErrParamsFile is wrapped by every error about a parameter file's
// content. It Is tensorfile.ErrFormat.
var ErrParamsFile = tensorfile.NewErrFormat("gpt: invalid parameter file")

// SaveParams writes the model's configuration and parameter values to w in
// the format above. It does not close w or make the write atomic: callers
// write to a temporary file and rename it.
func (m *Model) SaveParams(w io.Writer) error {
	ts := make([]tensorfile.Tensor, len(m.params))
	for i, p := range m.params {
		ts[i] = tensorfile.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Data}
	}
	c := m.cfg
	meta := map[string]string{"format": paramsFormat, "version": paramsVersion}
	for _, f := range configFields(&c) {
		meta[f.key] = strconv.Itoa(*f.v)
	}
	if err := tensorfile.Write(w, ts, meta); err != nil {
		return fmt.Errorf("gpt: writing parameters: %w", err)
	}
	return nil
}

type configField struct {
	key string
	v   *int
}

func configFields(c *Config) []configField {
	return []configField{{"vocab", &c.Vocab}, {"seq", &c.Seq}, {"layers", &c.Layers}, {"heads", &c.Heads}, {"width", &c.Width}}
}

// LoadParams reads a parameter file written by SaveParams into the model. The
// file's configuration, tensor names and shapes must match the model's; on any
// error (mismatch, truncation, bad checksum) the model is left unchanged.
// Gradients are not touched.
func (m *Model) LoadParams(r io.Reader) error {
	f, cfg, err := readParams(r)
	if err != nil {
		return err
	}
	if cfg != m.cfg {
		return fmt.Errorf("%w: it is for a model with %v, this model has %v", ErrParamsFile, cfg, m.cfg)
	}
	if err := m.checkTensors(f); err != nil {
		return err
	}
	m.copyIn(f)
	return nil
}

// Load reads a parameter file written by SaveParams and returns a new model
// with its configuration and parameters (gradients zero).
func Load(r io.Reader) (*Model, error) {
	f, cfg, err := readParams(r)
	if err != nil {
		return nil, err
	}
	m, err := newModel(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrParamsFile, err)
	}
	if err := m.checkTensors(f); err != nil {
		return nil, err
	}
	m.copyIn(f)
	return m, nil
}

// readParams decodes and verifies a parameter file and its configuration.
func readParams(r io.Reader) (*tensorfile.File, Config, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, Config{}, fmt.Errorf("gpt: reading parameters: %w", err)
	}
	if bytes.HasPrefix(b, []byte(oldMagic)) {
		return nil, Config{}, fmt.Errorf("%w: it is in the version 1 format of goreweight before 2026-12, which this build no longer reads; resume it with an older build or train again", ErrParamsFile)
	}
	f, err := tensorfile.Decode(b)
	if err != nil {
		return nil, Config{}, fmt.Errorf("%w: %w", ErrParamsFile, err)
	}
	if !f.Verified {
		return nil, Config{}, fmt.Errorf("%w: it has no goreweight checksum (not written by SaveParams)", ErrParamsFile)
	}
	if f.Meta["format"] != paramsFormat || f.Meta["version"] != paramsVersion {
		return nil, Config{}, fmt.Errorf("%w: format %q version %q, want %q version %s", ErrParamsFile, f.Meta["format"], f.Meta["version"], paramsFormat, paramsVersion)
	}
	var cfg Config
	for _, fl := range configFields(&cfg) {
		v, err := strconv.Atoi(f.Meta[fl.key])
		if err != nil {
			return nil, Config{}, fmt.Errorf("%w: metadata %q = %q is not an integer", ErrParamsFile, fl.key, f.Meta[fl.key])
		}
		*fl.v = v
	}
	if err := cfg.Validate(); err != nil {
		return nil, Config{}, fmt.Errorf("%w: invalid config: %w", ErrParamsFile, err)
	}
	// The values must be there before a model of that size is allocated.
	n, _ := cfg.numParams()
	have := 0
	for _, t := range f.Tensors {
		have += len(t.Data)
	}
	if have != n {
		return nil, Config{}, fmt.Errorf("%w: it holds %d values, a model with %v has %d", ErrParamsFile, have, cfg, n)
	}
	return f, cfg, nil
}

// checkTensors reports whether f holds exactly m's parameters, in order,
// with their shapes.
func (m *Model) checkTensors(f *tensorfile.File) error {
	if len(f.Tensors) != len(m.params) {
		return fmt.Errorf("%w: %d tensors, the model has %d", ErrParamsFile, len(f.Tensors), len(m.params))
	}
	for i, p := range m.params {
		t := f.Tensors[i]
		if t.Name != p.Name {
			return fmt.Errorf("%w: tensor %q where the model has %q", ErrParamsFile, t.Name, p.Name)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("%w: tensor %q has shape %v, the model's is %v", ErrParamsFile, p.Name, t.Shape, p.Shape)
		}
	}
	return nil
}

// copyIn copies f's values (checked by checkTensors) into the parameters.
func (m *Model) copyIn(f *tensorfile.File) {
	for i, p := range m.params {
		copy(p.Data, f.Tensors[i].Data)
	}
}
