package gpt

import (
	"errors"
	"fmt"
)

// Config is the shape of a GPT-2 style model.
type Config struct {
	// Vocab is the vocabulary size V (e.g. 256 for bytes).
	Vocab int
	// Seq is the context length: the number of learned positions, the largest T.
	Seq int
	// Layers is the number of transformer blocks L.
	Layers int
	// Heads is the number of attention heads H per block.
	Heads int
	// Width is the embedding width C; a multiple of Heads.
	Width int
}

// maxElements bounds any one buffer and the parameter count, far above any
// model this package can train on a CPU, so that size arithmetic never
// overflows an int and absurd configurations fail with an error.
const maxElements = 1 << 34

// Validate reports the first problem with c, or nil.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"Vocab", c.Vocab}, {"Seq", c.Seq}, {"Layers", c.Layers}, {"Heads", c.Heads}, {"Width", c.Width}} {
		if f.v < 1 {
			return fmt.Errorf("gpt: config %s = %d, must be at least 1", f.name, f.v)
		}
		if f.v > 1<<30 {
			return fmt.Errorf("gpt: config %s = %d is too large", f.name, f.v)
		}
	}
	if c.Width%c.Heads != 0 {
		return fmt.Errorf("gpt: config Width = %d is not a multiple of Heads = %d", c.Width, c.Heads)
	}
	if n, ok := c.numParams(); !ok || n > maxElements {
		return errors.New("gpt: config describes a model too large to allocate")
	}
	return nil
}

// numParams is the parameter count, with ok false on overflow. Vocab*Width and
// friends are each below 2**60 after Validate's per-field bound.
func (c Config) numParams() (n int, ok bool) {
	C, L := int64(c.Width), int64(c.Layers)
	perLayer := 12*C*C + 13*C
	total := int64(c.Vocab)*C + int64(c.Seq)*C + 2*C
	if perLayer > maxElements || total > maxElements || L*perLayer > maxElements {
		return 0, false
	}
	return int(total + L*perLayer), true
}

// String formats c as in "vocab=256 seq=128 layers=4 heads=4 width=128".
func (c Config) String() string {
	return fmt.Sprintf("vocab=%d seq=%d layers=%d heads=%d width=%d", c.Vocab, c.Seq, c.Layers, c.Heads, c.Width)
}
