package data

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// ErrData is matched (errors.Is) by every error of the readers about a
// file's content: invalid UTF-8 or JSON, a corrupt or truncated zstd
// stream or Parquet file, a bad llm.c header, a record too large. Errors
// opening or reading a file wrap fs errors instead (*fs.PathError).
var ErrData = errors.New("data: invalid data")

// dataError marks a reader's error as ErrData, its message unchanged.
type dataError struct{ err error }

func (e *dataError) Error() string        { return e.err.Error() }
func (e *dataError) Unwrap() error        { return e.err }
func (e *dataError) Is(target error) bool { return target == ErrData }

// classify marks err as ErrData unless it is a file system error.
func classify(docs []Document, err error) ([]Document, error) {
	var pe *fs.PathError
	if err == nil || errors.As(err, &pe) || errors.Is(err, ErrData) {
		return docs, err
	}
	return nil, &dataError{err}
}

// BuiltinPath is the path Open reads as the built-in corpus.
const BuiltinPath = "builtin"

// TextDocBytes is the largest document, in bytes, that Open makes from a
// plain text file.
const TextDocBytes = 8 << 10

// Open reads the documents at path and numbers them 0, 1, ... in order.
//
//   - "builtin": the built-in corpus with DefaultBuiltinConfig (see Builtin);
//     write "./builtin" for a file or directory of that name.
//   - a directory: walked recursively in lexical order, hidden files and
//     directories (names starting with ".") skipped, every file read by its
//     extension as below. A plain text or .bin file in a sub-directory gets
//     the name of the top-level sub-directory as its domain; one directly in
//     the directory gets its file name stem.
//   - *.jsonl, *.jsonl.zst: ReadJSONL.
//   - *.parquet: ReadParquet.
//   - *.bin: ReadLLMC.
//   - any other file: plain UTF-8 text, split into documents of whole
//     blank-line-separated paragraphs of at most TextDocBytes bytes (see
//     SplitText); an invalid byte is an error naming its offset.
func Open(path string) ([]Document, error) { return classify(open(path)) }

func open(path string) ([]Document, error) {
	if path == BuiltinPath {
		docs, _, err := Builtin(DefaultBuiltinConfig())
		return docs, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	var docs []Document
	if st.IsDir() {
		docs, err = readDir(path)
	} else {
		docs, err = readFile(path, stem(path))
	}
	if err != nil {
		return nil, err
	}
	renumber(docs)
	return docs, nil
}

// readFile reads one file by extension; domain is used by the formats that
// carry no domain of their own (plain text, llm.c).
func readFile(path, domain string) ([]Document, error) {
	switch fileFormat(path) {
	case formatJSONL:
		return readJSONL(path)
	case formatParquet:
		return readParquet(path)
	case formatLLMC:
		return readLLMC(path, domain)
	}
	return readTextFile(path, domain)
}

const (
	formatText = iota
	formatJSONL
	formatParquet
	formatLLMC
)

func fileFormat(path string) int {
	name := strings.ToLower(filepath.Base(path))
	switch {
	case strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".jsonl.zst"):
		return formatJSONL
	case strings.HasSuffix(name, ".parquet"):
		return formatParquet
	case strings.HasSuffix(name, ".bin"):
		return formatLLMC
	}
	return formatText
}

// stem returns the file name without directory and extension (both
// extensions for .jsonl.zst).
func stem(path string) string {
	name := filepath.Base(path)
	if strings.HasSuffix(strings.ToLower(name), ".jsonl.zst") {
		return name[:len(name)-len(".jsonl.zst")]
	}
	return strings.TrimSuffix(name, filepath.Ext(name))
}

func renumber(docs []Document) {
	for i := range docs {
		docs[i].ID = i
	}
}

// readDir walks root and reads every non-hidden file.
func readDir(root string) ([]Document, error) {
	var docs []Document
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("data: %w", err)
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() { // follow symbolic links to files
			st, err := os.Stat(path)
			if err != nil {
				return fmt.Errorf("data: %w", err)
			}
			if !st.Mode().IsRegular() {
				return nil
			}
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return fmt.Errorf("data: %w", err)
		}
		domain := stem(path)
		if i := strings.IndexRune(rel, filepath.Separator); i >= 0 {
			domain = rel[:i]
		}
		got, err := readFile(path, domain)
		if err != nil {
			return err
		}
		docs = append(docs, got...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("data: %s: no documents found", root)
	}
	return docs, nil
}

// readTextFile reads a plain UTF-8 text file and splits it into documents
// of whole blank-line-separated paragraphs of at most TextDocBytes bytes
// (see SplitText), of the given domain. A file that is not valid UTF-8
// gives an error naming the file and the byte offset of the first invalid
// byte.
func readTextFile(path, domain string) ([]Document, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if off := invalidUTF8(b); off >= 0 {
		return nil, fmt.Errorf("data: %s: byte offset %d: invalid UTF-8 (not a text file?)", path, off)
	}
	text := strings.TrimPrefix(string(b), "\uFEFF")
	var docs []Document
	for i, chunk := range SplitText(text, TextDocBytes) {
		docs = append(docs, Document{
			Domain: domain,
			Kind:   KindReal,
			Text:   chunk,
			Source: fmt.Sprintf("%s#%d", path, i),
		})
	}
	return docs, nil
}

// invalidUTF8 returns the offset of the first invalid UTF-8 sequence in b, or
// -1 if b is valid.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// SplitText splits text into documents of at most maxBytes bytes (maxBytes
// below 4 counts as 4). A document is a run of whole paragraphs, a paragraph
// being non-blank lines with the blank lines that follow them (a blank line
// holds only spaces, tabs and carriage returns). A paragraph longer than
// maxBytes is split at line ends, and a line longer than maxBytes at a UTF-8
// character boundary. A piece that would hold only white space is joined to
// the document before it (or, at the start, after it), so the documents
// concatenate back to text exactly, and only white space can take a
// document past maxBytes. Text that is all white space gives no document.
func SplitText(text string, maxBytes int) []string {
	maxBytes = max(maxBytes, utf8.UTFMax)
	var out []string
	pending := "" // leading white space, before the first document
	emit := func(s string) {
		switch {
		case strings.TrimSpace(s) != "":
			out = append(out, pending+s)
			pending = ""
		case len(out) > 0:
			out[len(out)-1] += s
		default:
			pending += s
		}
	}
	start, pos := 0, 0
	for pos < len(text) {
		end := paragraphEnd(text, pos)
		if end-start > maxBytes && pos > start {
			emit(text[start:pos])
			start = pos
		}
		for end-start > maxBytes {
			n := cutAt(text[start:end], maxBytes)
			emit(text[start : start+n])
			start += n
		}
		pos = end
	}
	if start < len(text) {
		emit(text[start:])
	}
	return out
}

// paragraphEnd returns the end of the paragraph starting at pos: leading
// blank lines, then non-blank lines, then the blank lines that follow.
func paragraphEnd(s string, pos int) int {
	const (
		leading = iota
		inText
		trailing
	)
	state := leading
	for pos < len(s) {
		next := len(s)
		if nl := strings.IndexByte(s[pos:], '\n'); nl >= 0 {
			next = pos + nl + 1
		}
		blank := strings.Trim(s[pos:next], " \t\r\n\f\v") == ""
		switch {
		case !blank && state == trailing:
			return pos
		case !blank:
			state = inText
		case state == inText:
			state = trailing
		}
		pos = next
	}
	return pos
}

// cutAt returns the length of the first piece of s (len(s) > max): up to the
// last line end within max bytes, else max bytes backed off to a UTF-8
// character boundary.
func cutAt(s string, max int) int {
	if i := strings.LastIndexByte(s[:max], '\n'); i >= 0 {
		return i + 1
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	if n == 0 {
		n = max
	}
	return n
}

// ReadJSONL reads a SlimPajama-style JSON Lines file, plain (.jsonl) or
// zstd-compressed (.jsonl.zst): one JSON object per line with a string field
// "text" and the domain in "meta"."redpajama_set_name" (meta may also be a
// JSON object encoded as a string, as some dumps do); failing that a string
// field "domain"; failing that UnknownDomain. Blank lines and records with
// empty text are skipped. A line that is not such an object gives an error
// naming the file and the line number, as does a line longer than 64 MiB
// (so that a small compressed file cannot make one huge allocation); a
// corrupt or truncated zstd stream an error naming the file, the line and
// the decompressed byte offset.
func ReadJSONL(path string) ([]Document, error) { return classify(readJSONL(path)) }

func readJSONL(path string) ([]Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	compressed := strings.HasSuffix(strings.ToLower(path), ".zst")
	counter := &countingReader{r: f}
	if compressed {
		dec, err := zstd.NewReader(counter, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("data: %s: zstd: %w", path, err)
		}
		defer dec.Close()
		r = dec
	}
	br := bufio.NewReaderSize(r, 1<<20)
	var docs []Document
	var off int64 // byte offset of the current line (decompressed)
	for line := 1; ; line++ {
		b, err := readLine(br, maxJSONLLine)
		if errors.Is(err, errLongLine) {
			return nil, fmt.Errorf("data: %s: line %d (byte offset %d) is longer than %d MiB: not JSON Lines, or a record too large to hold", path, line, off, maxJSONLLine>>20)
		}
		if err != nil && err != io.EOF {
			if compressed {
				hint := "corrupt or truncated zstd stream"
				if errors.Is(err, zstd.ErrWindowSizeExceeded) {
					hint = fmt.Sprintf("zstd window over the %d MiB this reader allows (recompress without --ultra or --long above 25)", maxZstdWindow>>20)
				}
				return nil, fmt.Errorf("data: %s: line %d, decompressed byte offset %d (compressed offset about %d): %s: %w",
					path, line, off+int64(len(b)), counter.n, hint, err)
			}
			return nil, fmt.Errorf("data: %s: line %d, byte offset %d: %w", path, line, off+int64(len(b)), err)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			doc, perr := parseJSONLine(b)
			if perr != nil {
				return nil, fmt.Errorf("data: %s: line %d (byte offset %d): %w", path, line, off, perr)
			}
			if doc.Text != "" {
				doc.Source = fmt.Sprintf("%s:%d", path, line)
				doc.ID = len(docs)
				docs = append(docs, doc)
			}
		}
		off += int64(len(b))
		if err == io.EOF {
			break
		}
	}
	return docs, nil
}

// maxZstdWindow bounds the zstd window, which the decoder allocates as a
// frame header declares: 32 MiB holds every standard level up to 19
// (8 MiB) and --long=25; larger windows (--ultra, --long=27) are refused
// with an error, so that 12 bytes of header cannot allocate 128 MiB.
const maxZstdWindow = 32 << 20

// maxJSONLLine bounds one JSON Lines record, so that a small compressed
// file cannot make one huge allocation (a variable for the tests).
var maxJSONLLine = 64 << 20

var errLongLine = errors.New("line too long")

// readLine reads up to and including the next '\n', like ReadBytes, but
// returns errLongLine once the line passes max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			return nil, errLongLine
		}
		line = append(line, chunk...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func parseJSONLine(b []byte) (Document, error) {
	var rec struct {
		Text   *string         `json:"text"`
		Meta   json.RawMessage `json:"meta"`
		Domain string          `json:"domain"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return Document{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if rec.Text == nil {
		return Document{}, errors.New(`record has no "text" field`)
	}
	domain, err := metaDomain(rec.Meta)
	if err != nil {
		return Document{}, err
	}
	if domain == "" {
		domain = rec.Domain
	}
	if domain == "" {
		domain = UnknownDomain
	}
	return Document{Domain: domain, Kind: KindReal, Text: *rec.Text}, nil
}

// metaDomain returns meta.redpajama_set_name from a JSON object, a JSON
// string holding such an object, or null.
func metaDomain(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf(`invalid "meta": %w`, err)
		}
		if strings.TrimSpace(s) == "" {
			return "", nil
		}
		raw = json.RawMessage(s)
	}
	var meta struct {
		Set string `json:"redpajama_set_name"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return "", fmt.Errorf(`invalid "meta" (want an object): %w`, err)
	}
	return meta.Set, nil
}

// llm.c token file layout.
const (
	// LLMCMagic is header[0] of an llm.c GPT-2 token file.
	LLMCMagic = 20240520
	// LLMCVersion is header[1] of an llm.c GPT-2 token file (uint16 tokens).
	LLMCVersion = 1
	// LLMCHeaderInts is the number of int32 in the header.
	LLMCHeaderInts = 256
)

// ReadLLMC reads an llm.c token file: a header of 256 little-endian int32
// (magic 20240520, version 1, token count) followed by exactly count uint16
// GPT-2 tokens. The tokens are split into documents at each <|endoftext|>
// (id 50256), which llm.c puts before every document and which stays the
// first token of its document. Documents have Tokens set, TokenizerName
// "gpt2", and the file name stem as domain. A wrong magic or version, a
// count that does not match the file size, or a token outside the GPT-2
// vocabulary gives an error naming the file and the byte offset.
func ReadLLMC(path string) ([]Document, error) {
	return classify(readLLMC(path, stem(path)))
}

func readLLMC(path, domain string) ([]Document, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	const hdr = LLMCHeaderInts * 4
	if len(b) < hdr {
		return nil, fmt.Errorf("data: %s: byte offset %d: truncated llm.c header (file has %d bytes, header needs %d)", path, len(b), len(b), hdr)
	}
	word := func(i int) int32 { return int32(binary.LittleEndian.Uint32(b[4*i:])) }
	if m := word(0); m != LLMCMagic {
		return nil, fmt.Errorf("data: %s: byte offset 0: bad llm.c magic %d (want %d)", path, m, LLMCMagic)
	}
	if v := word(1); v != LLMCVersion {
		return nil, fmt.Errorf("data: %s: byte offset 4: unsupported llm.c version %d (want %d: uint16 GPT-2 tokens)", path, v, LLMCVersion)
	}
	count := int64(word(2))
	if count < 0 {
		return nil, fmt.Errorf("data: %s: byte offset 8: negative token count %d", path, count)
	}
	body := int64(len(b) - hdr)
	if want := 2 * count; body != want {
		if body < want {
			return nil, fmt.Errorf("data: %s: byte offset %d: truncated: header says %d tokens (%d bytes) but the file holds %d bytes after the header",
				path, len(b), count, want, body)
		}
		return nil, fmt.Errorf("data: %s: byte offset %d: %d bytes after the %d tokens the header announces", path, int64(hdr)+want, body-want, count)
	}
	toks := make([]int32, count)
	for i := range toks {
		t := int32(binary.LittleEndian.Uint16(b[hdr+2*i:]))
		if t >= GPT2VocabSize {
			return nil, fmt.Errorf("data: %s: byte offset %d: token %d outside the GPT-2 vocabulary (size %d)", path, hdr+2*i, t, GPT2VocabSize)
		}
		toks[i] = t
	}
	var docs []Document
	start := 0
	flush := func(end int) {
		if end > start {
			docs = append(docs, Document{
				ID:            len(docs),
				Domain:        domain,
				Kind:          KindReal,
				Tokens:        toks[start:end:end],
				TokenizerName: TokenizerGPT2,
				Source:        fmt.Sprintf("%s@%d", path, hdr+2*start),
			})
		}
		start = end
	}
	for i := 1; i < len(toks); i++ {
		if toks[i] == GPT2EOT {
			flush(i)
		}
	}
	flush(len(toks))
	return docs, nil
}

// sortedKeys returns the keys of m in increasing order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
