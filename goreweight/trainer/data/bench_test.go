package data

import "testing"

// BenchmarkBuiltinByte measures loading the default built-in corpus and
// cutting it into byte-level windows, as the trainer's default does.
func BenchmarkBuiltinByte(b *testing.B) {
	for b.Loop() {
		docs, _, err := Builtin(DefaultBuiltinConfig())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NewDataset(docs, Byte{}, DatasetConfig{SeqLen: 256, ValFraction: DefaultValFraction, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuiltinGPT2 is BenchmarkBuiltinByte with the GPT-2 tokenizer.
func BenchmarkBuiltinGPT2(b *testing.B) {
	tok, err := NewGPT2()
	if err != nil {
		b.Fatal(err)
	}
	docs, _, err := Builtin(DefaultBuiltinConfig())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := NewDataset(docs, tok, DatasetConfig{SeqLen: 256, ValFraction: DefaultValFraction, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
