package data

import (
	"slices"
	"testing"
)

func TestByteRoundTrip(t *testing.T) {
	tok, err := NewTokenizer("byte")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name() != "byte" || tok.VocabSize() != 256 {
		t.Fatalf("name %q vocab %d", tok.Name(), tok.VocabSize())
	}
	for _, s := range []string{"", "Hello world", "héllo wörld 日本語 🙂", "\x00\xff\xfe raw bytes"} {
		ids := tok.Encode(s)
		if len(ids) != len(s) {
			t.Errorf("%q: %d ids, want %d", s, len(ids), len(s))
		}
		for i, id := range ids {
			if id != int32(s[i]) {
				t.Errorf("%q: id %d = %d, want byte %d", s, i, id, s[i])
			}
		}
		if got := tok.Decode(ids); got != s {
			t.Errorf("round trip %q -> %q", s, got)
		}
	}
	if got := tok.Decode([]int32{'a', 300, -1, 'b'}); got != "a\uFFFD\uFFFDb" {
		t.Errorf("out-of-vocab decode = %q", got)
	}
}

// The expected ids are GPT-2's published encodings (openai/tiktoken
// r50k_base / HF gpt2), typed in by hand.
func TestGPT2KnownIDs(t *testing.T) {
	tok, err := NewTokenizer("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name() != "gpt2" || tok.VocabSize() != 50257 {
		t.Fatalf("name %q vocab %d", tok.Name(), tok.VocabSize())
	}
	cases := []struct {
		text string
		ids  []int32
	}{
		{"Hello world", []int32{15496, 995}},
		{"Hello, world!", []int32{15496, 11, 995, 0}},
		{"\n", []int32{198}},
		{" the", []int32{262}},
		{"The", []int32{464}},
		{"hello", []int32{31373}},
		// encode_ordinary: the special token's text is plain text.
		{"<|endoftext|>", []int32{27, 91, 437, 1659, 5239, 91, 29}},
	}
	for _, c := range cases {
		got := tok.Encode(c.text)
		if !slices.Equal(got, c.ids) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.ids)
		}
		if back := tok.Decode(c.ids); back != c.text {
			t.Errorf("Decode(%v) = %q, want %q", c.ids, back, c.text)
		}
	}
	for _, s := range []string{"héllo wörld 日本語 🙂\n\tfunc main() { x := 3 }", ""} {
		if back := tok.Decode(tok.Encode(s)); back != s {
			t.Errorf("round trip %q -> %q", s, back)
		}
	}
	if got := tok.Decode([]int32{GPT2EOT}); got != "<|endoftext|>" {
		t.Errorf("Decode(EOT) = %q", got)
	}
	if got := tok.Decode([]int32{50257, -3}); got != "\uFFFD\uFFFD" {
		t.Errorf("out-of-vocab decode = %q", got)
	}
	// Invalid UTF-8 is replaced, never mapped to a wrong token silently.
	if got := tok.Decode(tok.Encode("a\xffb")); got != "a\uFFFDb" {
		t.Errorf("invalid UTF-8 round trip = %q", got)
	}
}

func TestNewTokenizerUnknown(t *testing.T) {
	if _, err := NewTokenizer("sentencepiece"); err == nil {
		t.Fatal("want error")
	}
}
