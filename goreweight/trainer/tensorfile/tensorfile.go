// Package tensorfile reads and writes named float32 tensors in the
// safetensors layout (https://huggingface.co/docs/safetensors), the one
// tensor file format of the trainer: model parameters, optimiser state and
// the Hugging Face export all use it, so Python reads them with
// safetensors.numpy.load_file (or safetensors.torch) directly.
//
// The layout:
//
//	8 bytes   N, little-endian uint64: the length of the header
//	N bytes   the header, UTF-8 JSON, padded with spaces to a multiple of 8:
//	          {"NAME": {"dtype": "F32", "shape": [d0, d1, ...],
//	                    "data_offsets": [begin, end]}, ...,
//	           "__metadata__": {"key": "value", ...}}
//	the rest  the data: each tensor's values, row-major, little-endian,
//	          at [begin, end) relative to the end of the header
//
// goreweight adds an integrity check the format lacks: the metadata key
// ChecksumKey holds the CRC-32 (IEEE, 8 hex digits) of the data section
// followed by the JSON encoding (sorted keys) of the other metadata, so a
// flipped bit in the values or in, say, a step count is detected on read.
// Files from other writers have no checksum; Decode reads them and reports
// File.Verified false, and callers that need integrity (checkpoints)
// refuse them.
//
// Only F32 tensors are read and written. Every size in a file is checked
// against the file's length before anything is allocated, so a small
// corrupt file never causes a large allocation.
package tensorfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ChecksumKey is the metadata key of the integrity checksum.
const ChecksumKey = "goreweight.crc32"

// MaxHeader is the largest header Decode accepts, as in the safetensors
// reference implementation.
const MaxHeader = 100 << 20

// ErrFormat is wrapped by every error about a file's content: not a
// tensor file, truncated, inconsistent or failing its checksum.
var ErrFormat = NewErrFormat("tensorfile: invalid tensor file")

// NewErrFormat returns a new sentinel error, with message msg, for an
// invalid file of some kind (a parameter file, an optimiser state, a
// checkpoint): it Is ErrFormat. Every file-content error of the trainer
// matches ErrFormat, so that one place (formatError.Is) ties them to the
// error contract's class of bad input.
func NewErrFormat(msg string) error { return &formatError{msg} }

type formatError struct{ msg string }

func (e *formatError) Error() string { return e.msg }

func (e *formatError) Is(target error) bool {
	return target == ErrFormat
}

// A Tensor is a named row-major float32 array.
type Tensor struct {
	// Name is the tensor's key in the file; it must not be empty or
	// "__metadata__".
	Name string
	// Shape is the size of each dimension (none for a scalar).
	Shape []int
	// Data holds the values; len(Data) is the product of Shape.
	Data []float32
}

// A File is the content of a tensor file.
type File struct {
	// Tensors in file order (by data offset).
	Tensors []Tensor
	// Meta is the header's __metadata__, without ChecksumKey.
	Meta map[string]string
	// Verified reports whether the file carried a checksum, which matched.
	Verified bool
}

// Tensor returns the tensor called name.
func (f *File) Tensor(name string) (Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// entry is a tensor's header record.
type entry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Write writes tensors, in order, and meta (plus ChecksumKey) to w. It does
// not close w or make the write atomic (see internal/atomicfile).
func Write(w io.Writer, tensors []Tensor, meta map[string]string) error {
	header := map[string]any{}
	md := map[string]string{}
	for k, v := range meta {
		if k == ChecksumKey {
			return fmt.Errorf("tensorfile: metadata key %q is reserved", k)
		}
		md[k] = v
	}
	var off int64
	crc := crc32.NewIEEE()
	buf := make([]byte, 1<<14)
	for _, t := range tensors {
		if t.Name == "" || t.Name == "__metadata__" {
			return fmt.Errorf("tensorfile: invalid tensor name %q", t.Name)
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("tensorfile: tensor %q given twice", t.Name)
		}
		n := 1
		shape := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("tensorfile: tensor %q has negative dimension %v", t.Name, t.Shape)
			}
			n *= d
			shape[i] = int64(d)
		}
		if n != len(t.Data) {
			return fmt.Errorf("tensorfile: tensor %q has shape %v but %d values", t.Name, t.Shape, len(t.Data))
		}
		header[t.Name] = entry{Dtype: "F32", Shape: shape, DataOffsets: [2]int64{off, off + 4*int64(n)}}
		off += 4 * int64(n)
		encodeFloats(t.Data, buf, func(b []byte) error { crc.Write(b); return nil })
	}
	mdJSON, err := json.Marshal(md)
	if err != nil {
		return err
	}
	crc.Write(mdJSON)
	md[ChecksumKey] = fmt.Sprintf("%08x", crc.Sum32())
	header["__metadata__"] = md
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	if pad := len(hj) % 8; pad != 0 {
		hj = append(hj, bytes.Repeat([]byte{' '}, 8-pad)...)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var n8 [8]byte
	binary.LittleEndian.PutUint64(n8[:], uint64(len(hj)))
	bw.Write(n8[:])
	bw.Write(hj)
	for _, t := range tensors {
		if err := encodeFloats(t.Data, buf, func(b []byte) error { _, err := bw.Write(b); return err }); err != nil {
			return fmt.Errorf("tensorfile: writing: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("tensorfile: writing: %w", err)
	}
	return nil
}

// encodeFloats hands x to out as little-endian bytes, in chunks of buf.
func encodeFloats(x []float32, buf []byte, out func([]byte) error) error {
	for len(x) > 0 {
		n := min(len(x), len(buf)/4)
		for i, v := range x[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if err := out(buf[:4*n]); err != nil {
			return err
		}
		x = x[n:]
	}
	return nil
}

// ReadAll reads all of r and decodes it (see Decode).
func ReadAll(r io.Reader) (*File, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("tensorfile: reading: %w", err)
	}
	return Decode(b)
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// Decode parses a complete tensor file. It checks the layout strictly (the
// tensors' data must tile the data section exactly, without gaps or
// overlaps, each the size its shape says) and, when the file carries
// ChecksumKey, the checksum. Errors wrap ErrFormat.
func Decode(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, formatErr("%d bytes, too short for a header (the file is truncated or empty)", len(b))
	}
	hn := binary.LittleEndian.Uint64(b[:8])
	if hn > MaxHeader {
		return nil, formatErr("header length %d is over the %d limit (not a safetensors file?)", hn, MaxHeader)
	}
	if hn > uint64(len(b)-8) {
		return nil, formatErr("header length %d but only %d bytes follow (the file is truncated)", hn, len(b)-8)
	}
	hb, data := b[8:8+hn], b[8+hn:]
	if len(hb) == 0 || hb[0] != '{' {
		return nil, formatErr("header does not start with '{' (not a safetensors file)")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hb, &raw); err != nil {
		return nil, formatErr("header is not valid JSON: %v", err)
	}
	f := &File{Meta: map[string]string{}}
	var sum string
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &f.Meta); err != nil {
			return nil, formatErr("__metadata__ is not an object of strings: %v", err)
		}
		sum = f.Meta[ChecksumKey]
		delete(f.Meta, ChecksumKey)
		delete(raw, "__metadata__")
	}
	type placed struct {
		name string
		e    entry
		n    int
	}
	ts := make([]placed, 0, len(raw))
	for name, r := range raw {
		var e entry
		d := json.NewDecoder(bytes.NewReader(r))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, formatErr("tensor %q: %v", name, err)
		}
		if e.Dtype != "F32" {
			return nil, formatErr("tensor %q has dtype %q; only F32 is supported", name, e.Dtype)
		}
		// The element count, bounded by the data size as it grows.
		n := int64(1)
		for _, dim := range e.Shape {
			if dim < 0 {
				return nil, formatErr("tensor %q has negative dimension in shape %v", name, e.Shape)
			}
			if dim != 0 && n > int64(len(data))/dim {
				return nil, formatErr("tensor %q of shape %v is larger than the file", name, e.Shape)
			}
			n *= dim
		}
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi < lo || hi > int64(len(data)) {
			return nil, formatErr("tensor %q has data offsets [%d, %d] outside the %d data bytes (the file is truncated?)", name, lo, hi, len(data))
		}
		if hi-lo != 4*n {
			return nil, formatErr("tensor %q of shape %v needs %d bytes, its offsets [%d, %d] give %d", name, e.Shape, 4*n, lo, hi, hi-lo)
		}
		ts = append(ts, placed{name, e, int(n)})
	}
	slices.SortFunc(ts, func(a, b placed) int {
		if c := cmpInt(a.e.DataOffsets[0], b.e.DataOffsets[0]); c != 0 {
			return c
		}
		return cmpInt(a.e.DataOffsets[1], b.e.DataOffsets[1])
	})
	var end int64
	for _, t := range ts {
		if t.e.DataOffsets[0] != end {
			return nil, formatErr("tensor %q starts at data offset %d, want %d (gap or overlap)", t.name, t.e.DataOffsets[0], end)
		}
		end = t.e.DataOffsets[1]
	}
	if end != int64(len(data)) {
		return nil, formatErr("tensors cover %d of the %d data bytes (trailing bytes or a truncated file)", end, len(data))
	}
	if sum != "" {
		want, err := strconv.ParseUint(sum, 16, 32)
		if err != nil || len(sum) != 8 {
			return nil, formatErr("checksum %q is not 8 hex digits", sum)
		}
		crc := crc32.NewIEEE()
		crc.Write(data)
		mdJSON, _ := json.Marshal(f.Meta)
		crc.Write(mdJSON)
		if got := crc.Sum32(); got != uint32(want) {
			return nil, formatErr("checksum mismatch (stored %08x, computed %08x): the file is corrupt", want, got)
		}
		f.Verified = true
	}
	for _, t := range ts {
		x := make([]float32, t.n)
		src := data[t.e.DataOffsets[0]:t.e.DataOffsets[1]]
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		shape := make([]int, len(t.e.Shape))
		for i, d := range t.e.Shape {
			shape[i] = int(d)
		}
		f.Tensors = append(f.Tensors, Tensor{Name: t.name, Shape: shape, Data: x})
	}
	return f, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Names returns the tensor names in file order.
func (f *File) Names() []string {
	names := make([]string, len(f.Tensors))
	for i, t := range f.Tensors {
		names[i] = t.Name
	}
	return names
}

// Describe formats the names and shapes, for error messages.
func (f *File) Describe() string {
	var s []string
	for _, t := range f.Tensors {
		s = append(s, fmt.Sprintf("%s%v", t.Name, t.Shape))
	}
	return strings.Join(s, ", ")
}
