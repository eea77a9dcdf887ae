package gpt

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"slices"
)

// The parameter file format, version 1. All integers are little-endian uint32
// and all values little-endian IEEE-754 float32:
//
//	magic    8 bytes "GRWGPT\x1a\n"
//	version  uint32 = 1
//	config   5×uint32: Vocab, Seq, Layers, Heads, Width
//	hcrc     uint32: CRC-32 (IEEE) of the bytes above, checked before
//	         anything is allocated from the config
//	count    uint32: number of tensors, in Params order
//	count times:
//	  nameLen uint32, name (nameLen bytes, UTF-8)
//	  ndim    uint32, dims (ndim×uint32)
//	  data    product(dims)×float32
//	crc      uint32: CRC-32 (IEEE) of every preceding byte
//
// Gradients are not stored. Readers do not look past the checksum.
const (
	paramsMagic   = "GRWGPT\x1a\n"
	paramsVersion = 1
)

// SaveParams writes the model's configuration and parameter values to w in
// the format above. It does not close w or make the write atomic: callers
// write to a temporary file and rename it.
func (m *Model) SaveParams(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	crc := crc32.NewIEEE()
	e := &encoder{w: io.MultiWriter(bw, crc)}
	e.bytes([]byte(paramsMagic))
	e.u32(paramsVersion)
	c := m.cfg
	for _, v := range []int{c.Vocab, c.Seq, c.Layers, c.Heads, c.Width} {
		e.u32(uint32(v))
	}
	e.u32(crc.Sum32())
	e.u32(uint32(len(m.params)))
	for _, p := range m.params {
		e.u32(uint32(len(p.Name)))
		e.bytes([]byte(p.Name))
		e.u32(uint32(len(p.Shape)))
		for _, d := range p.Shape {
			e.u32(uint32(d))
		}
		e.floats(p.Data)
	}
	if e.err != nil {
		return fmt.Errorf("gpt: writing parameters: %w", e.err)
	}
	if err := binary.Write(bw, binary.LittleEndian, crc.Sum32()); err != nil {
		return fmt.Errorf("gpt: writing parameters: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gpt: writing parameters: %w", err)
	}
	return nil
}

// LoadParams reads a parameter file written by SaveParams into the model. The
// file's configuration, tensor names and shapes must match the model's; on any
// error (mismatch, truncation, bad checksum) the model is left unchanged.
// Gradients are not touched.
func (m *Model) LoadParams(r io.Reader) error {
	d := newDecoder(r)
	cfg, err := d.header()
	if err != nil {
		return err
	}
	if cfg != m.cfg {
		return fmt.Errorf("gpt: parameter file is for a model with %v, this model has %v", cfg, m.cfg)
	}
	buf := make([]float32, len(m.data))
	if err := d.body(m, buf); err != nil {
		return err
	}
	copy(m.data, buf)
	return nil
}

// Load reads a parameter file written by SaveParams and returns a new model
// with its configuration and parameters (gradients zero).
func Load(r io.Reader) (*Model, error) {
	d := newDecoder(r)
	cfg, err := d.header()
	if err != nil {
		return nil, err
	}
	m, err := newModel(cfg)
	if err != nil {
		return nil, fmt.Errorf("gpt: parameter file: %w", err)
	}
	if err := d.body(m, m.data); err != nil {
		return nil, err
	}
	return m, nil
}

// encoder writes little-endian values, remembering the first error.
type encoder struct {
	w   io.Writer
	err error
	buf [1 << 14]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) u32(v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	e.bytes(b[:])
}

func (e *encoder) floats(x []float32) {
	for len(x) > 0 && e.err == nil {
		n := min(len(x), len(e.buf)/4)
		for i, v := range x[:n] {
			binary.LittleEndian.PutUint32(e.buf[4*i:], math.Float32bits(v))
		}
		e.bytes(e.buf[:4*n])
		x = x[n:]
	}
}

// decoder reads little-endian values and checksums them.
type decoder struct {
	r   *bufio.Reader
	crc hash.Hash32
	buf [1 << 14]byte
}

func newDecoder(r io.Reader) *decoder {
	return &decoder{r: bufio.NewReaderSize(r, 1<<16), crc: crc32.NewIEEE()}
}

func (d *decoder) full(b []byte) error {
	if _, err := io.ReadFull(d.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("gpt: parameter file is truncated")
		}
		return fmt.Errorf("gpt: reading parameters: %w", err)
	}
	d.crc.Write(b)
	return nil
}

func (d *decoder) u32() (uint32, error) {
	var b [4]byte
	if err := d.full(b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

func (d *decoder) floats(x []float32) error {
	for len(x) > 0 {
		n := min(len(x), len(d.buf)/4)
		if err := d.full(d.buf[:4*n]); err != nil {
			return err
		}
		for i := range x[:n] {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.buf[4*i:]))
		}
		x = x[n:]
	}
	return nil
}

// header reads and checks the magic and version and returns the configuration.
func (d *decoder) header() (Config, error) {
	var magic [len(paramsMagic)]byte
	if err := d.full(magic[:]); err != nil {
		return Config{}, err
	}
	if string(magic[:]) != paramsMagic {
		return Config{}, errors.New("gpt: not a goreweight GPT parameter file (bad magic)")
	}
	v, err := d.u32()
	if err != nil {
		return Config{}, err
	}
	if v != paramsVersion {
		return Config{}, fmt.Errorf("gpt: parameter file version %d, this build reads version %d", v, paramsVersion)
	}
	var f [5]int
	for i := range f {
		u, err := d.u32()
		if err != nil {
			return Config{}, err
		}
		f[i] = int(u)
	}
	want := d.crc.Sum32()
	got, err := d.u32()
	if err != nil {
		return Config{}, err
	}
	if got != want {
		return Config{}, fmt.Errorf("gpt: parameter file header checksum mismatch (stored %08x, computed %08x): the file is corrupt", got, want)
	}
	cfg := Config{Vocab: f[0], Seq: f[1], Layers: f[2], Heads: f[3], Width: f[4]}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("gpt: parameter file has an invalid config: %w", err)
	}
	return cfg, nil
}

// body reads the tensors, checking them against m's layout, into buf (laid out
// like m.data), then the checksum.
func (d *decoder) body(m *Model, buf []float32) error {
	n, err := d.u32()
	if err != nil {
		return err
	}
	if int(n) != len(m.params) {
		return fmt.Errorf("gpt: parameter file has %d tensors, the model has %d", n, len(m.params))
	}
	off := 0
	for _, p := range m.params {
		nl, err := d.u32()
		if err != nil {
			return err
		}
		if int(nl) != len(p.Name) {
			return fmt.Errorf("gpt: parameter file tensor at %q has a name of length %d", p.Name, nl)
		}
		name := make([]byte, nl)
		if err := d.full(name); err != nil {
			return err
		}
		if string(name) != p.Name {
			return fmt.Errorf("gpt: parameter file has tensor %q where the model has %q", name, p.Name)
		}
		nd, err := d.u32()
		if err != nil {
			return err
		}
		if nd > 8 {
			return fmt.Errorf("gpt: parameter file tensor %q has %d dimensions", p.Name, nd)
		}
		shape := make([]int, nd)
		for i := range shape {
			u, err := d.u32()
			if err != nil {
				return err
			}
			shape[i] = int(u)
		}
		if !slices.Equal(shape, p.Shape) {
			return fmt.Errorf("gpt: parameter file tensor %q has shape %v, the model's is %v", p.Name, shape, p.Shape)
		}
		if err := d.floats(buf[off : off+len(p.Data)]); err != nil {
			return err
		}
		off += len(p.Data)
	}
	want := d.crc.Sum32()
	var b [4]byte
	if _, err := io.ReadFull(d.r, b[:]); err != nil {
		return errors.New("gpt: parameter file is truncated (no checksum)")
	}
	if got := binary.LittleEndian.Uint32(b[:]); got != want {
		return fmt.Errorf("gpt: parameter file checksum mismatch (stored %08x, computed %08x): the file is corrupt", got, want)
	}
	return nil
}
