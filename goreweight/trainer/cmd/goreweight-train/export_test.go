package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/internal/atomicfile"
	"github.com/goreweight/goreweight/goreweight/trainer/tensorfile"
	"github.com/goreweight/goreweight/goreweight/trainer/train"
)

// TestExportHF trains a tiny run, exports it and checks the Hugging Face
// files against the model: names, Conv1D transposes, config.
func TestExportHF(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	var stdout, stderr bytes.Buffer
	args := append(tinyArgs(t, out), "--compare", "uniform,linupper")
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("training: exit %d: %s", code, stderr.String())
	}
	hf := filepath.Join(t.TempDir(), "hf")
	stderr.Reset()
	if code := run([]string{"export", out, "--hf", hf}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "--strategy") {
		t.Fatalf("export of a two-strategy run without --strategy: exit %d, %q", code, stderr.String())
	}
	if code := run([]string{"export", out}, &stdout, &stderr); code != 2 {
		t.Fatalf("export without --hf: exit %d", code)
	}
	stderr.Reset()
	if code := run([]string{"export", "--strategy", "linupper", out, "--hf", hf}, &stdout, &stderr); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr.String())
	}
	sm, err := train.LoadModel(train.CheckpointPath(out, "linupper"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(hf, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := tensorfile.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta["format"] != "pt" {
		t.Errorf("metadata %v: transformers needs format pt", f.Meta)
	}
	C := sm.Model.Config().Width
	byName := map[string]tensorfile.Tensor{}
	for _, x := range f.Tensors {
		byName[x.Name] = x
	}
	for _, p := range sm.Model.Params() {
		name := "transformer." + p.Name
		if p.Name == "wte" || p.Name == "wpe" {
			name += ".weight"
		}
		x, ok := byName[name]
		if !ok {
			t.Fatalf("%s missing from the export (has %s)", name, f.Describe())
		}
		delete(byName, name)
		conv := strings.HasSuffix(p.Name, "c_attn.weight") || strings.HasSuffix(p.Name, "c_proj.weight") || strings.HasSuffix(p.Name, "c_fc.weight")
		if !conv {
			if len(x.Shape) != len(p.Shape) || !bytes.Equal(floatBytes(x.Data), floatBytes(p.Data)) {
				t.Errorf("%s differs from %s", name, p.Name)
			}
			continue
		}
		// Conv1D: weight[in][out] = Linear's W[out][in].
		out, in := p.Shape[0], p.Shape[1]
		if x.Shape[0] != in || x.Shape[1] != out {
			t.Fatalf("%s has shape %v, want [in=%d, out=%d]", name, x.Shape, in, out)
		}
		for o := range out {
			for i := range in {
				if x.Data[i*out+o] != p.Data[o*in+i] {
					t.Fatalf("%s[%d][%d] is not %s[%d][%d]", name, i, o, p.Name, o, i)
				}
			}
		}
	}
	if len(byName) != 0 {
		t.Errorf("unexpected tensors %v", byName)
	}
	var hc map[string]any
	raw, _ := os.ReadFile(filepath.Join(hf, "config.json"))
	if err := json.Unmarshal(raw, &hc); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "n_embd": float64(C),
		"n_head": 2.0, "n_layer": 1.0, "vocab_size": 256.0, "n_positions": 16.0, "tie_word_embeddings": true, "model_type": "gpt2"} {
		if hc[k] != want {
			t.Errorf("config.json %s = %v, want %v", k, hc[k], want)
		}
	}
	if _, err := os.Stat(filepath.Join(hf, "tokenizer.json")); err != nil {
		t.Error("no tokenizer.json for the byte tokenizer")
	}
}

func floatBytes(x []float32) []byte {
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		u := math.Float32bits(v)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return b
}

func TestGPT2ByteChars(t *testing.T) {
	c := gpt2ByteChars()
	seen := map[rune]bool{}
	for b, r := range c {
		if seen[r] {
			t.Fatalf("byte %d maps to %q twice", b, r)
		}
		seen[r] = true
	}
	// Known points of GPT-2's table: printable ASCII maps to itself, space
	// to Ġ (U+0120), newline to Ċ (U+010A), 0xAD to U+0143.
	for b, want := range map[int]rune{'A': 'A', ' ': 'Ġ', '\n': 'Ċ', 0xAD: 'Ń', 0: 'Ā'} {
		if c[b] != want {
			t.Errorf("byte %#x -> %q, want %q", b, c[b], want)
		}
	}
}

// TestHelperLogProbs is a helper for python/tests/test_hf_export.py: with
// GOREWEIGHT_LOGPROBS set to {"checkpoint": PATH, "tokens": [...], "out":
// FILE, "logprobs": BOOL} it writes to FILE, as JSON, "loss": the Go
// model's mean next-token loss of tokens (targets tokens[1:]), and with
// logprobs "logprobs": log p(v | tokens[:t+1]) for every position t and
// token v. They come from the public Evaluate: the loss of a sequence
// whose only target is v at t is -log p(v | tokens[:t+1]). Without the
// variable the test is skipped.
func TestHelperLogProbs(t *testing.T) {
	arg := os.Getenv("GOREWEIGHT_LOGPROBS")
	if arg == "" {
		t.Skip("GOREWEIGHT_LOGPROBS not set (helper for the Python tests)")
	}
	var a struct {
		Checkpoint string  `json:"checkpoint"`
		Tokens     []int32 `json:"tokens"`
		Out        string  `json:"out"`
		LogProbs   bool    `json:"logprobs"`
	}
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		t.Fatal(err)
	}
	sm, err := train.LoadModel(a.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]any{}
	n := len(a.Tokens) - 1
	tgts := append([]int32(nil), a.Tokens[1:]...)
	loss, err := sm.Model.Evaluate(a.Tokens[:n], tgts, 1, n)
	if err != nil {
		t.Fatal(err)
	}
	res["loss"] = loss[0]
	if a.LogProbs {
		if res["logprobs"], err = logProbs(sm.Model, a.Tokens); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(res)
	if err := atomicfile.WriteFile(a.Out, b); err != nil {
		t.Fatal(err)
	}
}

// logProbs returns log p(v | tokens[:t+1]) for every t and v, through
// Evaluate.
func logProbs(m *gpt.Model, tokens []int32) ([][]float64, error) {
	T, V := len(tokens), m.Config().Vocab
	B := T * V
	toks := make([]int32, 0, B*T)
	tgts := make([]int32, B*T)
	for i := range tgts {
		tgts[i] = -1
	}
	for t := range T {
		for v := range V {
			b := t*V + v
			toks = append(toks, tokens...)
			tgts[b*T+t] = int32(v)
		}
	}
	losses, err := m.Evaluate(toks, tgts, B, T)
	if err != nil {
		return nil, err
	}
	lp := make([][]float64, T)
	for t := range T {
		lp[t] = make([]float64, V)
		for v := range V {
			lp[t][v] = -float64(losses[t*V+v])
		}
	}
	return lp, nil
}

// TestLogProbsNormalised checks the helper: each row of probabilities sums
// to 1.
func TestLogProbsNormalised(t *testing.T) {
	m, err := gpt.New(gpt.Config{Vocab: 11, Seq: 6, Layers: 1, Heads: 2, Width: 8}, 5)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := logProbs(m, []int32{3, 1, 4, 1, 5})
	if err != nil {
		t.Fatal(err)
	}
	for t0, row := range lp {
		s := 0.0
		for _, v := range row {
			s += math.Exp(v)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Errorf("position %d: probabilities sum to %v", t0, s)
		}
	}
}

// TestSeedRunDir: a run of several seeds needs --seed (named in the error
// with the seeds there), one seed or a single-seed run needs none.
func TestSeedRunDir(t *testing.T) {
	single, multi, one := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{filepath.Join(multi, "seed-1"), filepath.Join(multi, "seed-2"), filepath.Join(one, "seed-7")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		dir, seed, want, errHas string
	}{
		{single, "", single, ""},
		{single, "3", "", "run of one seed"},
		{one, "", filepath.Join(one, "seed-7"), ""},
		{multi, "", "", "choose one with --seed"},
		{multi, "2", filepath.Join(multi, "seed-2"), ""},
		{multi, "5", "", "seeds: 1, 2"},
	}
	for _, c := range cases {
		got, err := seedRunDir(c.dir, c.seed)
		if c.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("seedRunDir(%s, %q) = %q, %v; want an error with %q", c.dir, c.seed, got, err, c.errHas)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("seedRunDir(%s, %q) = %q, %v; want %q", c.dir, c.seed, got, err, c.want)
		}
	}
}
