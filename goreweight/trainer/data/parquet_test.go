package data

import (
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
)

type pqRow struct {
	text   *string
	domain *string // nil: null
}

func strp(s string) *string { return &s }

// writeParquet writes rows with the domain in layout: "struct" (SlimPajama-6B:
// meta struct<redpajama_set_name, extra>), "flat" (a column named
// "meta.redpajama_set_name"), "domain" (a column "domain"), "json" (meta as a
// JSON string), "none" (no domain column). Row groups hold rowGroup rows.
func writeParquet(t testing.TB, path, layout string, rows []pqRow, rowGroup int64) {
	t.Helper()
	mem := memory.NewGoAllocator()
	fields := []arrow.Field{{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true}}
	metaType := arrow.StructOf(
		arrow.Field{Name: "redpajama_set_name", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "extra", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	)
	switch layout {
	case "struct":
		fields = append(fields, arrow.Field{Name: "meta", Type: metaType, Nullable: true})
	case "flat":
		fields = append(fields, arrow.Field{Name: "meta.redpajama_set_name", Type: arrow.BinaryTypes.String, Nullable: true})
	case "domain":
		fields = append(fields, arrow.Field{Name: "domain", Type: arrow.BinaryTypes.String, Nullable: true})
	case "json":
		fields = append(fields, arrow.Field{Name: "meta", Type: arrow.BinaryTypes.String, Nullable: true})
	}
	fields = append(fields, arrow.Field{Name: "__index_level_0__", Type: arrow.PrimitiveTypes.Int64})
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i, r := range rows {
		tb := b.Field(0).(*array.StringBuilder)
		if r.text == nil {
			tb.AppendNull()
		} else {
			tb.Append(*r.text)
		}
		switch layout {
		case "struct":
			sb := b.Field(1).(*array.StructBuilder)
			if r.domain == nil {
				sb.AppendNull()
			} else {
				sb.Append(true)
				sb.FieldBuilder(0).(*array.StringBuilder).Append(*r.domain)
				sb.FieldBuilder(1).(*array.Int64Builder).Append(int64(i))
			}
		case "flat", "domain", "json":
			fb := b.Field(1).(*array.StringBuilder)
			switch {
			case r.domain == nil:
				fb.AppendNull()
			case layout == "json":
				fb.Append(fmt.Sprintf(`{"redpajama_set_name": %q}`, *r.domain))
			default:
				fb.Append(*r.domain)
			}
		}
		b.Field(len(fields) - 1).(*array.Int64Builder).Append(int64(i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(rowGroup))
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

func sampleRows() []pqRow {
	return []pqRow{
		{strp("common crawl text"), strp("RedPajamaCommonCrawl")},
		{strp("func main() {}\n"), strp("RedPajamaGithub")},
		{strp("no domain here"), nil},
		{nil, strp("RedPajamaC4")},
		{strp(""), strp("RedPajamaC4")},
		{strp("wikipedia: an encyclopedia"), strp("RedPajamaWikipedia")},
		{strp("théorème ∀x∈ℝ"), strp("RedPajamaArXiv")},
	}
}

func TestReadParquet(t *testing.T) {
	dir := t.TempDir()
	want := []struct {
		text, domain string
		row          int
	}{
		{"common crawl text", "RedPajamaCommonCrawl", 0},
		{"func main() {}\n", "RedPajamaGithub", 1},
		{"no domain here", UnknownDomain, 2},
		{"wikipedia: an encyclopedia", "RedPajamaWikipedia", 5},
		{"théorème ∀x∈ℝ", "RedPajamaArXiv", 6},
	}
	for _, layout := range []string{"struct", "flat", "domain", "json", "none"} {
		for _, rg := range []int64{2, 100} {
			p := filepath.Join(dir, fmt.Sprintf("%s-%d.parquet", layout, rg))
			writeParquet(t, p, layout, sampleRows(), rg)
			docs, err := Open(p)
			if err != nil {
				t.Fatalf("%s: %v", layout, err)
			}
			if len(docs) != len(want) {
				t.Fatalf("%s: %d docs, want %d: %+v", layout, len(docs), len(want), docs)
			}
			for i, w := range want {
				d := docs[i]
				dom := w.domain
				if layout == "none" {
					dom = UnknownDomain
				}
				src := fmt.Sprintf("%s:row %d", p, w.row)
				if d.ID != i || d.Text != w.text || d.Domain != dom || d.Kind != KindReal || d.Source != src {
					t.Errorf("%s rg %d doc %d = %+v, want text %q domain %q source %q", layout, rg, i, d, w.text, dom, src)
				}
			}
		}
	}
}

func TestReadParquetErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	writeParquet(t, good, "struct", sampleRows(), 100)
	full, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}

	trunc := filepath.Join(dir, "trunc.parquet")
	writeFile(t, trunc, full[:len(full)-100])
	_, err = Open(trunc)
	wantErr(t, err, trunc, fmt.Sprintf("byte offset %d", len(full)-104))

	tiny := filepath.Join(dir, "tiny.parquet")
	writeFile(t, tiny, full[:7])
	_, err = Open(tiny)
	wantErr(t, err, tiny, "byte offset 7")

	notpq := filepath.Join(dir, "csv.parquet")
	writeFile(t, notpq, []byte("text,domain\nhello,web\nthis is not parquet at all\n"))
	_, err = Open(notpq)
	wantErr(t, err, notpq, "byte offset 0")

	// Footer length pointing before the start of the file.
	badFooter := append([]byte(nil), full...)
	n := len(badFooter)
	badFooter[n-8], badFooter[n-7], badFooter[n-6], badFooter[n-5] = 0xff, 0xff, 0xff, 0x7f
	bf := filepath.Join(dir, "footer.parquet")
	writeFile(t, bf, badFooter)
	_, err = Open(bf)
	wantErr(t, err, bf, fmt.Sprintf("byte offset %d", n-8))

	// Garbage in the data pages: an error, never a crash.
	for _, off := range []int{4, 20, 60, len(full) / 2} {
		c := append([]byte(nil), full...)
		for i := off; i < off+24 && i < len(c)-8; i++ {
			c[i] ^= 0xa5
		}
		p := filepath.Join(dir, fmt.Sprintf("corrupt%d.parquet", off))
		writeFile(t, p, c)
		if docs, err := Open(p); err == nil {
			// Snappy pages may survive some flips; then the text must differ
			// or match, but reading must not crash.
			t.Logf("corruption at %d went unnoticed (%d docs)", off, len(docs))
		} else if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %s", err, p)
		}
	}

	// No text column.
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "content", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	b.Field(0).(*array.StringBuilder).Append("x")
	rec := b.NewRecordBatch()
	nt := filepath.Join(dir, "notext.parquet")
	f, _ := os.Create(nt)
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, err = Open(nt)
	wantErr(t, err, nt, "no \"text\" column", "content")
}
