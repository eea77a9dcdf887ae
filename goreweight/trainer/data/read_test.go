package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err names the file and contains every part.
func wantErr(t *testing.T, err error, path string, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error naming %s and %q, got nil", path, parts)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) {
		t.Errorf("error %q does not name the file %s", msg, path)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not contain %q", msg, p)
		}
	}
}

func TestSplitText(t *testing.T) {
	text := "para one\nline two\n\n\npara two\n  \npara three is a long paragraph\nwith lines\nand more lines\n"
	got := SplitText(text, 20)
	// Whole paragraphs when they fit; a longer paragraph split at line
	// ends, a longer line at 20 bytes.
	want := []string{"para one\nline two\n\n\n", "para two\n  \n", "para three is a long", " paragraph\n", "with lines\n", "and more lines\n"}
	if !slices.Equal(got, want) {
		t.Errorf("SplitText = %q, want %q", got, want)
	}
	// Paragraphs are grouped up to the limit.
	if g := SplitText("a\n\nb\n\nc\n", 100); len(g) != 1 || g[0] != "a\n\nb\n\nc\n" {
		t.Errorf("grouping = %q", g)
	}
	// UTF-8 boundaries are respected on hard splits.
	long := strings.Repeat("é", 50)
	for _, c := range SplitText(long, 9) {
		if !utf8Valid(c) || len(c) > 9 {
			t.Errorf("hard split chunk %q", c)
		}
	}
	if g := SplitText(" \n\n\t\n", 10); len(g) != 0 {
		t.Errorf("white space gives %q", g)
	}
	// Random texts: lossless, bounded.
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha", "beta", "γάμμα", "delta\n", "\n\n", " ", "x"}
	for trial := range 200 {
		var sb strings.Builder
		sb.WriteString("start")
		for range r.IntN(200) {
			sb.WriteString(words[r.IntN(len(words))])
		}
		s := sb.String()
		m := 8 + r.IntN(60)
		g := SplitText(s, m)
		if strings.Join(g, "") != s {
			t.Fatalf("trial %d: not lossless", trial)
		}
		for _, c := range g {
			if len(strings.TrimSpace(c)) > m || !utf8Valid(c) {
				t.Fatalf("trial %d: bad chunk %q (max %d)", trial, c, m)
			}
		}
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestOpenTextDirectory(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"notes.txt":             "top level file\n\nsecond paragraph\n",
		"web/a/page.html":       "<p>web page</p>\n",
		"web/b.txt":             "another web doc\n",
		"books/moby.md":         strings.Repeat("Call me Ishmael. Some years ago.\n\n", 600),
		".hidden/secret.txt":    "skip me\n",
		"books/.draft.txt":      "skip me too\n",
		"books/empty.txt":       "",
		"books/whitespace.text": "\n \n",
	}
	for p, c := range files {
		writeFile(t, filepath.Join(root, p), []byte(c))
	}
	docs, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	byDomain := map[string]string{}
	for i, d := range docs {
		if d.ID != i {
			t.Errorf("doc %d has ID %d", i, d.ID)
		}
		if d.Kind != KindReal {
			t.Errorf("doc %d kind %q", i, d.Kind)
		}
		if strings.Contains(d.Text, "skip me") {
			t.Errorf("hidden file read: %s", d.Source)
		}
		if len(d.Text) > TextDocBytes {
			t.Errorf("doc %d has %d bytes", i, len(d.Text))
		}
		byDomain[d.Domain] += d.Text
	}
	want := map[string]string{
		"notes": files["notes.txt"],
		"web":   files["web/a/page.html"] + files["web/b.txt"],
		"books": files["books/moby.md"],
	}
	if len(byDomain) != len(want) {
		t.Errorf("domains %v", sortedKeys(byDomain))
	}
	for d, text := range want {
		if byDomain[d] != text {
			t.Errorf("domain %s: text differs (%d bytes, want %d)", d, len(byDomain[d]), len(text))
		}
	}
	// A single file: domain is its stem; long files split.
	one, err := Open(filepath.Join(root, "books/moby.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(one) < 3 || one[0].Domain != "moby" {
		t.Errorf("single file: %d docs, domain %q", len(one), one[0].Domain)
	}
}

func TestOpenTextInvalidUTF8(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.txt")
	writeFile(t, p, []byte("fine text\xff\xfe more"))
	_, err := Open(p)
	wantErr(t, err, p, "byte offset 9")
	_, err = Open(dir) // through the directory walk too
	wantErr(t, err, p, "byte offset 9")
}

const jsonlSample = `{"text": "doc one", "meta": {"redpajama_set_name": "RedPajamaC4"}}
{"text": "doc two\nwith newline", "meta": {"redpajama_set_name": "RedPajamaGithub"}}

{"text": "no meta"}
{"text": "meta as string", "meta": "{\"redpajama_set_name\": \"RedPajamaArXiv\"}"}
{"text": "", "meta": {"redpajama_set_name": "RedPajamaC4"}}
{"text": "null meta", "meta": null}
{"text": "last line without newline", "meta": {"redpajama_set_name": "RedPajamaBook"}}`

func checkJSONLDocs(t *testing.T, docs []Document, path string) {
	t.Helper()
	want := []struct{ text, domain, line string }{
		{"doc one", "RedPajamaC4", ":1"},
		{"doc two\nwith newline", "RedPajamaGithub", ":2"},
		{"no meta", UnknownDomain, ":4"},
		{"meta as string", "RedPajamaArXiv", ":5"},
		{"null meta", UnknownDomain, ":7"},
		{"last line without newline", "RedPajamaBook", ":8"},
	}
	if len(docs) != len(want) {
		t.Fatalf("%d docs, want %d: %+v", len(docs), len(want), docs)
	}
	for i, w := range want {
		d := docs[i]
		if d.ID != i || d.Text != w.text || d.Domain != w.domain || d.Kind != KindReal || d.Source != path+w.line {
			t.Errorf("doc %d = %+v, want %+v", i, d, w)
		}
	}
}

func zstdBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadJSONL(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "chunk.jsonl")
	writeFile(t, p, []byte(jsonlSample))
	docs, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	checkJSONLDocs(t, docs, p)

	z := filepath.Join(dir, "example_train_0.jsonl.zst")
	writeFile(t, z, zstdBytes(t, []byte(jsonlSample)))
	docs, err = Open(z)
	if err != nil {
		t.Fatal(err)
	}
	checkJSONLDocs(t, docs, z)
}

func TestReadJSONLErrors(t *testing.T) {
	dir := t.TempDir()
	lines := strings.Split(jsonlSample, "\n")

	bad := filepath.Join(dir, "bad.jsonl")
	writeFile(t, bad, []byte(lines[0]+"\n"+lines[1]+"\n{\"text\": \"unterminated\n"))
	_, err := Open(bad)
	wantErr(t, err, bad, "line 3")

	notext := filepath.Join(dir, "notext.jsonl")
	writeFile(t, notext, []byte(lines[0]+"\n{\"content\": \"x\"}\n"))
	_, err = Open(notext)
	wantErr(t, err, notext, "line 2", "text")

	badmeta := filepath.Join(dir, "badmeta.jsonl")
	writeFile(t, badmeta, []byte("{\"text\": \"x\", \"meta\": [1]}\n"))
	_, err = Open(badmeta)
	wantErr(t, err, badmeta, "line 1", "meta")

	// A large compressed file cut in half: truncated stream.
	var sb strings.Builder
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		fmt.Fprintf(&sb, "{\"text\": \"document %d %x\", \"meta\": {\"redpajama_set_name\": \"RedPajamaC4\"}}\n", i, r.Uint64())
	}
	full := zstdBytes(t, []byte(sb.String()))
	trunc := filepath.Join(dir, "trunc.jsonl.zst")
	writeFile(t, trunc, full[:len(full)/2])
	_, err = Open(trunc)
	wantErr(t, err, trunc, "line ", "decompressed byte offset")

	// Corrupt bytes in the middle of the stream.
	corrupt := append([]byte(nil), full...)
	for i := len(corrupt) / 3; i < len(corrupt)/3+64; i++ {
		corrupt[i] ^= 0x5a
	}
	cp := filepath.Join(dir, "corrupt.jsonl.zst")
	writeFile(t, cp, corrupt)
	_, err = Open(cp)
	wantErr(t, err, cp, "line ")

	// Not zstd at all.
	nz := filepath.Join(dir, "plain.jsonl.zst")
	writeFile(t, nz, []byte(jsonlSample))
	_, err = Open(nz)
	wantErr(t, err, nz, "zstd")
}

// llmcFile builds an llm.c token file by hand: 256 little-endian int32, then
// uint16 tokens.
func llmcFile(magic, version, count int32, toks []uint16) []byte {
	var buf bytes.Buffer
	hdr := make([]int32, 256)
	hdr[0], hdr[1], hdr[2] = magic, version, count
	binary.Write(&buf, binary.LittleEndian, hdr)
	binary.Write(&buf, binary.LittleEndian, toks)
	return buf.Bytes()
}

func TestReadLLMC(t *testing.T) {
	dir := t.TempDir()
	toks := []uint16{50256, 15496, 995, 50256, 31373, 11, 995, 0, 50256, 464}
	p := filepath.Join(dir, "fineweb_val_000000.bin")
	writeFile(t, p, llmcFile(20240520, 1, int32(len(toks)), toks))
	docs, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int32{{50256, 15496, 995}, {50256, 31373, 11, 995, 0}, {50256, 464}}
	if len(docs) != len(want) {
		t.Fatalf("%d docs, want %d", len(docs), len(want))
	}
	for i, d := range docs {
		if !slices.Equal(d.Tokens, want[i]) || d.Domain != "fineweb_val_000000" || d.TokenizerName != "gpt2" || d.ID != i || d.Kind != KindReal {
			t.Errorf("doc %d = %+v", i, d)
		}
	}
	if docs[1].Source != p+"@1030" {
		t.Errorf("source %q", docs[1].Source)
	}
	// Leading tokens before the first EOT make a document too.
	p2 := filepath.Join(dir, "noeot.bin")
	writeFile(t, p2, llmcFile(20240520, 1, 3, []uint16{1, 2, 3}))
	if docs, err := ReadLLMC(p2); err != nil || len(docs) != 1 || len(docs[0].Tokens) != 3 {
		t.Errorf("no-EOT file: %v %+v", err, docs)
	}
	// An empty token file is valid and holds nothing.
	p3 := filepath.Join(dir, "empty.bin")
	writeFile(t, p3, llmcFile(20240520, 1, 0, nil))
	if docs, err := ReadLLMC(p3); err != nil || len(docs) != 0 {
		t.Errorf("empty file: %v %+v", err, docs)
	}
}

func TestReadLLMCErrors(t *testing.T) {
	dir := t.TempDir()
	toks := []uint16{50256, 1, 2, 3}
	cases := []struct {
		name  string
		data  []byte
		parts []string
	}{
		{"magic.bin", llmcFile(20240801, 1, 4, toks), []string{"byte offset 0", "magic"}},
		{"version.bin", llmcFile(20240520, 7, 4, toks), []string{"byte offset 4", "version"}},
		{"short.bin", llmcFile(20240520, 1, 5, toks), []string{"byte offset 1032", "truncated"}},
		{"long.bin", llmcFile(20240520, 1, 3, toks), []string{"byte offset 1030"}},
		{"header.bin", llmcFile(20240520, 1, 4, toks)[:500], []string{"byte offset 500", "header"}},
		{"odd.bin", llmcFile(20240520, 1, 4, toks)[:1031], []string{"byte offset 1031", "truncated"}},
		{"vocab.bin", llmcFile(20240520, 1, 4, []uint16{50256, 1, 60000, 3}), []string{"byte offset 1028", "60000"}},
		{"negative.bin", llmcFile(20240520, 1, -1, nil), []string{"byte offset 8"}},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		writeFile(t, p, c.data)
		_, err := Open(p)
		wantErr(t, err, p, c.parts...)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing.jsonl")); err == nil {
		t.Error("missing file: want error")
	}
	empty := t.TempDir()
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty directory: %v", err)
	}
}

func TestOpenMixedDirectory(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "slim", "a.jsonl"), []byte(jsonlSample))
	writeFile(t, filepath.Join(root, "tokens", "t.bin"), llmcFile(20240520, 1, 3, []uint16{50256, 1, 2}))
	writeFile(t, filepath.Join(root, "readme.txt"), []byte("hello\n"))
	docs, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	domains := map[string]int{}
	for i, d := range docs {
		if d.ID != i {
			t.Fatalf("doc %d has ID %d", i, d.ID)
		}
		domains[d.Domain]++
	}
	// JSONL keeps its own domains; .bin gets the sub-directory; the text
	// file at the top its stem.
	for _, d := range []string{"RedPajamaC4", "RedPajamaGithub", UnknownDomain, "tokens", "readme"} {
		if domains[d] == 0 {
			t.Errorf("domain %q missing: %v", d, domains)
		}
	}
}

// TestReadJSONLLongLine: a line past maxJSONLLine is an error naming the
// line, not a huge allocation (a few KiB of zstd can expand to GBs); lines
// up to the bound, spanning many buffer fills, read whole.
func TestReadJSONLLongLine(t *testing.T) {
	old := maxJSONLLine
	maxJSONLLine = 3 << 20
	defer func() { maxJSONLLine = old }()
	dir := t.TempDir()
	long := `{"text": "` + strings.Repeat("a", 2<<20+17) + `"}`
	ok := filepath.Join(dir, "ok.jsonl.zst")
	writeFile(t, ok, zstdBytes(t, []byte(`{"text": "short"}`+"\n"+long+"\n")))
	docs, err := Open(ok)
	if err != nil || len(docs) != 2 || len(docs[1].Text) != 2<<20+17 {
		t.Fatalf("lines under the bound: %d docs, %v", len(docs), err)
	}
	bomb := filepath.Join(dir, "bomb.jsonl.zst")
	zb := zstdBytes(t, []byte(`{"text": "short"}`+"\n"+strings.Repeat("a", 4<<20)))
	if len(zb) > 64<<10 {
		t.Fatalf("compressed to %d bytes", len(zb))
	}
	writeFile(t, bomb, zb)
	_, err = Open(bomb)
	wantErr(t, err, bomb, "line 2", "longer than 3 MiB")
}

// TestReadJSONLZstWindow: a zstd frame header declaring a huge window (12
// bytes, found by FuzzReadJSONLZst, made the decoder allocate 65 MiB) is
// refused with an error that says why.
func TestReadJSONLZstWindow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.jsonl.zst")
	writeFile(t, p, []byte("(\xb5/\xfdD\x800020\x030"))
	_, err := Open(p)
	wantErr(t, err, p, "zstd window over the 32 MiB")
}

// TestErrorClasses: content errors of every reader match ErrData; a
// missing file is an fs error and not ErrData.
func TestErrorClasses(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"bad.txt":         []byte("ok \xff"),
		"bad.jsonl":       []byte("{nope\n"),
		"bad.jsonl.zst":   []byte("(\xb5/\xfd garbage"),
		"bad.parquet":     []byte("PAR1 not really PAR1"),
		"bad.bin":         make([]byte, 1024),
		"sub/in-dir.json": []byte("\xfe"), // through the directory walk
	}
	for name, b := range cases {
		p := filepath.Join(dir, name)
		writeFile(t, p, b)
		if _, err := Open(p); !errors.Is(err, ErrData) {
			t.Errorf("%s: %v does not match ErrData", name, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "sub")); !errors.Is(err, ErrData) {
		t.Errorf("directory: %v does not match ErrData", err)
	}
	if _, err := ReadJSONL(filepath.Join(dir, "bad.jsonl")); !errors.Is(err, ErrData) {
		t.Errorf("ReadJSONL: %v", err)
	}
	_, err := Open(filepath.Join(dir, "missing.txt"))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrData) {
		t.Errorf("missing file: %v", err)
	}
}
