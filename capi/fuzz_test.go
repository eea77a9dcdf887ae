package main

import (
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/goreweight/goreweight/goreweight"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// FuzzConfigJSON feeds arbitrary bytes as the options JSON of
// grw_weigher_new and the config JSON of grw_reweighter_new: no panic, a
// bad-argument status for what is refused, an allocation proportional to
// the input, and a working handle for what is accepted.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"strategy":"topk","q":0.5,"cap":2}`, `{"delta":0}`, `{"strategy":""}`,
		`{"strategy":"extremes","delta":2,"domain_multipliers":[1,0.5,2]}`, `{"detla":1}`, `{"delta":1e308}`,
		`{"schedule":{"kind":"linear","r_start":100,"r_end":1,"steps":10,"warmup":2}}`,
		`{"schedule":{"kind":"step","boundaries":[1,9223372036854775807],"values":[1,2,3]}}`, `{"schedule":{"kind":"constant","r":5e-324}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		js := string(data)
		l := []float32{1, 2, 3, float32(math.NaN())}
		dom := []int32{0, 1, 2, 0}
		out := make([]float32, 4)
		var h, rh uint64
		var err, rerr error
		if a := allocated(func() { h, err = weigherNew(js); rh, rerr = reweighterNew(js) }); a > uint64(1<<20+64*len(data)) {
			t.Fatalf("%d bytes allocated for %d bytes of JSON", a, len(data))
		}
		for _, e := range []error{err, rerr} {
			if e != nil && statusOf(e) != statusInvalid {
				t.Fatalf("error %v has status %d, want GRW_EINVAL", e, statusOf(e))
			}
		}
		if err == nil {
			_, e := weigherWeights(h, 0.5, rawBatch(l, dom, out), true)
			if e != nil && statusOf(e) == statusInternal {
				t.Fatalf("internal error: %v", e)
			}
			if e := closeHandle(h); e != nil {
				t.Fatal(e)
			}
		}
		if rerr == nil {
			_, e := reweighterWeights(rh, rawBatch(l, dom, out), true)
			if e != nil && statusOf(e) == statusInternal {
				t.Fatalf("internal error: %v", e)
			}
			st, e := reweighterState(rh)
			if e != nil {
				t.Fatal(e)
			}
			if e := reweighterLoadState(rh, string(st)); e != nil {
				t.Fatalf("own state refused: %v\n%s", e, st)
			}
			if e := closeHandle(rh); e != nil {
				t.Fatal(e)
			}
		}
	})
}

// FuzzStateJSON feeds arbitrary bytes as a saved state to
// grw_reweighter_restore and grw_reweighter_load_state: no panic, the
// same verdict from both, GRW_EINVAL when refused.
func FuzzStateJSON(f *testing.F) {
	for _, s := range []string{`{"version":1,"config":{"strategy":"linupper","delta":1,"nonfinite":"zero","schedule":{"kind":"constant","r":1}},"step":3}`,
		`{"version":1,"config":{"strategy":"linupper","delta":0,"nonfinite":"zero","schedule":{"kind":"constant","r":1}},"step":3}`,
		`{"version":1,"config":{"strategy":"linupper","delta":1,"nonfinite":"zero","capp":2,"schedule":{"kind":"constant","r":1}},"step":3}`,
		`{"version":7}`, `{"version":1,"config":{"strategy":"linupper","delta":1,"nonfinite":"zero","schedule":{"kind":"constant","r":1}},"step":-1}`} {
		f.Add([]byte(s))
	}
	base, err := reweighterNew(`{"schedule":{"kind":"constant","r":1}}`)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := reweighterRestore(string(data))
		lerr := reweighterLoadState(base, string(data))
		if (err == nil) != (lerr == nil) {
			t.Fatalf("restore: %v, load_state: %v", err, lerr)
		}
		if err != nil {
			if statusOf(err) != statusInvalid || !errors.Is(err, goreweight.ErrInvalid) {
				t.Fatalf("error %v: status %d", err, statusOf(err))
			}
			return
		}
		l, out := []float32{1, 2, 3}, make([]float32, 3)
		if _, e := reweighterWeights(h, rawBatch(l, nil, out), false); e != nil && statusOf(e) == statusInternal {
			t.Fatalf("internal error: %v", e)
		}
		closeHandle(h)
	})
}

// FuzzArrowHeader checks the guard in front of arrow-go's importer over
// every combination of the parsed struct fields, and imports the arrays
// it accepts whenever they fit the real buffers: no panic, no abort,
// GRW_EINVAL (or GRW_EEMPTY / GRW_ENONFINITE) for what is refused.
func FuzzArrowHeader(f *testing.F) {
	f.Add("f", false, false, int64(0), int64(4), int64(0), int64(0), int64(2), int64(0), false, false, false, []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64})
	f.Add("g", false, true, int64(0), int64(1), int64(0), int64(0), int64(2), int64(0), false, false, false, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add("+l", false, false, int64(1), int64(3), int64(-1), int64(1), int64(1), int64(1), true, true, true, []byte{})
	f.Fuzz(func(t *testing.T, format string, schemaReleased, arrayReleased bool, schemaChildren, length, nullCount, offset, nBuffers, nChildren int64,
		dict, validityNil, valuesNil bool, data []byte) {
		h := arrowHeader{format: format, schemaReleased: schemaReleased, arrayReleased: arrayReleased, schemaChildren: schemaChildren,
			schemaDictionary: dict, length: length, nullCount: nullCount, offset: offset, nBuffers: nBuffers, nChildren: nChildren,
			arrayDictionary: dict, validityNil: validityNil, valuesNil: valuesNil}
		err := h.check()
		if err != nil {
			if statusOf(err) != statusInvalid {
				t.Fatalf("refused with status %d: %v", statusOf(err), err)
			}
			return
		}
		// Accepted: import a real float32 array whose fields are the
		// fuzzed ones where they fit its buffers.
		vals := make([]float32, len(data)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		if format != "f" || nBuffers != 2 || offset+length > int64(len(vals)) || length == 0 {
			return
		}
		b := array.NewFloat32Builder(memory.DefaultAllocator)
		for i, v := range vals {
			if !validityNil && i%3 == 2 {
				b.AppendNull()
			} else {
				b.Append(v)
			}
		}
		arr := b.NewFloat32Array()
		defer arr.Release()
		var cs cdata.CArrowSchema
		var ca cdata.CArrowArray
		cdata.ExportArrowArray(arr, &ca, &cs)
		m := (*cArrowArray)(unsafe.Pointer(&ca))
		m.length, m.offset = length, offset
		if nullCount == 0 || nullCount == -1 {
			m.nullCount = nullCount
		}
		if readArrowHeader(unsafe.Pointer(&cs), unsafe.Pointer(&ca)).check() != nil {
			cdata.ReleaseCArrowArray(&ca)
			cdata.ReleaseCArrowSchema(&cs)
			return
		}
		var scratch []float32
		l, release, err := importArrowLosses(unsafe.Pointer(&cs), unsafe.Pointer(&ca), &scratch)
		if err != nil {
			if s := statusOf(err); s == statusInternal {
				t.Fatalf("import: %v", err)
			}
			return
		}
		if int64(len(l)) != length {
			t.Fatalf("imported %d losses, want %d", len(l), length)
		}
		release()
	})
}
