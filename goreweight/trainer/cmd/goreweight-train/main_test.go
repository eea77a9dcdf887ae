package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpus writes a tiny two-domain text corpus and returns its directory.
func corpus(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "corpus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var a, b strings.Builder
	for i := 0; a.Len() < 8<<10; i++ {
		fmt.Fprintf(&a, "line %d of the first domain says hello %d times.\n", i, i%7)
		fmt.Fprintf(&b, "%d * %d = %d\n", i%13, i%11, (i%13)*(i%11))
	}
	for name, s := range map[string]string{"words.txt": a.String(), "numbers.txt": b.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func tinyArgs(t *testing.T, out string) []string {
	return []string{"--data", corpus(t), "--steps", "6", "--batch", "4", "--seq", "16", "--layers", "1",
		"--heads", "2", "--width", "16", "--eval-every", "3", "--ckpt-every", "3", "--warmup-r", "1",
		"--threads", "2", "--seed", "1", "--out", out}
}

func TestCompareWritesSummaryAndPlots(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	var stdout, stderr bytes.Buffer
	args := append(tinyArgs(t, out), "--compare", "uniform,linupper")
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	so := stdout.String()
	for _, want := range []string{"| uniform | ", "| linupper | ", "Files written:", filepath.Join(out, "summary.md")} {
		if !strings.Contains(so, want) {
			t.Errorf("stdout lacks %q:\n%s", want, so)
		}
	}
	// Progress goes to stderr as plain lines (not a terminal).
	if se := stderr.String(); !strings.Contains(se, "[linupper] step 6/6") || strings.Contains(se, "\r") {
		t.Errorf("stderr progress:\n%s", se)
	}
	for _, f := range []string{"summary.md", "summary.json", "val_loss.png", "temperature.png", "weight_vs_loss.png",
		"metrics.jsonl", "config.json", "uniform/samples.arrow", "linupper/checkpoint.zip"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}

	// Resume of the finished run works; changing a key that alters the
	// result is refused.
	stderr.Reset()
	if code := run([]string{"--resume", out, "--quiet"}, &stdout, &stderr); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"--resume", out, "--lr", "0.1"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "lr = 0.1 differs") {
		t.Fatalf("resume with another lr: exit %d\n%s", code, stderr.String())
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "bad.json")
	os.WriteFile(cfgFile, []byte(`{"steps": 5, "lr_maxx": 1}`), 0o644)
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"steps": 5, "r-start": 30, "compare": ["uniform", "extremes"]}`), 0o644)
	notJSON := filepath.Join(dir, "nojson.json")
	os.WriteFile(notJSON, []byte(`steps = 5`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--stepz", "5"}, "flag provided but not defined: -stepz"},
		{[]string{"--steps", "abc"}, `invalid value "abc" for flag -steps`},
		{[]string{"--steps", "0"}, "steps = 0: must be at least 1"},
		{[]string{"--width", "30"}, "width = 30: must be a multiple of heads (4)"},
		{[]string{"--tokenizer", "bpe"}, `tokenizer = "bpe"`},
		{[]string{"--strategy", "linuper"}, `unknown strategy "linuper"`},
		{[]string{"--strategy", "uniform", "--compare", "uniform,linupper"}, "not both"},
		{[]string{"--schedule", "zigzag"}, `unknown schedule kind "zigzag"`},
		{[]string{"--noise", "1.5"}, "noise = 1.5: must be in [0, 1)"},
		{[]string{"--cap", "0.5"}, "cap must be"},
		{[]string{"--config", cfgFile}, `unknown config key "lr_maxx"`},
		{[]string{"--config", notJSON}, "not a JSON object"},
		{[]string{"--config", filepath.Join(dir, "missing.json")}, "no such file"},
		{[]string{"--resume", dir}, "config.json"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant exit 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}

	// A config file, then flags on top.
	cfg, keys, err := parse([]string{"--config", good, "--steps", "9"}, &bytes.Buffer{})
	if err != nil || cfg.Steps != 9 || cfg.RStart != 30 || cfg.Compare.String() != "uniform,extremes" || strings.Join(keys, ",") != "compare,r_start,steps" {
		t.Fatalf("parse: %+v %v %v", cfg, keys, err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "--r-start") && !strings.Contains(stderr.String(), "-r-start") {
		t.Fatalf("--help: exit %d\n%s", code, stderr.String())
	}
}
