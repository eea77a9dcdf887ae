// Config's JSON form: the keys, and parsing a --config file or grw_train payload.

package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Keys returns the JSON keys of Config, sorted.
func Keys() []string {
	var keys []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		keys = append(keys, jsonName(t.Field(i)))
	}
	sort.Strings(keys)
	return keys
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// ParseJSON applies the keys of a JSON object to c and returns the result
// and the keys the object set (normalised). Errors about a key unwrap to a
// *goreweight.OptionError naming it. Keys may use '-' or '_'
// ("r-start" is "r_start"); a "preset" is applied before the other keys
// (see Config.WithPreset); an unknown key, a duplicate or a value of the
// wrong type is an error naming it. The result is not validated.
func (c Config) ParseJSON(b []byte) (Config, []string, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return c, nil, fmt.Errorf("train: config is not a JSON object: %w", err)
	}
	if raw == nil {
		return c, nil, fmt.Errorf("train: config must be a JSON object, got null")
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return c, nil, fmt.Errorf("train: config: unexpected data after the JSON object")
	}
	known := Keys()
	norm := make(map[string]json.RawMessage, len(raw))
	var keys []string
	for k, v := range raw {
		n := strings.ReplaceAll(strings.TrimLeft(k, "-"), "-", "_")
		if _, dup := norm[n]; dup {
			return c, nil, fmt.Errorf("train: config sets %q twice (keys may use '-' or '_')", n)
		}
		if !slices.Contains(known, n) {
			return c, nil, keyError(n, fmt.Sprintf("train: unknown config key %q (known: %s)", k, strings.Join(known, ", ")), nil)
		}
		norm[n] = v
		keys = append(keys, n)
	}
	sort.Strings(keys)
	// A preset goes first, so that the object's other keys override it.
	if r, ok := norm["preset"]; ok {
		var name string
		if err := json.Unmarshal(r, &name); err != nil {
			return c, nil, fmt.Errorf("train: config key %q: %s: %w", "preset", r, err)
		}
		var err error
		if c, err = c.WithPreset(name); err != nil {
			return c, nil, err
		}
	}
	// A seed given without seeds means that one seed: it replaces the
	// default list of seeds.
	if _, ok := norm["seed"]; ok {
		if _, ok := norm["seeds"]; !ok {
			c.Seeds = nil
		}
	}
	// Decode key by key so that an error names the key.
	v := reflect.ValueOf(&c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name := jsonName(t.Field(i))
		r, ok := norm[name]
		if !ok {
			continue
		}
		f := v.Field(i).Addr().Interface()
		d := json.NewDecoder(bytes.NewReader(r))
		d.DisallowUnknownFields()
		if err := d.Decode(f); err != nil {
			return c, nil, keyError(name, fmt.Sprintf("train: config key %q: %s: %v", name, r, err), err)
		}
	}
	return c, keys, nil
}

// LoadConfigFile reads a JSON config file and applies it to base (see
// ParseJSON).
func LoadConfigFile(base Config, path string) (Config, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return base, nil, fmt.Errorf("train: reading config file: %w", err)
	}
	c, keys, err := base.ParseJSON(b)
	if err != nil {
		return base, nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, keys, nil
}
