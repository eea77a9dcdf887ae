package optim

import (
	"bytes"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

// FuzzLoadState feeds arbitrary bytes to LoadState: no panic, and a failed
// load leaves the step count unchanged.
func FuzzLoadState(f *testing.F) {
	ps := []*nn.Param{param("w", true, 0.5, -1, 2), param("b", false, 0.25)}
	o, err := NewAdamW(ps, DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range ps {
		for i := range p.Grad {
			p.Grad[i] = 0.1 * float32(i+1)
		}
	}
	_ = o.Step(1e-2)
	var buf bytes.Buffer
	if err := o.SaveState(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:len(buf.Bytes())/2])
	f.Add([]byte("GRWADAM\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		before := o.Steps()
		if err := o.LoadState(bytes.NewReader(b)); err != nil && o.Steps() != before {
			t.Fatal("failed LoadState changed the step")
		}
	})
}
