package gpt

import (
	"bytes"
	"math"
	"testing"
)

// FuzzLoadParams feeds arbitrary bytes to Load and LoadParams: no panic, no
// allocation beyond what the input's own values justify (Load checks the
// value count against the config before allocating a model), and a failed
// LoadParams leaves the model unchanged.
func FuzzLoadParams(f *testing.F) {
	cfg := Config{Vocab: 7, Seq: 4, Layers: 1, Heads: 2, Width: 4}
	m, err := New(cfg, 3)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.SaveParams(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:100])
	f.Add([]byte("GRWGPT\x1a\n\x01\x00\x00\x00"))
	orig := append([]float32(nil), m.data...)
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := Load(bytes.NewReader(b)); err == nil && got.NumParams() > len(b) {
			t.Fatalf("Load made a model of %d parameters from %d bytes", got.NumParams(), len(b))
		}
		if err := m.LoadParams(bytes.NewReader(b)); err != nil {
			for i := range orig {
				if math.Float32bits(m.data[i]) != math.Float32bits(orig[i]) {
					t.Fatal("failed LoadParams changed the model")
				}
			}
		} else {
			copy(orig, m.data)
		}
	})
}
