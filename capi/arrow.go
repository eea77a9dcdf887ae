package main

import (
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/goreweight/goreweight/goreweight"
)

// cArrowSchema and cArrowArray mirror struct ArrowSchema and struct
// ArrowArray of the Arrow C Data Interface (a stable ABI), so that their
// fields can be checked before arrow-go's importer, which asserts (aborts
// the process) on a released array, reads them.
type cArrowSchema struct {
	format, name, metadata                     unsafe.Pointer
	flags, nChildren                           int64
	children, dictionary, release, privateData unsafe.Pointer
}

type cArrowArray struct {
	length, nullCount, offset, nBuffers, nChildren      int64
	buffers, children, dictionary, release, privateData unsafe.Pointer
}

// arrowHeader holds the fields of a foreign ArrowSchema/ArrowArray pair
// that decide whether importing it is safe. It is plain Go, so that tests
// and the fuzzer can build any combination.
type arrowHeader struct {
	format                                         string // the schema's format, at most maxFormat bytes read
	schemaReleased, arrayReleased                  bool   // release is NULL
	schemaChildren                                 int64
	schemaDictionary                               bool // the schema's dictionary is not NULL
	length, nullCount, offset, nBuffers, nChildren int64
	arrayDictionary                                bool // the array's dictionary is not NULL
	buffersNil, validityNil, valuesNil             bool // buffers, buffers[0], buffers[1] are NULL
}

// maxFormat bounds how much of a format string is read.
const maxFormat = 64

// readArrowHeader reads the header of a foreign schema and array; neither
// may be NULL.
func readArrowHeader(schema, arr unsafe.Pointer) arrowHeader {
	cs, ca := (*cArrowSchema)(schema), (*cArrowArray)(arr)
	h := arrowHeader{
		schemaReleased: cs.release == nil, arrayReleased: ca.release == nil,
		schemaChildren: cs.nChildren, schemaDictionary: cs.dictionary != nil,
		length: ca.length, nullCount: ca.nullCount, offset: ca.offset, nBuffers: ca.nBuffers, nChildren: ca.nChildren,
		arrayDictionary: ca.dictionary != nil, buffersNil: ca.buffers == nil,
	}
	if cs.format != nil && !h.schemaReleased {
		var f []byte
		for i := 0; i <= maxFormat; i++ {
			c := *(*byte)(unsafe.Add(cs.format, i))
			if c == 0 {
				break
			}
			f = append(f, c)
		}
		h.format = string(f)
	}
	if !h.buffersNil && !h.arrayReleased && h.nBuffers >= 2 && h.nBuffers <= 3 {
		bufs := unsafe.Slice((*unsafe.Pointer)(ca.buffers), h.nBuffers)
		h.validityNil, h.valuesNil = bufs[0] == nil, bufs[1] == nil
	}
	return h
}

// check reports why an array with this header must not be imported, or
// nil. A rejected array is left as it is: the caller still owns it.
func (h arrowHeader) check() error {
	switch {
	case h.schemaReleased:
		return errInvalid("goreweight: the Arrow schema was already released (its release callback is NULL): export the losses again")
	case h.arrayReleased:
		return errInvalid("goreweight: the Arrow array was already released or moved (its release callback is NULL): export the losses again")
	}
	switch h.format {
	case "e", "f", "g", "n":
	default:
		if len(h.format) > maxFormat {
			return errInvalidf("goreweight: the Arrow losses must be float16, float32 or float64, got a format string longer than %d bytes", maxFormat)
		}
		return errInvalidf("goreweight: the Arrow losses must be float16, float32 or float64 (format \"e\", \"f\" or \"g\"), got format %q", h.format)
	}
	want := int64(2)
	if h.format == "n" {
		want = 0
	}
	switch {
	case h.schemaChildren != 0 || h.nChildren != 0:
		return errInvalidf("goreweight: the Arrow losses must be a flat array, got %d schema and %d array children", h.schemaChildren, h.nChildren)
	case h.schemaDictionary || h.arrayDictionary:
		return errInvalid("goreweight: the Arrow losses must not be dictionary-encoded")
	case h.length < 0 || h.offset < 0:
		return errInvalidf("goreweight: the Arrow array has length %d and offset %d; both must be >= 0", h.length, h.offset)
	case h.length > maxBatch || h.offset > maxBatch:
		return errInvalidf("goreweight: the Arrow array's length %d or offset %d is too large (at most %d)", h.length, h.offset, int64(maxBatch))
	case h.nullCount < -1 || h.nullCount > h.length:
		return errInvalidf("goreweight: the Arrow array's null count %d is outside [-1, length %d]", h.nullCount, h.length)
	case h.nBuffers != want:
		return errInvalidf("goreweight: the Arrow array has %d buffers, its type has %d", h.nBuffers, want)
	case want > 0 && h.buffersNil:
		return errInvalid("goreweight: the Arrow array's buffers pointer is NULL")
	case want > 0 && h.valuesNil && h.length > 0:
		return errInvalid("goreweight: the Arrow array's values buffer is NULL")
	case want > 0 && h.validityNil && h.nullCount != 0 && h.length > 0:
		return errInvalidf("goreweight: the Arrow array has no validity buffer but null count %d (it may be NULL only for null count 0)", h.nullCount)
	}
	return nil
}

// importArrowLosses imports an Arrow C Data Interface array of losses
// (float16, float32 or float64; nulls count as non-finite) and returns them
// as float32. The header is checked first (arrowHeader.check): a released
// or malformed array is an error and is left untouched. Once the import
// begins, the ArrowSchema is released and the ArrowArray moved, as the
// interface prescribes, even on error; release frees the array once the
// losses are no longer needed.
//
// A float32 array without nulls is read in place: the returned slice is the
// producer's buffer (e.g. a torch tensor or a pyarrow buffer), not a copy.
// Other arrays are converted into *scratch, which is grown as needed and
// reused from call to call.
func importArrowLosses(schema, arr unsafe.Pointer, scratch *[]float32) ([]float32, func(), error) {
	if schema == nil {
		return nil, nil, errInvalid("goreweight: Arrow schema (struct ArrowSchema*) is NULL")
	}
	if arr == nil {
		return nil, nil, errInvalid("goreweight: Arrow array (struct ArrowArray*) is NULL")
	}
	if err := readArrowHeader(schema, arr).check(); err != nil {
		return nil, nil, err
	}
	_, a, err := cdata.ImportCArray((*cdata.CArrowArray)(arr), (*cdata.CArrowSchema)(schema))
	if err != nil {
		return nil, nil, errInvalidf("goreweight: importing the Arrow losses: %w", err)
	}
	release := a.Release
	n := a.Len()
	if err := checkLen(int64(n), "the Arrow losses' length"); err != nil {
		release()
		return nil, nil, err
	}
	buf := func() []float32 {
		if cap(*scratch) < n {
			*scratch = make([]float32, n)
		}
		return (*scratch)[:n]
	}
	nan := float32(math.NaN())
	switch v := a.(type) {
	case *array.Float32:
		vals := v.Float32Values()
		if v.NullN() == 0 {
			return vals, release, nil
		}
		dst := buf()
		for i, x := range vals {
			if v.IsNull(i) {
				x = nan
			}
			dst[i] = x
		}
		release()
		return dst, func() {}, nil
	case *array.Float64:
		dst := buf()
		for i, x := range v.Float64Values() {
			dst[i] = float32(x)
			if v.IsNull(i) {
				dst[i] = nan
			}
		}
		release()
		return dst, func() {}, nil
	case *array.Float16:
		dst := buf()
		for i, x := range v.Values() {
			dst[i] = x.Float32()
			if v.IsNull(i) {
				dst[i] = nan
			}
		}
		release()
		return dst, func() {}, nil
	}
	t := a.DataType()
	release()
	if t.ID() == arrow.NULL {
		return nil, nil, &goreweight.NonFiniteError{Count: n, First: 0, Value: float32(math.NaN()), All: true}
	}
	return nil, nil, errInvalidf("goreweight: the Arrow losses must be float16, float32 or float64, got %s", t)
}
