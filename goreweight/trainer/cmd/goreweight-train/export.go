package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goreweight/goreweight/goreweight/trainer/data"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/internal/atomicfile"
	"github.com/goreweight/goreweight/goreweight/trainer/nn"
	"github.com/goreweight/goreweight/goreweight/trainer/tensorfile"
	"github.com/goreweight/goreweight/goreweight/trainer/train"
)

const exportUsage = `Usage: goreweight-train export RUN_DIR --hf OUT [--strategy S] [--seed N]

Writes the model of a strategy's checkpoint in RUN_DIR as a Hugging Face
transformers GPT-2 checkpoint in OUT (config.json, model.safetensors, and
for the byte tokenizer tokenizer.json + tokenizer_config.json), loadable
with GPT2LMHeadModel.from_pretrained(OUT). RUN_DIR may also be a
strategy's directory (RUN_DIR/STRATEGY). A run of several seeds (--seeds)
holds one model per seed and strategy: choose the seed with --seed (default:
the run's only one). See docs/trainer.md.

Flags:
`

// runExport is the export subcommand.
func runExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("goreweight-train export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	hf := fs.String("hf", "", "output `directory` of the Hugging Face checkpoint (required)")
	strategy := fs.String("strategy", "", "strategy whose model to export (default: the run's only one)")
	seed := fs.String("seed", "", "seed whose model to export, in a run of several seeds (default: the run's only one)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), exportUsage)
		fs.PrintDefaults()
	}
	// Flags may come before or after RUN_DIR.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stderr)
				fs.Usage()
				return 0
			}
			fmt.Fprintf(stderr, "goreweight-train export: %v (see --help)\n", err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 || *hf == "" {
		fmt.Fprintf(stderr, "goreweight-train export: want one RUN_DIR and --hf OUT (see --help)\n")
		return 2
	}
	dir, err := seedRunDir(pos[0], *seed)
	if err != nil {
		fmt.Fprintf(stderr, "goreweight-train export: %v\n", err)
		return 1
	}
	path, err := findCheckpoint(dir, *strategy)
	if err != nil {
		fmt.Fprintf(stderr, "goreweight-train export: %v\n", err)
		return 1
	}
	sm, err := train.LoadModel(path)
	if err != nil {
		fmt.Fprintf(stderr, "goreweight-train export: %v\n", err)
		return 1
	}
	files, err := exportHF(*hf, sm)
	if err != nil {
		fmt.Fprintf(stderr, "goreweight-train export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "exported %s (strategy %s, step %d, %v) to %s:\n", path, sm.Strategy, sm.Step, sm.Model.Config(), *hf)
	for _, f := range files {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	return 0
}

// seedRunDir returns the directory of one seed's models in the run
// directory dir: dir/seed-<seed> for a run of several seeds (seed empty: the
// only one), dir itself for a single-seed run.
func seedRunDir(dir, seed string) (string, error) {
	found, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
	var seeds []string
	for _, f := range found {
		if st, err := os.Stat(f); err == nil && st.IsDir() {
			seeds = append(seeds, strings.TrimPrefix(filepath.Base(f), "seed-"))
		}
	}
	switch {
	case seed != "":
		d := filepath.Join(dir, "seed-"+seed)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d, nil
		}
		if len(seeds) == 0 {
			return "", fmt.Errorf("--seed %s: %s is a run of one seed (no seed-<n> directories)", seed, dir)
		}
		return "", fmt.Errorf("--seed %s: %s has no seed-%s directory (seeds: %s)", seed, dir, seed, strings.Join(seeds, ", "))
	case len(seeds) == 1:
		return filepath.Join(dir, "seed-"+seeds[0]), nil
	case len(seeds) > 1:
		return "", fmt.Errorf("%s holds the models of several seeds (%s): choose one with --seed", dir, strings.Join(seeds, ", "))
	}
	return dir, nil
}

// findCheckpoint returns the checkpoint of strategy in dir (a run directory
// or a strategy's directory); an empty strategy means the only one.
func findCheckpoint(dir, strategy string) (string, error) {
	if p := filepath.Join(dir, "checkpoint.zip"); strategy == "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if strategy != "" {
		p := train.CheckpointPath(dir, strategy)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("no checkpoint of strategy %q in %s: %w", strategy, dir, err)
		}
		return p, nil
	}
	found, _ := filepath.Glob(train.CheckpointPath(dir, "*"))
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s holds no checkpoint (want a run directory of goreweight-train)", dir)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, f := range found {
		names = append(names, filepath.Base(filepath.Dir(f)))
	}
	return "", fmt.Errorf("%s holds the models of several strategies (%s): choose one with --strategy", dir, strings.Join(names, ", "))
}

// hfConfig is the config.json of a transformers GPT-2 model matching
// package gpt's architecture exactly: GELU with the tanh approximation
// ("gelu_new"), LayerNorm eps 1e-5, attention scaled by 1/sqrt(head size),
// biases everywhere but the head, the head tied to the token embedding, no
// dropout.
type hfConfig struct {
	Architectures          []string `json:"architectures"`
	ModelType              string   `json:"model_type"`
	VocabSize              int      `json:"vocab_size"`
	NPositions             int      `json:"n_positions"`
	NCtx                   int      `json:"n_ctx"`
	NEmbd                  int      `json:"n_embd"`
	NLayer                 int      `json:"n_layer"`
	NHead                  int      `json:"n_head"`
	NInner                 *int     `json:"n_inner"`
	Activation             string   `json:"activation_function"`
	LayerNormEpsilon       float64  `json:"layer_norm_epsilon"`
	ResidPdrop             float64  `json:"resid_pdrop"`
	EmbdPdrop              float64  `json:"embd_pdrop"`
	AttnPdrop              float64  `json:"attn_pdrop"`
	InitializerRange       float64  `json:"initializer_range"`
	ScaleAttnWeights       bool     `json:"scale_attn_weights"`
	ScaleAttnByLayerIdx    bool     `json:"scale_attn_by_inverse_layer_idx"`
	ReorderAndUpcastAttn   bool     `json:"reorder_and_upcast_attn"`
	TieWordEmbeddings      bool     `json:"tie_word_embeddings"`
	BOSTokenID             *int     `json:"bos_token_id"`
	EOSTokenID             *int     `json:"eos_token_id"`
	TorchDtype             string   `json:"torch_dtype"`
	UseCache               bool     `json:"use_cache"`
	GoreweightStrategy     string   `json:"goreweight_strategy"`
	GoreweightStep         int      `json:"goreweight_step"`
	GoreweightTokenizer    string   `json:"goreweight_tokenizer"`
	GoreweightTokenizerDoc string   `json:"goreweight_tokenizer_note"`
}

// exportHF writes sm's model to dir as a transformers GPT-2 checkpoint and
// returns the files written. Every file is written atomically.
func exportHF(dir string, sm *train.SavedModel) ([]string, error) {
	cfg := sm.Model.Config()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	hc := hfConfig{
		Architectures: []string{"GPT2LMHeadModel"}, ModelType: "gpt2",
		VocabSize: cfg.Vocab, NPositions: cfg.Seq, NCtx: cfg.Seq, NEmbd: cfg.Width, NLayer: cfg.Layers, NHead: cfg.Heads,
		Activation: "gelu_new", LayerNormEpsilon: nn.LayerNormEps, InitializerRange: 0.02,
		ScaleAttnWeights: true, TieWordEmbeddings: true, TorchDtype: "float32", UseCache: true,
		GoreweightStrategy: sm.Strategy, GoreweightStep: sm.Step, GoreweightTokenizer: sm.Config.Tokenizer,
	}
	var files []string
	write := func(name string, fn func(io.Writer) error) error {
		files = append(files, name)
		return atomicfile.Write(filepath.Join(dir, name), fn)
	}
	writeJSON := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		return write(name, func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err })
	}
	byteTok := sm.Config.Tokenizer == data.TokenizerByte
	switch sm.Config.Tokenizer {
	case data.TokenizerGPT2, "r50k_base":
		eot := int(data.GPT2EOT)
		hc.BOSTokenID, hc.EOSTokenID = &eot, &eot
		hc.GoreweightTokenizerDoc = `GPT-2 BPE (r50k_base): use AutoTokenizer.from_pretrained("gpt2")`
	case data.TokenizerByte:
		hc.GoreweightTokenizerDoc = "bytes: token id = byte value of the UTF-8 text (tokenizer.json here)"
	default:
		return nil, fmt.Errorf("export: unknown tokenizer %q", sm.Config.Tokenizer)
	}
	if err := write("model.safetensors", func(w io.Writer) error {
		return tensorfile.Write(w, hfTensors(sm.Model), map[string]string{"format": "pt"})
	}); err != nil {
		return nil, err
	}
	if err := writeJSON("config.json", hc); err != nil {
		return nil, err
	}
	if byteTok {
		if err := writeJSON("tokenizer.json", byteTokenizerJSON()); err != nil {
			return nil, err
		}
		if err := writeJSON("tokenizer_config.json", map[string]any{
			"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": cfg.Seq,
			"clean_up_tokenization_spaces": false,
		}); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// hfTensors maps the model's parameters to transformers' GPT-2 names and
// layouts: nn.Linear's [out, in] weights become Conv1D's [in, out]; the
// tied head (lm_head.weight) is not stored, as save_pretrained does.
func hfTensors(m *gpt.Model) []tensorfile.Tensor {
	var ts []tensorfile.Tensor
	for _, p := range m.Params() {
		t := tensorfile.Tensor{Name: "transformer." + p.Name, Shape: p.Shape, Data: p.Data}
		switch p.Name {
		case "wte", "wpe":
			t.Name += ".weight"
		}
		if len(p.Shape) == 2 && strings.HasPrefix(p.Name, "h.") {
			t.Shape = []int{p.Shape[1], p.Shape[0]}
			t.Data = transpose(p.Data, p.Shape[0], p.Shape[1])
		}
		ts = append(ts, t)
	}
	return ts
}

// transpose returns the transpose of the rows×cols row-major matrix x.
func transpose(x []float32, rows, cols int) []float32 {
	y := make([]float32, len(x))
	for i := range rows {
		for j := range cols {
			y[j*rows+i] = x[i*cols+j]
		}
	}
	return y
}

// gpt2ByteChars is GPT-2's bytes_to_unicode table: the printable character
// its byte-level BPE shows for each byte.
func gpt2ByteChars() [256]rune {
	var out [256]rune
	var direct []int
	for b := '!'; b <= '~'; b++ {
		direct = append(direct, int(b))
	}
	for b := 0xA1; b <= 0xAC; b++ {
		direct = append(direct, b)
	}
	for b := 0xAE; b <= 0xFF; b++ {
		direct = append(direct, b)
	}
	n := 0
	for b := range 256 {
		if slices.Contains(direct, b) {
			out[b] = rune(b)
		} else {
			out[b] = rune(256 + n)
			n++
		}
	}
	return out
}

// byteTokenizerJSON is a tokenizers (Hugging Face) tokenizer.json whose
// token id is the byte value: a byte-level BPE with the 256 byte symbols
// as its vocabulary, in byte order, and no merges.
func byteTokenizerJSON() map[string]any {
	chars := gpt2ByteChars()
	vocab := make(map[string]int, 256)
	for b, r := range chars {
		vocab[string(r)] = b
	}
	byteLevel := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
	return map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": []any{},
		"normalizer": nil, "pre_tokenizer": byteLevel, "post_processor": nil, "decoder": byteLevel,
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": []any{},
		},
	}
}
