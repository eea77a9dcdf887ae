//go:build unix

package train

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goreweight/goreweight/goreweight"
)

// crashChildEnv carries the child's arguments (crashArgs as JSON).
const crashChildEnv = "GOREWEIGHT_CRASH_CHILD"

// startCrashChild starts TestCrashChild in a child process with arguments
// a and returns it, a scanner over its standard output and what it writes
// to its standard error.
func startCrashChild(t *testing.T, a crashArgs) (*exec.Cmd, *bufio.Scanner, *strings.Builder) {
	t.Helper()
	arg, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(arg))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(stdout), stderr
}

type crashArgs struct {
	Data   string `json:"data"`
	Out    string `json:"out"`
	Resume bool   `json:"resume"`
	// PauseInCheckpoint makes every checkpoint write print "checkpoint" and
	// pause halfway, so that the parent can kill it there.
	PauseInCheckpoint bool `json:"pause_in_checkpoint"`
	// Accum > 1 trains with gradient accumulation (crashAccumConfig) in
	// Scope.
	Accum int    `json:"accum"`
	Scope string `json:"scope"`
	// PauseAtMicro ("strategy step micro") makes the child print
	// "micro strategy step micro" after every micro-batch and pause after
	// that one, so that the parent can kill it in the middle of an
	// accumulation.
	PauseAtMicro string `json:"pause_at_micro"`
}

// crashAccumConfig is crashConfig with 3 micro-batches of 4 sequences per
// optimiser step, weighted in scope (global or deferred) at token level.
func crashAccumConfig(data, out, scope string) Config {
	c := crashConfig(data, out)
	c.Accum, c.Batch, c.Scope, c.Granularity = 3, 4, scope, GranularityToken
	return c
}

// crashConfig is the run of the crash test: two strategies, a checkpoint
// every 3 steps, evaluations (which flush the logs) every 4.
func crashConfig(data, out string) Config {
	c := DefaultConfig()
	c.Data, c.Out = data, out
	c.Compare, c.Seeds = StrategyList{goreweight.Uniform, goreweight.LinUpper}, nil // one seed, the layout without seed-<n>/
	c.Steps, c.Batch, c.Seq = 24, 8, 16
	c.Layers, c.Heads, c.Width = 1, 2, 16
	c.LR, c.LRMin, c.LRWarmup, c.WarmupR, c.REnd = 1e-2, 1e-3, 2, 2, 0.5
	c.EvalEvery, c.CkptEvery, c.LogEvery, c.ValMax = 4, 3, 1, 16
	c.Noise = 0.1
	c.Threads, c.Quiet = 1, true
	return c
}

// TestCrashChild is the training process of TestKillAndResume; it runs
// only when that test starts it.
func TestCrashChild(t *testing.T) {
	arg := os.Getenv(crashChildEnv)
	if arg == "" {
		t.Skip("helper process of TestKillAndResume")
	}
	var a crashArgs
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		t.Fatal(err)
	}
	c := crashConfig(a.Data, a.Out)
	if a.Accum > 1 {
		c = crashAccumConfig(a.Data, a.Out, a.Scope)
	}
	if a.PauseAtMicro != "" {
		microBatchHook = func(s string, step, micro int) {
			line := fmt.Sprintf("%s %d %d", s, step, micro)
			fmt.Fprintf(os.Stdout, "micro %s\n", line)
			if line == a.PauseAtMicro {
				time.Sleep(2 * time.Second)
			}
		}
	}
	if a.Resume {
		c = Config{Resume: a.Out, Threads: 1, Quiet: true}
	}
	if a.PauseInCheckpoint {
		checkpointWriteHook = func() {
			fmt.Fprintln(os.Stdout, "checkpoint")
			time.Sleep(time.Second)
		}
	}
	// One line per step, read by the parent to time its kill.
	if _, err := Run(context.Background(), c, Options{OnStep: func(s string, step int) {
		fmt.Fprintf(os.Stdout, "step %s %d\n", s, step)
	}}); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(os.Stdout, "finished")
}

// TestKillAndResume kills a training process with SIGKILL at random moments
// (seeded), several times in a row, including during checkpoint and log
// writes, resumes it each time, and checks that the final parameters,
// AdamW state, metrics and sample logs equal an uninterrupted run's bit for
// bit, no metrics record lost or doubled.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts training processes")
	}
	dir := t.TempDir()
	data := writeCorpus(t, dir)
	ref := crashConfig(data, filepath.Join(dir, "ref"))
	if _, err := Run(context.Background(), ref, Options{}); err != nil {
		t.Fatal(err)
	}
	want := readRun(t, ref)
	if n := len(want.records); n != 2*(ref.Steps+1) {
		t.Fatalf("reference run has %d records, want %d", n, 2*(ref.Steps+1))
	}

	out := filepath.Join(dir, "killed")
	rng := rand.New(rand.NewPCG(13, 2026))
	const kills = 8
	killed, midWrite := 0, map[string]int{}
	for session := 0; ; session++ {
		resume := session > 0
		if _, err := os.Stat(configPath(out)); resume && err != nil {
			resume = false // killed before the run directory was made: start again
			os.RemoveAll(out)
		}
		// Every third kill is aimed at a checkpoint write, the others at
		// random moments.
		inCkpt := killed%3 == 1
		cmd, sc, stderr := startCrashChild(t, crashArgs{Data: data, Out: out, Resume: resume, PauseInCheckpoint: inCkpt})
		// Kill after a random number of steps of this session and a random
		// delay that often lands in the checkpoint write after a step.
		wantKill := killed < kills
		steps := 1 + rng.IntN(9)
		delay := time.Duration(rng.IntN(4000)) * time.Microsecond
		seen, finished := 0, false
		for sc.Scan() {
			line := sc.Text()
			if line == "finished" {
				finished = true
			}
			if strings.HasPrefix(line, "step ") {
				seen++
			}
			if wantKill && (!inCkpt && seen == steps || inCkpt && line == "checkpoint") {
				time.Sleep(delay)
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		go func() { // drain what is left so the child never blocks
			for sc.Scan() {
			}
		}()
		err := cmd.Wait()
		if wantKill && !finished {
			killed++
			// A kill during an atomic write leaves its temporary file; the
			// next session removes it.
			tmps, _ := filepath.Glob(filepath.Join(out, "*", ".*.tmp-*"))
			top, _ := filepath.Glob(filepath.Join(out, ".*.tmp-*"))
			for _, p := range append(tmps, top...) {
				midWrite[strings.SplitN(filepath.Base(p), ".tmp-", 2)[0][1:]]++
			}
			continue
		}
		if err != nil {
			t.Fatalf("session %d: %v\n%s", session, err, stderr.String())
		}
		if !finished {
			t.Fatalf("session %d ended without finishing:\n%s", session, stderr.String())
		}
		break
	}
	t.Logf("%d kills; kills during the atomic write of a file: %v", killed, midWrite)
	if killed < kills {
		t.Fatalf("only %d kills before the run finished", killed)
	}
	if midWrite[checkpointName] < kills/3 {
		t.Errorf("%d kills during a checkpoint write, want at least %d", midWrite[checkpointName], kills/3)
	}
	got := crashConfig(data, out)
	compareRuns(t, want, readRun(t, got))
	left, _ := filepath.Glob(filepath.Join(out, "*", ".*.tmp-*"))
	top, _ := filepath.Glob(filepath.Join(out, ".*.tmp-*"))
	if left = append(left, top...); len(left) > 0 {
		t.Errorf("temporary files of killed writes left behind: %v", left)
	}
}

// TestKillMidAccumulation kills a training process with gradient
// accumulation (3 micro-batches per optimiser step, token level; global
// and deferred scope) in the middle of an accumulation, several times, in
// both strategies, also before the first checkpoint; each time the
// checkpoint on disk is at an optimiser-step boundary before the killed
// step, the run resumes from it, and the final parameters, AdamW state,
// metrics and sample logs equal an uninterrupted run's bit for bit (in
// deferred scope this needs the running loss range from the checkpoint).
func TestKillMidAccumulation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts training processes")
	}
	for _, scope := range []string{ScopeGlobal, ScopeDeferred} {
		t.Run(scope, func(t *testing.T) { testKillMidAccumulation(t, scope) })
	}
}

func testKillMidAccumulation(t *testing.T, scope string) {
	dir := t.TempDir()
	data := writeCorpus(t, dir)
	ref := crashAccumConfig(data, filepath.Join(dir, "ref"), scope)
	if _, err := Run(context.Background(), ref, Options{}); err != nil {
		t.Fatal(err)
	}
	want := readRun(t, ref)
	out := filepath.Join(dir, "killed")
	// (strategy, optimiser step, micro-batches done): checkpoints are every
	// 3 steps, so each kill loses the steps since the last one and the
	// micro-batches of the killed step.
	targets := []struct {
		strategy    string
		step, micro int
	}{
		{goreweight.Uniform, 2, 1}, // before the first checkpoint
		{goreweight.Uniform, 8, 2},
		{goreweight.LinUpper, 1, 2}, // the second strategy has no checkpoint yet
		{goreweight.LinUpper, 10, 1},
		{goreweight.LinUpper, 23, 2},
	}
	for session := 0; session <= len(targets); session++ {
		pause := ""
		if session < len(targets) {
			tg := targets[session]
			pause = fmt.Sprintf("%s %d %d", tg.strategy, tg.step, tg.micro)
		}
		_, err := os.Stat(configPath(out))
		cmd, sc, stderr := startCrashChild(t, crashArgs{Data: data, Out: out, Resume: err == nil, Accum: 3, Scope: scope, PauseAtMicro: pause})
		killed, finished := false, false
		for sc.Scan() {
			line := sc.Text()
			if line == "finished" {
				finished = true
			}
			if pause != "" && line == "micro "+pause {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
				break
			}
		}
		go func() {
			for sc.Scan() {
			}
		}()
		err = cmd.Wait()
		if pause == "" {
			if err != nil || !finished {
				t.Fatalf("last session: %v, finished %v\n%s", err, finished, stderr.String())
			}
			break
		}
		if !killed {
			t.Fatalf("session %d never reached micro-batch %q: %v\n%s", session, pause, err, stderr.String())
		}
		// The checkpoint left is at a step boundary before the killed step.
		tg := targets[session]
		path := filepath.Join(out, tg.strategy, checkpointName)
		if z, zerr := zip.OpenReader(path); zerr == nil {
			meta, merr := readCheckpointMeta(&z.Reader, path)
			z.Close()
			if merr != nil {
				t.Fatal(merr)
			}
			if wantStep := (tg.step - 1) / 3 * 3; meta.Step != wantStep {
				t.Errorf("killed in step %d: checkpoint at step %d, want %d", tg.step, meta.Step, wantStep)
			}
		} else if tg.step > 3 {
			t.Errorf("killed in step %d: no checkpoint: %v", tg.step, zerr)
		}
	}
	compareRuns(t, want, readRun(t, crashAccumConfig(data, out, scope)))
}

// TestCancelMidAccumulation: a context cancelled in the middle of an
// accumulation stops after the optimiser step in progress (a checkpoint
// is only ever written at a step boundary), and resuming gives the
// uninterrupted run bit for bit: micro scope per sequence, deferred scope
// per token (whose running range the checkpoint carries).
func TestCancelMidAccumulation(t *testing.T) {
	for _, tc := range []struct{ scope, gran string }{{ScopeMicro, GranularitySequence}, {ScopeDeferred, GranularityToken}} {
		t.Run(tc.scope, func(t *testing.T) { testCancelMidAccumulation(t, tc.scope, tc.gran) })
	}
}

func testCancelMidAccumulation(t *testing.T, scope, gran string) {
	dir := t.TempDir()
	data := writeCorpus(t, dir)
	c := crashAccumConfig(data, filepath.Join(dir, "ref"), scope)
	c.Steps, c.Granularity = 9, gran
	if _, err := Run(context.Background(), c, Options{}); err != nil {
		t.Fatal(err)
	}
	want := readRun(t, c)
	ic := c
	ic.Out = filepath.Join(dir, "cut")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	microBatchHook = func(s string, step, micro int) {
		if s == goreweight.LinUpper && step == 5 && micro == 2 {
			cancel()
		}
	}
	defer func() { microBatchHook = nil }()
	_, err := Run(ctx, ic, Options{})
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "at step 5/9 of strategy linupper") {
		t.Fatalf("Run = %v, want ErrInterrupted at step 5/9 of linupper", err)
	}
	microBatchHook = nil
	if _, err := Run(context.Background(), Config{Resume: ic.Out, Threads: 1, Quiet: true}, Options{}); err != nil {
		t.Fatal(err)
	}
	compareRuns(t, want, readRun(t, ic))
}
