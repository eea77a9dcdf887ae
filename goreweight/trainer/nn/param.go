package nn

// Param is one trainable tensor: its values, its gradient and its shape.
type Param struct {
	// Name identifies the tensor, e.g. "h.0.attn.c_attn.weight".
	Name string
	// Data holds the values, row-major, len(Data) = product of Shape.
	Data []float32
	// Grad holds the gradient, same length as Data. Backward passes add into it.
	Grad []float32
	// Shape gives the dimensions, outermost first.
	Shape []int
	// Decay reports whether decoupled weight decay applies (GPT-2 convention:
	// matrix weights and embeddings yes, biases and LayerNorm parameters no).
	Decay bool
}

// NewParam returns a Param named name whose Data and Grad are fresh zeroed
// slices of the size the shape implies.
func NewParam(name string, decay bool, shape ...int) *Param {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return &Param{Name: name, Data: make([]float32, n), Grad: make([]float32, n), Shape: append([]int(nil), shape...), Decay: decay}
}
