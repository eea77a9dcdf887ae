// Package jsonx holds goreweight's NaN-safe JSON number, used by the core's
// Stats and the trainer's metrics records.
//
// The C ABI's flat stats (capi/batch.go) deliberately use another encoding:
// the tokens NaN, Infinity and -Infinity, which Python's json module reads
// back as floats, so that Python callers get float('nan') rather than None
// in a dict of floats. Files and logs use this package's strict JSON.
package jsonx

import (
	"encoding/json"
	"math"
	"strconv"
)

// Float is a float64 whose JSON form is null for NaN and ±Inf (JSON has no
// such numbers), and which reads null back as NaN. Finite values are
// written in the shortest form that reads back exactly.
type Float float64

// MarshalJSON writes the number, or null when it is not finite.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// Valid reports whether f is finite.
func (f Float) Valid() bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }
