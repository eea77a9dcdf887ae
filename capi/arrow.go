package main

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
)

// importArrowLosses imports an Arrow C Data Interface array of losses
// (float16, float32 or float64; nulls count as non-finite) and returns them
// as float32. The ArrowSchema is released and the ArrowArray moved, as the
// interface prescribes; release frees the array once the losses are no
// longer needed.
//
// A float32 array without nulls is read in place: the returned slice is the
// producer's buffer (e.g. a torch tensor or a pyarrow buffer), not a copy.
// Other arrays are converted into *scratch, which is grown as needed and
// reused from call to call.
func importArrowLosses(schema, arr unsafe.Pointer, scratch *[]float32) ([]float32, func(), error) {
	if schema == nil {
		return nil, nil, errors.New("goreweight: Arrow schema (struct ArrowSchema*) is NULL")
	}
	if arr == nil {
		return nil, nil, errors.New("goreweight: Arrow array (struct ArrowArray*) is NULL")
	}
	_, a, err := cdata.ImportCArray((*cdata.CArrowArray)(arr), (*cdata.CArrowSchema)(schema))
	if err != nil {
		return nil, nil, fmt.Errorf("goreweight: importing the Arrow losses: %w", err)
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
		return nil, nil, fmt.Errorf("goreweight: the Arrow losses are all null (type null); every loss is non-finite")
	}
	return nil, nil, fmt.Errorf("goreweight: the Arrow losses must be float16, float32 or float64, got %s", t)
}
