package nn_test

import (
	"fmt"

	"github.com/goreweight/goreweight/goreweight/trainer/nn"
)

// A Linear layer forward and backward on two rows, then the cross-entropy
// of its outputs as logits: the forward/backward pairs every layer of the
// GPT is built from.
func ExampleLinear() {
	l := nn.Linear{W: nn.NewParam("w", true, 2, 3), B: nn.NewParam("b", false, 2)}
	copy(l.W.Data, []float32{1, 0, -1, 0.5, 0.5, 0.5}) // [Out=2, In=3]
	copy(l.B.Data, []float32{0, 1})
	in := []float32{1, 2, 3, 0, 0, 0} // two rows of 3
	out := make([]float32, 4)
	l.Forward(out, in, 2)
	fmt.Println("out:", out)

	// Back-propagate dL/dout = 1 everywhere: dL/dW = Σ rows of in per output,
	// dL/db = the row count, dL/din = column sums of W.
	din := make([]float32, 6)
	l.Backward(din, []float32{1, 1, 1, 1}, in, 2)
	fmt.Println("dW:", l.W.Grad, "db:", l.B.Grad)
	fmt.Println("din:", din)

	// Softmax cross-entropy of the second row's logits [0, 1] at target 1.
	probs, loss := make([]float32, 2), make([]float32, 1)
	nn.SoftmaxCrossEntropy{}.Forward(probs, loss, out[2:], []int32{1}, 2)
	fmt.Printf("probs: %.4f, loss: %.4f\n", probs, loss[0])
	// Output:
	// out: [-2 4 0 1]
	// dW: [1 2 3 1 2 3] db: [2 2]
	// din: [1.5 0.5 -0.5 1.5 0.5 -0.5]
	// probs: [0.2689 0.7311], loss: 0.3133
}
