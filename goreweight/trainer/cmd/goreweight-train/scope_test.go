package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccumScopeGranularityReference trains a small reference model, then a
// run with --accum, --scope global, --granularity token and --reference
// pointing at it, and checks that summary.json and summary.md record them;
// and that a reference of another context, an ambiguous run directory, a
// missing directory and bad values are refused with errors naming them.
func TestAccumScopeGranularityReference(t *testing.T) {
	dir := t.TempDir()
	data := corpus(t)
	args := func(out string, extra ...string) []string {
		a := []string{"--data", data, "--steps", "4", "--batch", "2", "--seq", "16", "--layers", "1",
			"--heads", "2", "--width", "16", "--eval-every", "2", "--ckpt-every", "2", "--warmup-r", "1",
			"--threads", "1", "--seed", "1", "--quiet", "--out", out}
		return append(a, extra...)
	}
	exec := func(a []string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(a, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	refRun := filepath.Join(dir, "ref")
	if code, out := exec(args(refRun, "--strategy", "uniform", "--width", "24", "--layers", "2", "--seq", "32")); code != 0 {
		t.Fatalf("reference run: exit %d\n%s", code, out)
	}
	out := filepath.Join(dir, "run")
	code, text := exec(args(out, "--strategy", "linupper", "--accum", "3", "--scope", "global", "--granularity", "token", "--reference", refRun))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, text)
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Config struct {
			Accum       int    `json:"accum"`
			Scope       string `json:"scope"`
			Granularity string `json:"granularity"`
			Reference   string `json:"reference"`
		} `json:"config"`
		Reference *struct {
			Path   string `json:"path"`
			Width  int    `json:"width"`
			Seq    int    `json:"seq"`
			SHA256 string `json:"sha256"`
		} `json:"reference"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	c := sum.Config
	if c.Accum != 3 || c.Scope != "global" || c.Granularity != "token" || c.Reference != refRun {
		t.Errorf("summary.json config: %+v", c)
	}
	if r := sum.Reference; r == nil || r.Path != filepath.Join(refRun, "uniform", "checkpoint.zip") || r.Width != 24 || r.Seq != 32 || len(r.SHA256) != 64 {
		t.Errorf("summary.json reference: %+v", r)
	}
	md, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	for _, want := range []string{"3 micro-batches of 2 (global scope, token level, excess loss over a reference model)",
		"one per target token (its cross-entropy), over all 3·2 sequences of the optimiser step (global scope)", "scored by the excess loss over the reference"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
	// 4 steps of 3 micro-batches of 2 sequences of 16 tokens.
	var last struct {
		Tokens int64 `json:"tokens"`
	}
	mb, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	lines := strings.Split(strings.TrimSpace(string(mb)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Tokens != 4*3*2*16 {
		t.Errorf("last record: tokens %d (%v), want %d", last.Tokens, err, 4*3*2*16)
	}

	// Deferred scope from the command line: every training record has the
	// range it normalised with and the clipped fraction.
	dout := filepath.Join(dir, "deferred")
	if code, text := exec(args(dout, "--strategy", "linupper", "--accum", "3", "--scope", "deferred", "--granularity", "token", "--reference", refRun)); code != 0 {
		t.Fatalf("deferred scope: exit %d\n%s", code, text)
	}
	db, _ := os.ReadFile(filepath.Join(dout, "metrics.jsonl"))
	for i, line := range strings.Split(strings.TrimSpace(string(db)), "\n")[1:] {
		var r struct {
			RangeLo     *float64 `json:"range_lo"`
			RangeHi     *float64 `json:"range_hi"`
			ClippedFrac *float64 `json:"clipped_frac"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.RangeLo == nil || r.RangeHi == nil || r.ClippedFrac == nil || *r.RangeLo > *r.RangeHi {
			t.Errorf("deferred scope, record %d: %s (%v)", i+1, line, err)
		}
	}

	// Refusals, each naming what is wrong.
	twoRun := filepath.Join(dir, "two")
	if code, text := exec(args(twoRun, "--compare", "uniform,linupper")); code != 0 {
		t.Fatalf("two-strategy run: exit %d\n%s", code, text)
	}
	short := filepath.Join(dir, "short")
	if code, text := exec(args(short, "--strategy", "uniform", "--seq", "8")); code != 0 {
		t.Fatalf("short-context run: exit %d\n%s", code, text)
	}
	missing := filepath.Join(dir, "no-such-run")
	for _, tc := range []struct {
		extra []string
		code  int
		want  string
	}{
		{[]string{"--reference", missing}, 2, missing},
		{[]string{"--reference", short}, 1, "its context is 8 tokens, shorter than this run's seq 16"},
		{[]string{"--reference", twoRun}, 1, "holds 2 checkpoints (linupper, uniform): name one of them"},
		{[]string{"--reference", filepath.Join(dir, "run", "summary.md")}, 1, "not a checkpoint"},
		{[]string{"--accum", "0"}, 2, "accum = 0"},
		{[]string{"--accum", "1.5"}, 2, "accum"},
		{[]string{"--scope", "all"}, 2, `scope = "all"`},
		{[]string{"--granularity", "char"}, 2, `granularity = "char"`},
		{[]string{"--scope", "deferred", "--strategy", "topk", "--q", "0.5"}, 2, `strategy = "topk": not available with scope = "deferred"`},
		{[]string{"--scope", "deferred", "--cap", "2"}, 2, `cap = 2: not available with scope = "deferred"`},
	} {
		o := filepath.Join(dir, "bad")
		os.RemoveAll(o)
		code, text := exec(append(args(o, "--strategy", "linupper"), tc.extra...))
		if code != tc.code || !strings.Contains(text, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.extra, code, tc.code, tc.want, text)
		}
	}
}
