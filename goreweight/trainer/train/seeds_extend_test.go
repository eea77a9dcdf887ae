package train

import (
	"context"
	"strings"
	"testing"
)

// TestResumeWithMoreSeeds adds a seed to a finished two-seed comparison:
// the extended run must equal a run started with three seeds (every run,
// aggregate and interval), record the seeds so that a plain resume keeps
// them, and refuse seed lists that drop or reorder the run's seeds.
func TestResumeWithMoreSeeds(t *testing.T) {
	base := tinyConfig(t)
	base.Steps, base.EvalEvery, base.CkptEvery, base.ValMax = 4, 2, 2, 8
	base.Compare = StrategyList{"uniform", "linupper"}

	fresh := base
	fresh.Seeds = SeedList{1, 2, 3}
	fresh.Out = t.TempDir() + "/fresh"
	want, err := Run(context.Background(), fresh, Options{})
	if err != nil {
		t.Fatal(err)
	}

	two := base
	two.Seeds = SeedList{1, 2}
	two.Out = t.TempDir() + "/grown"
	if _, err := Run(context.Background(), two, Options{}); err != nil {
		t.Fatal(err)
	}
	grow := DefaultConfig()
	grow.Resume, grow.Seeds = two.Out, SeedList{1, 2, 3}
	got, err := Run(context.Background(), grow, Options{})
	if err != nil {
		t.Fatalf("resume with seeds 1,2,3: %v", err)
	}
	if len(got.Runs) != 6 || got.Strategies["linupper"].NSeeds != 3 {
		t.Fatalf("extended run: %d runs, %d seeds", len(got.Runs), got.Strategies["linupper"].NSeeds)
	}
	if g, w := comparable(t, got), comparable(t, want); g != w {
		t.Errorf("extended run differs from a fresh three-seed run:\n got %s\nwant %s", g, w)
	}
	if s := savedSeeds(two.Out); len(s) != 3 {
		t.Errorf("config.json after the extension holds seeds %v, want 1,2,3", s)
	}
	// A plain resume (no seeds given, or a shorter default list) keeps all three.
	plain := Config{Resume: two.Out}
	again, err := Run(context.Background(), plain, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := comparable(t, again), comparable(t, want); g != w {
		t.Errorf("plain resume after the extension differs")
	}

	for _, bad := range []SeedList{{1, 2}, {2, 1, 3, 4}, {1, 3, 2, 4}} {
		c := DefaultConfig()
		c.Resume, c.Seeds = two.Out, bad
		if _, err := ResumeConfig(two.Out, c, []string{"seeds"}); err == nil || !strings.Contains(err.Error(), "seeds may only grow") {
			t.Errorf("resume with seeds %v: err %v, want a refusal naming seeds", bad, err)
		}
	}
}
