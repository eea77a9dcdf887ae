package data

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The fuzz targets feed arbitrary bytes to every reader through a file, as
// a user's data would come: no input may panic or hang, and a small input
// may not make a large allocation. Their seed corpora (f.Add and
// testdata/fuzz/FuzzXxx) run in every go test; scripts/fuzz.sh runs them
// for a bounded time. Run them with a short -fuzzminimizetime (say 2s):
// with the default 60 s, minimising each new input eats a bounded run.

// fuzzAllocLimit bounds the bytes a reader may allocate for one fuzz input
// (inputs are at most a few KiB; a reader may reasonably allocate a few
// MiB of buffers, and zstd may legitimately expand its input).
const fuzzAllocLimit = 64 << 20

// fuzzRead writes b to the file path (one per fuzz target and process,
// overwritten by every input) and reads it with read, failing on a large
// allocation. Panics fail the fuzzer by themselves.
func fuzzRead(t *testing.T, path string, b []byte, read func(path string) ([]Document, error)) {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	docs, err := read(path)
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > fuzzAllocLimit {
		t.Fatalf("reading %d bytes allocated %d MiB", len(b), d>>20)
	}
	if err == nil {
		for _, d := range docs {
			if d.Domain == "" || (d.Tokens == nil && d.Text == "") {
				t.Fatalf("reader returned an empty document %+v", d)
			}
		}
	}
}

func FuzzReadText(f *testing.F) {
	f.Add([]byte("one paragraph\n\nanother one\n"))
	f.Add([]byte("\uFEFFbom and \xff invalid"))
	f.Add([]byte("  \n\t\n"))
	path := filepath.Join(f.TempDir(), "corpus.txt")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, path, b, Open)
	})
}

func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(jsonlSample))
	f.Add([]byte(`{"text": "x", "meta": "{\"redpajama_set_name\": 3}"}`))
	f.Add([]byte("{\"text\": \"no newline\"}"))
	path := filepath.Join(f.TempDir(), "corpus.jsonl")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, path, b, ReadJSONL)
	})
}

func FuzzReadJSONLZst(f *testing.F) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc.EncodeAll([]byte(jsonlSample), nil))
	f.Add(enc.EncodeAll([]byte(`{"text": "a"}`+"\n"), nil)[:10])
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	path := filepath.Join(f.TempDir(), "corpus.jsonl.zst")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, path, b, ReadJSONL)
	})
}

func FuzzReadParquet(f *testing.F) {
	dir := f.TempDir()
	for _, layout := range []string{"struct", "json"} {
		p := filepath.Join(dir, layout+".parquet")
		writeParquet(f, p, layout, []pqRow{{strp("hello"), strp("A")}, {strp("world"), nil}, {nil, strp("B")}}, 2)
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	path := filepath.Join(f.TempDir(), "corpus.parquet")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, path, b, ReadParquet)
	})
}

func FuzzReadLLMC(f *testing.F) {
	hdr := make([]byte, LLMCHeaderInts*4)
	binary.LittleEndian.PutUint32(hdr[0:], LLMCMagic)
	binary.LittleEndian.PutUint32(hdr[4:], LLMCVersion)
	binary.LittleEndian.PutUint32(hdr[8:], 4)
	body := binary.LittleEndian.AppendUint16(nil, GPT2EOT)
	body = binary.LittleEndian.AppendUint16(body, 10)
	body = binary.LittleEndian.AppendUint16(body, GPT2EOT)
	body = binary.LittleEndian.AppendUint16(body, 11)
	f.Add(append(bytes.Clone(hdr), body...))
	f.Add(hdr[:100])
	path := filepath.Join(f.TempDir(), "tokens.bin")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, path, b, ReadLLMC)
	})
}
