package tensorfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// handMade builds a safetensors file byte by byte from the specification.
func handMade(header string, data ...float32) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, uint64(len(header)))
	b = append(b, header...)
	for _, v := range data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestDecodeHandMade(t *testing.T) {
	b := handMade(`{"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}`, 1.5, -2, 7)
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Verified {
		t.Error("a file without a checksum is reported verified")
	}
	if !slices.Equal(f.Names(), []string{"a", "b"}) {
		t.Fatalf("names %v, want file order a, b", f.Names())
	}
	a, _ := f.Tensor("a")
	sc, _ := f.Tensor("b")
	if !slices.Equal(a.Data, []float32{1.5, -2}) || !slices.Equal(a.Shape, []int{2}) || !slices.Equal(sc.Data, []float32{7}) || len(sc.Shape) != 0 {
		t.Fatalf("decoded %+v %+v", a, sc)
	}
	if f.Meta["k"] != "v" {
		t.Fatalf("metadata %v", f.Meta)
	}
}

func sample() ([]Tensor, map[string]string) {
	return []Tensor{
		{Name: "w", Shape: []int{2, 3}, Data: []float32{1, -2, 3.25, float32(math.Inf(1)), 0, -0}},
		{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
		{Name: "s", Shape: nil, Data: []float32{float32(math.NaN())}},
	}, map[string]string{"format": "test", "step": "12"}
}

func TestRoundTrip(t *testing.T) {
	ts, meta := sample()
	var buf bytes.Buffer
	if err := Write(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if hn := binary.LittleEndian.Uint64(b); hn%8 != 0 {
		t.Errorf("header length %d is not padded to 8", hn)
	}
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verified {
		t.Error("own file not verified")
	}
	if len(f.Tensors) != len(ts) {
		t.Fatalf("%d tensors back", len(f.Tensors))
	}
	for i, want := range ts {
		got := f.Tensors[i]
		if got.Name != want.Name || len(got.Shape) != len(want.Shape) || !slices.Equal(got.Shape, want.Shape) && len(want.Shape) > 0 {
			t.Fatalf("tensor %d: %s%v, want %s%v", i, got.Name, got.Shape, want.Name, want.Shape)
		}
		for j := range want.Data {
			if math.Float32bits(got.Data[j]) != math.Float32bits(want.Data[j]) {
				t.Fatalf("%s[%d] = %g, want %g (bitwise)", want.Name, j, got.Data[j], want.Data[j])
			}
		}
	}
	if len(f.Meta) != 2 || f.Meta["step"] != "12" {
		t.Fatalf("metadata %v", f.Meta)
	}
}

func TestWriteRejects(t *testing.T) {
	for name, c := range map[string]struct {
		ts   []Tensor
		meta map[string]string
	}{
		"shape":    {[]Tensor{{Name: "a", Shape: []int{3}, Data: []float32{1}}}, nil},
		"negative": {[]Tensor{{Name: "a", Shape: []int{-1, -1}, Data: []float32{1}}}, nil},
		"dup":      {[]Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{1}}}, nil},
		"noname":   {[]Tensor{{Shape: []int{1}, Data: []float32{1}}}, nil},
		"reserved": {nil, map[string]string{ChecksumKey: "x"}},
	} {
		if err := Write(&bytes.Buffer{}, c.ts, c.meta); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCorrupt(t *testing.T) {
	ts, meta := sample()
	var buf bytes.Buffer
	if err := Write(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	expect := func(name string, b []byte, want string) {
		t.Helper()
		_, err := Decode(b)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want ErrFormat mentioning %q", name, err, want)
		}
	}
	// Every truncation fails.
	for n := range len(good) {
		if _, err := Decode(good[:n]); !errors.Is(err, ErrFormat) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	expect("empty", nil, "truncated")
	expect("truncated data", good[:len(good)-1], "truncated")
	// Every bit flip in the data fails the checksum.
	hn := int(binary.LittleEndian.Uint64(good))
	for i := 8 + hn; i < len(good); i++ {
		b := slices.Clone(good)
		b[i] ^= 0x04
		expect("flipped data", b, "checksum mismatch")
	}
	expect("metadata", bytes.Replace(good, []byte(`"step":"12"`), []byte(`"step":"13"`), 1), "checksum mismatch")
	expect("trailing", append(slices.Clone(good), 0, 0, 0, 0), "cover")
	huge := slices.Clone(good)
	huge[7] = 0x7f
	expect("header length", huge, "over the")
	expect("not json", handMade("{nope}   "), "JSON")
	expect("not object", handMade("[1,2]   "), "start with")
	expect("dtype", handMade(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, 1), "F16")
	expect("unknown field", handMade(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, 1), "unknown field")
	expect("gap", handMade(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 1, 2), "gap")
	expect("overlap", handMade(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 1, 2), "gap or overlap")
	expect("size", handMade(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 1, 2), "needs 12 bytes")
	expect("huge shape", handMade(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}`, 1, 2), "larger than the file")
	expect("offsets", handMade(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800000000]}}`, 1, 2), "outside")
	expect("negative", handMade(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, 1, 2), "negative")
	expect("bad metadata", handMade(`{"__metadata__":{"a":1}}`), "__metadata__")
	expect("bad checksum", handMade(`{"__metadata__":{"goreweight.crc32":"xyz"}}`), "8 hex digits")
}

// FuzzDecode checks that no input panics, and that what decodes encodes
// and decodes back to the same tensors.
func FuzzDecode(f *testing.F) {
	ts, meta := sample()
	var buf bytes.Buffer
	if err := Write(&buf, ts, meta); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(handMade(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		tf, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := Write(&out, tf.Tensors, tf.Meta); err != nil {
			return // e.g. a metadata key Write reserves
		}
		back, err := Decode(out.Bytes())
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if len(back.Tensors) != len(tf.Tensors) {
			t.Fatal("re-encoded tensor count differs")
		}
	})
}
