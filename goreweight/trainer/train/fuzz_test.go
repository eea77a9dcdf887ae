package train

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/optim"
)

// FuzzLoadCheckpoint feeds arbitrary bytes to loadCheckpoint, the resume
// path of a run (zip archive, meta.json with the reweighter and iterator
// state, the parameter and AdamW safetensors files): no panic, no hang.
func FuzzLoadCheckpoint(f *testing.F) {
	c := tinyConfig(f)
	c.Strategy, c.Compare = "linupper", nil
	c.Steps, c.CkptEvery = 4, 2
	if _, err := Run(context.Background(), c, Options{}); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(c.Out, "linupper", checkpointName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))

	e, err := loadData(c, nil)
	if err != nil {
		f.Fatal(err)
	}
	gcfg := gpt.Config{Vocab: e.ds.Tokenizer().VocabSize(), Seq: c.Seq, Layers: c.Layers, Heads: c.Heads, Width: c.Width}
	model, err := gpt.New(gcfg, c.Seed)
	if err != nil {
		f.Fatal(err)
	}
	opt, err := optim.NewAdamW(model.Params(), optim.DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	want := c.Reweighting("linupper")
	rw, err := goreweight.New(want)
	if err != nil {
		f.Fatal(err)
	}
	st := trainState{model: model, opt: opt, rw: rw, it: e.ds.NewIterator()}
	if _, err := loadCheckpoint(seed, "seed", "linupper", want, st); err != nil {
		f.Fatalf("the seed checkpoint does not load: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = loadCheckpoint(b, "fuzz", "linupper", want, st)
	})
}
