package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSeedAndPresetFlags checks how --seed, --seeds and --preset combine:
// the default trains seeds 1,2,3; --seed N alone trains one seed; a
// preset goes first and the other flags (and a config file) override it.
func TestSeedAndPresetFlags(t *testing.T) {
	c, _, err := parse(nil, io.Discard)
	if err != nil || c.Seeds.String() != "1,2,3" || len(c.Strategies()) < 3 {
		t.Fatalf("defaults: seeds %q, strategies %v, %v", c.Seeds, c.Strategies(), err)
	}
	if c, _, err = parse([]string{"--seed", "5"}, io.Discard); err != nil || len(c.Seeds) != 0 || c.RunSeeds()[0] != 5 {
		t.Errorf("--seed 5: seeds %q, run seeds %v, %v", c.Seeds, c.RunSeeds(), err)
	}
	if c, _, err = parse([]string{"--seeds", "4,9", "--seed", "5"}, io.Discard); err != nil || c.Seeds.String() != "4,9" {
		t.Errorf("--seeds 4,9 --seed 5: seeds %q, %v", c.Seeds, err)
	}
	c, keys, err := parse([]string{"--steps", "1500", "--preset", "paper-quadratic"}, io.Discard)
	if err != nil || c.Compare.String() != "uniform,quadratic" || c.Steps != 1500 || c.WarmupR != 1000 || c.REnd != 1 || c.Validate() != nil {
		t.Errorf("--preset paper-quadratic --steps 1500: %+v (keys %v), %v", c, keys, err)
	}
	file := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(file, []byte(`{"preset": "paper-extremes", "r_end": 0.8}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, _, err = parse([]string{"--config", file, "--cap", "2"}, io.Discard); err != nil || c.Compare.String() != "uniform,extremes" || c.REnd != 0.8 || c.Cap != 2 {
		t.Errorf("preset in a file, overridden: %+v, %v", c, err)
	}
	if _, _, err = parse([]string{"--preset", "nope"}, io.Discard); err == nil {
		t.Error("an unknown preset must be an error")
	}
	if _, _, err = parse([]string{"--seeds", "1,a"}, io.Discard); err == nil {
		t.Error("a bad seed must be an error")
	}
}

// TestSeedsResumeFromTheCommandLine checks --resume of a multi-seed run:
// the finished run resumes, more seeds after the run's own are trained, and
// a list that drops or reorders the run's seeds is refused because the
// result would no longer be that run's.
func TestSeedsResumeFromTheCommandLine(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	args := append(tinyArgs(t, out), "--compare", "uniform,linupper", "--seeds", "1,2")
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "95% CI") {
		t.Errorf("stdout lacks the interval:\n%s", stdout.String())
	}
	for _, f := range []string{"seed-1/uniform/checkpoint.zip", "seed-2/linupper/samples.arrow", "seed-2/metrics.jsonl", "summary.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	stderr.Reset()
	if code := run([]string{"--resume", out, "--quiet"}, &stdout, &stderr); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"--resume", out, "--seeds", "2,1"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "seeds may only grow") {
		t.Fatalf("resume with reordered seeds: exit %d\n%s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"--resume", out, "--seeds", "1,2,3", "--quiet"}, &stdout, &stderr); code != 0 {
		t.Fatalf("resume with one more seed: exit %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "seed-3", "linupper", "checkpoint.zip")); err != nil {
		t.Errorf("seed 3 was not trained: %v", err)
	}
}
