package train

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/goreweight/goreweight/goreweight/trainer/data"
)

// SampleLogSchema is the schema of the per-sample log, samples.arrow: one
// row per training sample per step. step is the optimiser step (from 1)
// the sample was used in, sample_id its window id in the dataset, domain
// and kind its domain name and document kind (real, duplicate, noise,
// entropy), loss its mean token cross-entropy in nats before the update,
// and weight the weight the reweighter gave it (the weights of a step sum
// to 1 over its accum·batch rows; uniform is 1/(accum·batch); at token
// level the sum of the sequence's token weights).
var SampleLogSchema = arrow.NewSchema([]arrow.Field{
	{Name: "step", Type: arrow.PrimitiveTypes.Int64},
	{Name: "sample_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "domain", Type: arrow.BinaryTypes.String},
	{Name: "kind", Type: arrow.BinaryTypes.String},
	{Name: "loss", Type: arrow.PrimitiveTypes.Float32},
	{Name: "weight", Type: arrow.PrimitiveTypes.Float32},
}, nil)

// sampleRows holds the per-sample log in memory, column by column; domains
// and kinds as indices into names.
type sampleRows struct {
	domains []string // domain names, by index
	step    []int64
	id      []int64
	domain  []int32
	kind    []uint8 // index into data.Kinds
	loss    []float32
	weight  []float32
}

func (s *sampleRows) len() int { return len(s.step) }

func (s *sampleRows) add(step int64, id int, domain int32, kind uint8, loss, weight float32) {
	s.step = append(s.step, step)
	s.id = append(s.id, int64(id))
	s.domain = append(s.domain, domain)
	s.kind = append(s.kind, kind)
	s.loss = append(s.loss, loss)
	s.weight = append(s.weight, weight)
}

// truncate keeps the rows of steps <= step; rows are in step order.
func (s *sampleRows) truncate(step int64) {
	n := len(s.step)
	for n > 0 && s.step[n-1] > step {
		n--
	}
	s.step, s.id, s.domain, s.kind, s.loss, s.weight = s.step[:n], s.id[:n], s.domain[:n], s.kind[:n], s.loss[:n], s.weight[:n]
}

// sampleBatchRows is the number of rows per Arrow record batch.
const sampleBatchRows = 1 << 16

// write writes the rows as an Arrow IPC file.
func (s *sampleRows) write(w io.Writer) error {
	mem := memory.NewGoAllocator()
	fw, err := ipc.NewFileWriter(w, ipc.WithSchema(SampleLogSchema), ipc.WithAllocator(mem))
	if err != nil {
		return err
	}
	for lo := 0; lo < s.len() || lo == 0; lo += sampleBatchRows {
		hi := min(lo+sampleBatchRows, s.len())
		rec := s.record(mem, lo, hi)
		err := fw.Write(rec)
		rec.Release()
		if err != nil {
			return err
		}
		if hi == s.len() {
			break
		}
	}
	return fw.Close()
}

func (s *sampleRows) record(mem memory.Allocator, lo, hi int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, SampleLogSchema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues(s.step[lo:hi], nil)
	b.Field(1).(*array.Int64Builder).AppendValues(s.id[lo:hi], nil)
	db := b.Field(2).(*array.StringBuilder)
	kb := b.Field(3).(*array.StringBuilder)
	for i := lo; i < hi; i++ {
		db.Append(s.domains[s.domain[i]])
		kb.Append(data.Kinds[s.kind[i]])
	}
	b.Field(4).(*array.Float32Builder).AppendValues(s.loss[lo:hi], nil)
	b.Field(5).(*array.Float32Builder).AppendValues(s.weight[lo:hi], nil)
	return b.NewRecordBatch()
}

// readSampleLog reads a sample log written by sampleRows.write; domains
// maps domain names to indices (names not in it are an error).
func readSampleLog(path string, domains []string) (*sampleRows, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: reading sample log: %w", err)
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		return nil, fmt.Errorf("train: reading sample log %s: %w", path, err)
	}
	defer r.Close()
	if !r.Schema().Equal(SampleLogSchema) {
		return nil, fmt.Errorf("train: sample log %s has schema %v, want %v", path, r.Schema(), SampleLogSchema)
	}
	s := &sampleRows{domains: domains}
	for i := range r.NumRecords() {
		rec, err := r.RecordBatch(i)
		if err != nil {
			return nil, fmt.Errorf("train: reading sample log %s, record batch %d: %w", path, i, err)
		}
		s.step = append(s.step, rec.Column(0).(*array.Int64).Int64Values()...)
		s.id = append(s.id, rec.Column(1).(*array.Int64).Int64Values()...)
		dc, kc := rec.Column(2).(*array.String), rec.Column(3).(*array.String)
		for j := range int(rec.NumRows()) {
			d := slices.Index(domains, dc.Value(j))
			k := slices.Index(data.Kinds, kc.Value(j))
			if d < 0 || k < 0 {
				return nil, fmt.Errorf("train: sample log %s, row %d: unknown domain %q or kind %q", path, len(s.domain), dc.Value(j), kc.Value(j))
			}
			s.domain = append(s.domain, int32(d))
			s.kind = append(s.kind, uint8(k))
		}
		s.loss = append(s.loss, rec.Column(4).(*array.Float32).Float32Values()...)
		s.weight = append(s.weight, rec.Column(5).(*array.Float32).Float32Values()...)
	}
	if !slices.IsSorted(s.step) {
		return nil, fmt.Errorf("train: sample log %s: steps are not in order", path)
	}
	return s, nil
}
