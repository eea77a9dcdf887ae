package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/goreweight/goreweight/goreweight"
)

// maxBatch bounds the batch size so that byte lengths never overflow.
const maxBatch = 1 << 40

// A batch is one call's input and output buffers, all owned by the caller:
// either raw pointers (losses, domains, out, n) or an Arrow C Data
// Interface array (schema, array) with domains and out of length n.
type batch struct {
	losses  unsafe.Pointer // const float*; unused for Arrow
	domains unsafe.Pointer // const int32_t*, may be NULL
	out     unsafe.Pointer // float*
	n       int64          // raw: number of losses; Arrow: length of out (and domains)

	arrow         bool
	schema, array unsafe.Pointer // struct ArrowSchema*, struct ArrowArray*
}

// result is what a weights call returns besides the weights.
type result struct {
	nonFinite int64  // samples with a non-finite loss
	stats     []byte // flat stats JSON, when asked for
}

// open returns Go slices over the caller's buffers (no copy for float32
// losses without nulls) and a function that releases what open acquired.
// scratch is reused for Arrow losses that must be converted.
func (b batch) open(scratch *[]float32) (losses []float32, domains []int32, out []float32, release func(), err error) {
	release = func() {}
	if b.arrow {
		losses, release, err = importArrowLosses(b.schema, b.array, scratch)
		if err != nil {
			return nil, nil, nil, func() {}, err
		}
		if int64(len(losses)) != b.n {
			release()
			return nil, nil, nil, func() {}, errInvalidf("goreweight: weights_out has length %d, the Arrow losses have length %d", b.n, len(losses))
		}
	} else {
		if err := checkLen(b.n, "n (the number of losses)"); err != nil {
			return nil, nil, nil, release, err
		}
		if b.losses == nil {
			return nil, nil, nil, release, errInvalid("goreweight: losses is NULL")
		}
		losses = unsafe.Slice((*float32)(b.losses), b.n)
	}
	defer func() {
		if err != nil {
			release()
			release = func() {}
		}
	}()
	if b.out == nil {
		return nil, nil, nil, release, errInvalid("goreweight: weights_out is NULL")
	}
	if err := checkOverlap(b.out, 4*b.n, "weights_out",
		buffer{b.domains, 4 * b.n, "domains"}, buffer{unsafe.Pointer(unsafe.SliceData(losses)), 4 * b.n, "losses"}); err != nil {
		return nil, nil, nil, release, err
	}
	out = unsafe.Slice((*float32)(b.out), b.n)
	if b.domains != nil {
		domains = unsafe.Slice((*int32)(b.domains), b.n)
	}
	return losses, domains, out, release, nil
}

// checkLen checks a batch length given by the caller.
func checkLen(n int64, name string) error {
	switch {
	case n == 0:
		return goreweight.ErrEmpty
	case n < 0:
		return errInvalidf("goreweight: %s must be >= 1, got %d", name, n)
	case n > maxBatch:
		return errInvalidf("goreweight: %s = %d is too large (at most %d)", name, n, int64(maxBatch))
	}
	return nil
}

// A buffer is one input of a call for checkOverlap: its address (nil when
// the caller gave none), its size in bytes and its name in errors.
type buffer struct {
	p    unsafe.Pointer
	size int64
	name string
}

// checkOverlap refuses an output of outSize bytes at out (named outName in
// the error) that overlaps one of the inputs given (nil ones are skipped),
// naming the first such input.
func checkOverlap(out unsafe.Pointer, outSize int64, outName string, ins ...buffer) error {
	for _, in := range ins {
		if in.p != nil && overlaps(in.p, in.size, out, outSize) {
			return errInvalidf("goreweight: %s overlaps %s", outName, in.name)
		}
	}
	return nil
}

// overlaps reports whether the byte ranges [a, a+na) and [b, b+nb) intersect.
func overlaps(a unsafe.Pointer, na int64, b unsafe.Pointer, nb int64) bool {
	pa, pb := uintptr(a), uintptr(b)
	return pa < pb+uintptr(nb) && pb < pa+uintptr(na)
}

// finish turns a successful core call into a result.
func finish(st *goreweight.Stats, wantStats bool) result {
	r := result{nonFinite: int64(st.NonFinite)}
	if wantStats {
		r.stats = flatJSON(st)
	}
	return r
}

// flatJSON encodes st.Flat() with flatMapJSON ("{}" for nil).
func flatJSON(st *goreweight.Stats) []byte {
	if st == nil {
		return []byte("{}")
	}
	return flatMapJSON(st.Flat())
}

// flatMapJSON encodes a flat map of floats as a JSON object with sorted
// keys. Non-finite values are written NaN, Infinity and -Infinity, as
// Python's json module reads and writes them (strict JSON has no token for
// them).
func flatMapJSON(m map[string]float64) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteString(": ")
		b.Write(jsonFloat(nil, m[k]))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// jsonFloat appends v in the shortest form that reads back exactly.
func jsonFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "Infinity"...)
	case math.IsInf(v, -1):
		return append(b, "-Infinity"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// decodeStrict decodes exactly one JSON value from s into v, refusing
// unknown fields and trailing data; what names the value in errors.
func decodeStrict(s string, v any, what string) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errInvalidf("goreweight: reading the %s JSON: %w", what, err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return errInvalidf("goreweight: reading the %s JSON: unexpected data after the value", what)
	}
	return nil
}
