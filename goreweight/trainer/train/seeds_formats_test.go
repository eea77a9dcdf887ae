package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/klauspost/compress/zstd"
)

// formatDocs is a small two-domain corpus in SlimPajama's shape.
func formatDocs() (texts, sets []string) {
	for i := range 300 {
		set := []string{"RedPajamaGithub", "RedPajamaBook"}[i%2]
		texts = append(texts, strings.Repeat(fmt.Sprintf("doc %d of %s: %d and %d. ", i, set, i*7%13, i*3%11), 5))
		sets = append(sets, set)
	}
	return texts, sets
}

// writeSlimPajamaParquet writes the corpus as SlimPajama's Parquet layout:
// text plus meta struct<redpajama_set_name>, in row groups of 64 rows.
func writeSlimPajamaParquet(t *testing.T, path string, texts, sets []string) {
	t.Helper()
	meta := arrow.StructOf(arrow.Field{Name: "redpajama_set_name", Type: arrow.BinaryTypes.String, Nullable: true})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "meta", Type: meta, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	for i := range texts {
		b.Field(0).(*array.StringBuilder).Append(texts[i])
		sb := b.Field(1).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.StringBuilder).Append(sets[i])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(64))
	w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSeedsJSONLZstAndParquet runs a two-seed comparison on one corpus
// written three ways: JSON Lines, zstd-compressed JSON Lines and Parquet.
// The readers must hand the trainer the same documents and domains, so the
// three summaries (every run of every seed, the aggregates, the intervals and
// the evaluation noise) are identical; and each has the shape --seeds
// promises (a run per strategy and seed, an aggregate per strategy with a
// two-sided interval, per-domain values for both domains).
func TestSeedsJSONLZstAndParquet(t *testing.T) {
	dir := t.TempDir()
	texts, sets := formatDocs()
	var jl bytes.Buffer
	for i := range texts {
		b, err := json.Marshal(map[string]any{"text": texts[i], "meta": map[string]string{"redpajama_set_name": sets[i]}})
		if err != nil {
			t.Fatal(err)
		}
		jl.Write(append(b, '\n'))
	}
	plain := filepath.Join(dir, "sp.jsonl")
	if err := os.WriteFile(plain, jl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	zst := filepath.Join(dir, "sp.jsonl.zst")
	if err := os.WriteFile(zst, enc.EncodeAll(jl.Bytes(), nil), 0o644); err != nil {
		t.Fatal(err)
	}
	pq := filepath.Join(dir, "sp.parquet")
	writeSlimPajamaParquet(t, pq, texts, sets)

	var want string
	for _, path := range []string{plain, zst, pq} {
		c := tinyConfig(t)
		c.Data, c.Tokenizer = path, "byte"
		c.Steps, c.EvalEvery, c.CkptEvery, c.ValMax = 4, 2, 2, 8
		c.Compare = StrategyList{"uniform", "quadratic"}
		c.Seeds = SeedList{1, 2}
		sum, err := Run(context.Background(), c, Options{})
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(path), err)
		}
		st := sum.Strategies["quadratic"]
		if st == nil || len(sum.Runs) != 4 || st.NSeeds != 2 || len(st.DeltaCI95) != 2 || len(sum.Domains) != 2 || len(st.Domains) != 2 {
			t.Fatalf("%s: runs %d, quadratic %+v, domains %v", filepath.Base(path), len(sum.Runs), st, sum.Domains)
		}
		if st.DeltaCI95[0] > st.DeltaCI95[1] {
			t.Errorf("%s: interval %v is reversed", filepath.Base(path), st.DeltaCI95)
		}
		got := comparable(t, sum)
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("%s: summary differs from the JSON Lines one:\n got %s\nwant %s", filepath.Base(path), got, want)
		}
		if _, err := os.Stat(filepath.Join(c.Out, "seed-2", "quadratic")); err != nil {
			t.Errorf("%s: per-seed layout: %v", filepath.Base(path), err)
		}
	}
}
