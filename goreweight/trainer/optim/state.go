package optim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// The AdamW state format, version 1. All integers little-endian, values
// little-endian IEEE-754 float32:
//
//	magic   8 bytes "GRWADAM\n"
//	version uint32 = 1
//	step    uint64: updates taken
//	count   uint32: number of parameters, in the optimiser's order
//	count times:
//	  nameLen uint32, name (nameLen bytes)
//	  n       uint64: number of elements
//	  m       n×float32
//	  v       n×float32
//	crc     uint32: CRC-32 (IEEE) of every preceding byte
//
// The hyperparameters are not part of the state: they come from the
// caller's configuration when the optimiser is rebuilt, so a resumed run may
// change, say, the weight decay.
const (
	stateMagic   = "GRWADAM\n"
	stateVersion = 1
)

// SaveState writes the step count and moments to w. It does not close w or
// make the write atomic.
func (o *AdamW) SaveState(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	crc := crc32.NewIEEE()
	out := io.MultiWriter(bw, crc)
	var err error
	put := func(b []byte) {
		if err == nil {
			_, err = out.Write(b)
		}
	}
	var b8 [8]byte
	u32 := func(v uint32) { binary.LittleEndian.PutUint32(b8[:4], v); put(b8[:4]) }
	u64 := func(v uint64) { binary.LittleEndian.PutUint64(b8[:], v); put(b8[:]) }
	buf := make([]byte, 1<<14)
	floats := func(x []float32) {
		for len(x) > 0 {
			n := min(len(x), len(buf)/4)
			for i, v := range x[:n] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			put(buf[:4*n])
			x = x[n:]
		}
	}
	put([]byte(stateMagic))
	u32(stateVersion)
	u64(uint64(o.step))
	u32(uint32(len(o.params)))
	for k, p := range o.params {
		u32(uint32(len(p.Name)))
		put([]byte(p.Name))
		u64(uint64(len(o.m[k])))
		floats(o.m[k])
		floats(o.v[k])
	}
	if err == nil {
		binary.LittleEndian.PutUint32(b8[:4], crc.Sum32())
		_, err = bw.Write(b8[:4])
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("optim: writing AdamW state: %w", err)
	}
	return nil
}

// LoadState reads a state written by SaveState for the same parameters (same
// count, names and sizes, in order) and replaces the step count and moments.
// On any error the optimiser is left unchanged.
func (o *AdamW) LoadState(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<16)
	crc := crc32.NewIEEE()
	read := func(b []byte) error {
		if _, err := io.ReadFull(br, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return errors.New("optim: AdamW state is truncated")
			}
			return fmt.Errorf("optim: reading AdamW state: %w", err)
		}
		crc.Write(b)
		return nil
	}
	var b8 [8]byte
	u32 := func() (uint32, error) {
		err := read(b8[:4])
		return binary.LittleEndian.Uint32(b8[:4]), err
	}
	u64 := func() (uint64, error) {
		err := read(b8[:])
		return binary.LittleEndian.Uint64(b8[:]), err
	}
	buf := make([]byte, 1<<14)
	floats := func(x []float32) error {
		for len(x) > 0 {
			n := min(len(x), len(buf)/4)
			if err := read(buf[:4*n]); err != nil {
				return err
			}
			for i := range x[:n] {
				x[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
			}
			x = x[n:]
		}
		return nil
	}

	magic := make([]byte, len(stateMagic))
	if err := read(magic); err != nil {
		return err
	}
	if string(magic) != stateMagic {
		return errors.New("optim: not a goreweight AdamW state (bad magic)")
	}
	version, err := u32()
	if err != nil {
		return err
	}
	if version != stateVersion {
		return fmt.Errorf("optim: AdamW state version %d, this build reads version %d", version, stateVersion)
	}
	step, err := u64()
	if err != nil {
		return err
	}
	if step > math.MaxInt64 {
		return fmt.Errorf("optim: AdamW state step %d is out of range", step)
	}
	count, err := u32()
	if err != nil {
		return err
	}
	if int(count) != len(o.params) {
		return fmt.Errorf("optim: AdamW state has %d parameters, the optimiser has %d", count, len(o.params))
	}
	m := make([][]float32, len(o.params))
	v := make([][]float32, len(o.params))
	for k, p := range o.params {
		nl, err := u32()
		if err != nil {
			return err
		}
		if int(nl) != len(p.Name) {
			return fmt.Errorf("optim: AdamW state parameter %d has a name of length %d, want %q", k, nl, p.Name)
		}
		name := make([]byte, nl)
		if err := read(name); err != nil {
			return err
		}
		if string(name) != p.Name {
			return fmt.Errorf("optim: AdamW state has parameter %q where the optimiser has %q", name, p.Name)
		}
		n, err := u64()
		if err != nil {
			return err
		}
		if n != uint64(len(p.Data)) {
			return fmt.Errorf("optim: AdamW state parameter %q has %d elements, want %d", p.Name, n, len(p.Data))
		}
		m[k], v[k] = make([]float32, n), make([]float32, n)
		if err := floats(m[k]); err != nil {
			return err
		}
		if err := floats(v[k]); err != nil {
			return err
		}
	}
	want := crc.Sum32()
	if _, err := io.ReadFull(br, b8[:4]); err != nil {
		return errors.New("optim: AdamW state is truncated (no checksum)")
	}
	if got := binary.LittleEndian.Uint32(b8[:4]); got != want {
		return fmt.Errorf("optim: AdamW state checksum mismatch (stored %08x, computed %08x): the file is corrupt", got, want)
	}
	o.step, o.m, o.v = int64(step), m, v
	return nil
}
