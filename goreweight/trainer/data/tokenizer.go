package data

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// Tokenizer turns text into token ids and back.
//
// Implementations are safe for concurrent use.
type Tokenizer interface {
	// Name is the name NewTokenizer accepts for this tokenizer.
	Name() string
	// VocabSize is the number of token ids: every id is in [0, VocabSize).
	VocabSize() int
	// Encode returns the token ids of text.
	Encode(text string) []int32
	// Decode returns the text of ids. Ids outside the vocabulary decode as
	// U+FFFD. The result need not be valid UTF-8: a window may cut a
	// multi-byte character.
	Decode(ids []int32) string
}

// Tokenizer names accepted by NewTokenizer.
const (
	TokenizerByte = "byte"
	TokenizerGPT2 = "gpt2"
)

// NewTokenizer returns the tokenizer called name: "byte" (UTF-8 bytes, vocab
// 256) or "gpt2" (GPT-2 byte-level BPE, vocab 50257; "r50k_base" is accepted
// as an alias).
func NewTokenizer(name string) (Tokenizer, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case TokenizerByte, "bytes":
		return Byte{}, nil
	case TokenizerGPT2, "r50k_base":
		return NewGPT2()
	}
	return nil, fmt.Errorf("data: unknown tokenizer %q (want %q or %q)", name, TokenizerByte, TokenizerGPT2)
}

// Byte is the byte-level tokenizer: each byte of the UTF-8 text is one token,
// so the vocabulary has 256 ids and Decode(Encode(s)) == s for any string.
type Byte struct{}

// Name returns "byte".
func (Byte) Name() string { return TokenizerByte }

// VocabSize returns 256.
func (Byte) VocabSize() int { return 256 }

// Encode returns the bytes of text as ids.
func (Byte) Encode(text string) []int32 {
	ids := make([]int32, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = int32(text[i])
	}
	return ids
}

// Decode returns the bytes named by ids; an id outside [0, 256) decodes as
// U+FFFD.
func (Byte) Decode(ids []int32) string {
	b := make([]byte, 0, len(ids))
	for _, id := range ids {
		if id < 0 || id > 255 {
			b = utf8.AppendRune(b, utf8.RuneError)
			continue
		}
		b = append(b, byte(id))
	}
	return string(b)
}

// GPT2EOT is the id of GPT-2's <|endoftext|> token, which llm.c and the
// Dataset put before each document.
const GPT2EOT = 50256

// GPT2VocabSize is the size of the GPT-2 vocabulary: 50256 BPE tokens plus
// <|endoftext|>.
const GPT2VocabSize = 50257

// GPT2 is GPT-2's byte-level BPE (the r50k_base encoding), working offline
// from the vocabulary embedded in github.com/tiktoken-go/tokenizer.
//
// Encode is tiktoken's encode_ordinary: the text "<|endoftext|>" is encoded
// as ordinary text, never as the special token; invalid UTF-8 in the input is
// replaced by U+FFFD first (tiktoken's errors="replace").
type GPT2 struct {
	codec tokenizer.Codec

	once  sync.Once
	bytes []string // id -> raw bytes of the token
}

// NewGPT2 returns the GPT-2 tokenizer.
func NewGPT2() (*GPT2, error) {
	c, err := tokenizer.Get(tokenizer.R50kBase)
	if err != nil {
		return nil, fmt.Errorf("data: gpt2 tokenizer: %w", err)
	}
	c.SetErrorMode(tokenizer.ErrorModeReplace)
	return &GPT2{codec: c}, nil
}

// Name returns "gpt2".
func (*GPT2) Name() string { return TokenizerGPT2 }

// VocabSize returns 50257.
func (*GPT2) VocabSize() int { return GPT2VocabSize }

// EOT returns the <|endoftext|> id, 50256.
func (*GPT2) EOT() int32 { return GPT2EOT }

// Encode returns the GPT-2 ids of text. It cannot fail: the codec runs
// without a match timeout and with invalid UTF-8 replaced.
func (g *GPT2) Encode(text string) []int32 {
	if text == "" {
		return []int32{}
	}
	// The codec's only errors are regexp timeouts (none is set) and invalid
	// UTF-8 in strict mode (the mode is replace), so err is always nil.
	raw, _, _ := g.codec.Encode(text)
	ids := make([]int32, len(raw))
	for i, id := range raw {
		ids[i] = int32(id)
	}
	return ids
}

// Decode concatenates the bytes of the tokens. <|endoftext|> decodes as the
// text "<|endoftext|>"; ids outside the vocabulary decode as U+FFFD.
func (g *GPT2) Decode(ids []int32) string {
	g.once.Do(g.buildTable)
	var sb strings.Builder
	for _, id := range ids {
		if id >= 0 && int(id) < len(g.bytes) && g.bytes[id] != "" {
			sb.WriteString(g.bytes[id])
			continue
		}
		sb.WriteRune(utf8.RuneError)
	}
	return sb.String()
}

// buildTable fills the id -> bytes table by decoding every id once with a
// codec that leaves the bytes of partial UTF-8 sequences as they are.
func (g *GPT2) buildTable() {
	raw, err := tokenizer.Get(tokenizer.R50kBase)
	if err != nil {
		return // Decode then gives U+FFFD for every id
	}
	raw.SetErrorMode(tokenizer.ErrorModeNone)
	g.bytes = make([]string, GPT2VocabSize)
	for id := range GPT2EOT {
		if s, err := raw.Decode([]uint{uint(id)}); err == nil {
			g.bytes[id] = s
		}
	}
	g.bytes[GPT2EOT] = "<|endoftext|>"
}
