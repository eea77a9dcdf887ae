package data

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// domainColumns are the Parquet columns ReadParquet takes the domain from,
// in order of preference.
var domainColumns = []string{"meta.redpajama_set_name", "redpajama_set_name", "domain"}

// ReadParquet reads a Parquet file with a string column "text" and the
// domain in one of: a struct column "meta" with a string field
// "redpajama_set_name" (SlimPajama-6B), a string column "meta" holding that
// object as JSON, a flat string column "meta.redpajama_set_name",
// "redpajama_set_name" or "domain". Rows without a domain get UnknownDomain;
// rows with null or empty text are skipped. Other columns are not read.
//
// A file that is not Parquet or is truncated gives an error naming the file
// and the byte offset of the bad magic or footer; one that fails while its
// pages are decoded gives an error naming the file and the row.
func ReadParquet(path string) ([]Document, error) { return classify(readParquet(path)) }

func readParquet(path string) (docs []Document, err error) {
	if err := checkParquetFrame(path); err != nil {
		return nil, err
	}
	row := int64(0)
	defer func() {
		// arrow-go may panic on some corrupt pages; bad input must give an
		// error, never a crash.
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("data: %s: row %d: corrupt Parquet data: %v", path, row, r)
		}
	}()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("data: %s: invalid Parquet metadata: %w", path, err)
	}
	defer pf.Close()

	sc := pf.MetaData().Schema
	var leaves []int
	var names []string
	for i := 0; i < sc.NumColumns(); i++ {
		p := sc.Column(i).Path()
		names = append(names, p)
		if p == "text" || p == "meta" || p == "redpajama_set_name" || p == "domain" || p == "meta.redpajama_set_name" {
			leaves = append(leaves, i)
		}
	}
	hasText := false
	for _, i := range leaves {
		hasText = hasText || sc.Column(i).Path() == "text"
	}
	if !hasText {
		return nil, fmt.Errorf("data: %s: no \"text\" column (columns: %s)", path, strings.Join(names, ", "))
	}

	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.NewGoAllocator())
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(context.Background(), leaves, nil)
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	defer rr.Release()
	for {
		rec, err := rr.Read()
		if rec != nil {
			got, derr := parquetDocs(rec, path, row)
			if derr != nil {
				return nil, derr
			}
			for _, d := range got {
				d.ID = len(docs)
				docs = append(docs, d)
			}
			row += rec.NumRows()
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("data: %s: row %d: corrupt Parquet data: %w", path, row, err)
		}
		if rec == nil {
			break
		}
	}
	return docs, nil
}

// checkParquetFrame checks the leading and trailing magic and the footer
// length, so that a truncated file gets an error with a byte offset.
func checkParquetFrame(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	size := st.Size()
	if size < 12 {
		return fmt.Errorf("data: %s: byte offset %d: truncated Parquet file (%d bytes; the smallest has 12)", path, size, size)
	}
	var head [4]byte
	var tail [8]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return fmt.Errorf("data: %s: %w", path, err)
	}
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("data: %s: %w", path, err)
	}
	if string(head[:]) != "PAR1" {
		return fmt.Errorf("data: %s: byte offset 0: not a Parquet file (magic %q, want \"PAR1\")", path, head[:])
	}
	if m := string(tail[4:]); m != "PAR1" {
		if m == "PARE" {
			return fmt.Errorf("data: %s: byte offset %d: encrypted Parquet footers are not supported", path, size-4)
		}
		return fmt.Errorf("data: %s: byte offset %d: no Parquet footer magic (file truncated?)", path, size-4)
	}
	footer := int64(binary.LittleEndian.Uint32(tail[:4]))
	if footer+12 > size {
		return fmt.Errorf("data: %s: byte offset %d: footer length %d exceeds the file (%d bytes; truncated?)", path, size-8, footer, size)
	}
	return nil
}

// parquetDocs turns one record batch into documents; row is the index of
// its first row in the file.
func parquetDocs(rec arrow.RecordBatch, path string, row int64) ([]Document, error) {
	textCol := column(rec, "text")
	if textCol == nil {
		return nil, fmt.Errorf("data: %s: no \"text\" column", path)
	}
	text, err := stringGetter(textCol)
	if err != nil {
		return nil, fmt.Errorf("data: %s: column \"text\": %w", path, err)
	}
	domainOf := func(int) (string, error) { return "", nil }
	for _, name := range domainColumns {
		if c := column(rec, name); c != nil {
			get, err := stringGetter(c)
			if err != nil {
				return nil, fmt.Errorf("data: %s: column %q: %w", path, name, err)
			}
			domainOf = func(i int) (string, error) { return get(i), nil }
			break
		}
	}
	if c := rec.Schema().FieldIndices("meta"); len(c) == 1 && isString(rec.Column(c[0])) && column(rec, "meta.redpajama_set_name") == nil {
		get, _ := stringGetter(rec.Column(c[0]))
		domainOf = func(i int) (string, error) { return metaDomain([]byte(get(i))) }
	}
	n := int(rec.NumRows())
	docs := make([]Document, 0, n)
	for i := 0; i < n; i++ {
		if textCol.IsNull(i) {
			continue
		}
		t := text(i)
		if t == "" {
			continue
		}
		d, err := domainOf(i)
		if err != nil {
			return nil, fmt.Errorf("data: %s: row %d: %w", path, row+int64(i), err)
		}
		if d == "" {
			d = UnknownDomain
		}
		docs = append(docs, Document{Domain: d, Kind: KindReal, Text: t, Source: fmt.Sprintf("%s:row %d", path, row+int64(i))})
	}
	return docs, nil
}

// column finds a column by name, either a top-level field with exactly that
// name or a dotted path into struct fields; a null struct makes the rows
// null. It returns nil if there is none.
func column(rec arrow.RecordBatch, name string) arrow.Array {
	if idx := rec.Schema().FieldIndices(name); len(idx) > 0 {
		return rec.Column(idx[0])
	}
	parts := strings.Split(name, ".")
	idx := rec.Schema().FieldIndices(parts[0])
	if len(idx) == 0 {
		return nil
	}
	arr := rec.Column(idx[0])
	var parent []arrow.Array
	for _, p := range parts[1:] {
		st, ok := arr.(*array.Struct)
		if !ok {
			return nil
		}
		fi, ok := st.DataType().(*arrow.StructType).FieldIdx(p)
		if !ok {
			return nil
		}
		parent = append(parent, st)
		arr = st.Field(fi)
	}
	if len(parent) == 0 {
		return arr
	}
	return nullable{arr, parent}
}

// nullable is a struct child whose rows are also null where a parent
// struct is null.
type nullable struct {
	arrow.Array
	parents []arrow.Array
}

func (n nullable) IsNull(i int) bool {
	for _, p := range n.parents {
		if p.IsNull(i) {
			return true
		}
	}
	return n.Array.IsNull(i)
}

func isString(a arrow.Array) bool {
	_, err := stringGetter(a)
	return err == nil
}

// stringGetter returns a function giving row i of a string-like column as
// a string ("" for null).
func stringGetter(a arrow.Array) (func(int) string, error) {
	inner := a
	if n, ok := a.(nullable); ok {
		inner = n.Array
	}
	var get func(int) string
	switch c := inner.(type) {
	case *array.String:
		get = c.Value
	case *array.LargeString:
		get = c.Value
	case *array.StringView:
		get = c.Value
	case *array.Binary:
		get = func(i int) string { return string(c.Value(i)) }
	case *array.LargeBinary:
		get = func(i int) string { return string(c.Value(i)) }
	case *array.Dictionary:
		dict, err := stringGetter(c.Dictionary())
		if err != nil {
			return nil, err
		}
		get = func(i int) string { return dict(c.GetValueIndex(i)) }
	default:
		return nil, fmt.Errorf("type %s is not a string", a.DataType())
	}
	return func(i int) string {
		if a.IsNull(i) {
			return ""
		}
		return get(i)
	}, nil
}
