// Package data provides the data side of the goreweight GPT trainer:
// tokenisers, documents, readers for the formats users have (plain text,
// SlimPajama JSONL and JSONL.zst, SlimPajama-6B Parquet, llm.c token files),
// a built-in corpus that needs no download, and a Dataset that cuts documents
// into fixed-length training windows, splits them into train and validation
// per domain, and serves seeded, resumable, shuffled batches.
//
// # Documents and kinds
//
// A Document is a piece of text (or of pre-tokenised GPT-2 ids) with a domain
// and a kind. The kind says what the document is, so that reports can plot
// sample weight against loss per kind: KindReal (real text), KindDuplicate (an
// exact copy of a real document: redundant, low loss), KindNoise (random
// characters or random tokens: outliers, high loss) and KindEntropy (i.i.d.
// symbols from a known distribution: the loss has a known floor).
//
// # Readers
//
// Open dispatches on the path: "builtin" gives the built-in corpus; a
// directory is walked recursively; a file is read by extension (.jsonl,
// .jsonl.zst, .parquet, .bin; anything else is plain UTF-8 text). Corrupt or
// truncated input gives an error naming the file and the byte offset, line
// or row where reading failed.
//
// Plain text is split into documents of whole blank-line-separated
// paragraphs of at most TextDocBytes bytes each (a longer paragraph is split
// at line ends, a longer line at a UTF-8 character boundary); the documents
// of a file concatenate back to the file exactly.
//
// # Windows
//
// NewDataset tokenises the documents and cuts windows of SeqLen+1 tokens
// (SeqLen inputs, and the same tokens shifted by one as next-token targets).
// See NewDataset for the exact rules.
package data
