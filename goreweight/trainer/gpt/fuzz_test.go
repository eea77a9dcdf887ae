package gpt

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/tensorfile"
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

// TestLoadRefusesHugeConfig: a small, well-formed file whose metadata
// claims a model of a billion parameters is refused before the model is
// allocated (it was allocated, 8 GB, before the check).
func TestLoadRefusesHugeConfig(t *testing.T) {
	var buf bytes.Buffer
	meta := map[string]string{"format": paramsFormat, "version": paramsVersion,
		"vocab": "1000000", "seq": "1", "layers": "1", "heads": "1", "width": "1000"}
	if err := tensorfile.Write(&buf, []tensorfile.Tensor{{Name: "wte", Shape: []int{1}, Data: []float32{1}}}, meta); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bytes.NewReader(buf.Bytes()))
	if !errors.Is(err, ErrParamsFile) || !strings.Contains(err.Error(), "holds 1 values") {
		t.Fatalf("got %v, want a refusal naming the value count", err)
	}
}
