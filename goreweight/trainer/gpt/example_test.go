package gpt_test

import (
	"fmt"
	"math"

	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/optim"
)

// One model, per-sequence losses, and the weighted backward pass that
// loss-based reweighting needs: the weights are chosen from the losses
// between Forward and Backward. Here the loop trains two sequences with
// weights favouring the harder one.
func ExampleModel() {
	cfg := gpt.Config{Vocab: 16, Seq: 8, Layers: 1, Heads: 2, Width: 16}
	m, err := gpt.New(cfg, 1)
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg, "parameters:", m.NumParams())

	// Two sequences of T = 8 tokens; each target is the next token.
	const B, T = 2, 8
	tokens := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9}
	targets := []int32{2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9}
	losses, err := m.Forward(tokens, targets, B, T)
	if err != nil {
		panic(err)
	}
	fmt.Printf("initial losses near ln(16) = %.2f: %.1f\n", math.Log(16), losses)

	opt, err := optim.NewAdamW(m.Params(), optim.DefaultConfig())
	if err != nil {
		panic(err)
	}
	for range 40 {
		losses, _ = m.Forward(tokens, targets, B, T)
		w := []float32{0.25, 0.75} // Σ w = 1: the higher weight to sequence 1
		if losses[0] > losses[1] {
			w = []float32{0.75, 0.25}
		}
		m.ZeroGrad()
		if err := m.Backward(w); err != nil {
			panic(err)
		}
		if err := opt.Step(1e-2); err != nil {
			panic(err)
		}
	}
	losses, _ = m.Evaluate(tokens, targets, B, T)
	fmt.Println("both losses below 1 after 40 steps:", losses[0] < 1 && losses[1] < 1)
	// Output:
	// vocab=16 seq=8 layers=1 heads=2 width=16 parameters: 3696
	// initial losses near ln(16) = 2.77: [2.8 2.6]
	// both losses below 1 after 40 steps: true
}
