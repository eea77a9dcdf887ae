package gpt

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/internal/atomicfile"
)

// TestWriteFixtureSafetensors is a helper for
// python/tests/test_checkpoint_format.py: with GOREWEIGHT_FIXTURE_OUT set it
// loads the PyTorch-written parameters of testdata/gpt_fixture.json into a
// model and saves them with SaveParams to that path, for Python to read
// with the safetensors library and compare with the JSON. Without it the
// test is skipped.
func TestWriteFixtureSafetensors(t *testing.T) {
	out := os.Getenv("GOREWEIGHT_FIXTURE_OUT")
	if out == "" {
		t.Skip("GOREWEIGHT_FIXTURE_OUT not set (helper for the Python tests)")
	}
	raw, err := os.ReadFile("testdata/gpt_fixture.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	m, err := newModel(fx.Config)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.params {
		copy(p.Data, fx.Params[i].Data)
	}
	if err := atomicfile.Write(out, m.SaveParams); err != nil {
		t.Fatal(err)
	}
}
