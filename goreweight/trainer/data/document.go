package data

// Document kinds. Kinds says what a document (and every window cut from it)
// is, so that reports can plot weight against loss per kind.
const (
	// KindReal is real text.
	KindReal = "real"
	// KindDuplicate is an exact copy of a real document: redundant data
	// whose loss falls low.
	KindDuplicate = "duplicate"
	// KindNoise is random characters or random tokens: outliers whose loss
	// stays high.
	KindNoise = "noise"
	// KindEntropy is i.i.d. symbols from a known distribution: the loss has
	// a known floor, the entropy.
	KindEntropy = "entropy"
)

// Kinds lists the document kinds in a fixed order.
var Kinds = []string{KindReal, KindDuplicate, KindNoise, KindEntropy}

// UnknownDomain is the domain of a JSONL or Parquet record without one.
const UnknownDomain = "unknown"

// Document is one unit of the corpus.
//
// Either Text or Tokens holds the content. When Tokens is non-nil it is used
// as is (the ids were produced by the tokenizer named TokenizerName, e.g.
// "gpt2" for llm.c files) and Text is ignored.
type Document struct {
	// ID is the document's index in the slice a reader returns.
	ID int
	// Domain names the data source, e.g. "RedPajamaGithub" or "runtime".
	Domain string
	// Kind is one of KindReal, KindDuplicate, KindNoise, KindEntropy.
	Kind string
	// Text is the document's text.
	Text string
	// Tokens are pre-tokenised ids, or nil.
	Tokens []int32
	// TokenizerName names the tokenizer Tokens come from; empty when Tokens
	// is nil.
	TokenizerName string
	// Source says where the document came from, e.g. "dir/a.txt#3" (the
	// fourth document of a.txt), "x.jsonl:17" (line 17), "x.parquet:row 5",
	// "x.bin@1024" (byte offset), "GOROOT/src/net/ip.go#0".
	Source string
}

// Len returns the length of the content: tokens if Tokens is set, else bytes
// of Text.
func (d Document) Len() int {
	if d.Tokens != nil {
		return len(d.Tokens)
	}
	return len(d.Text)
}
