//go:build unix

package train

import (
	"bufio"
	"context"
	"encoding/json"
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

type crashArgs struct {
	Data   string `json:"data"`
	Out    string `json:"out"`
	Resume bool   `json:"resume"`
	// PauseInCheckpoint makes every checkpoint write print "checkpoint" and
	// pause halfway, so that the parent can kill it there.
	PauseInCheckpoint bool `json:"pause_in_checkpoint"`
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
		arg, _ := json.Marshal(crashArgs{Data: data, Out: out, Resume: resume, PauseInCheckpoint: inCkpt})
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+string(arg))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of steps of this session and a random
		// delay that often lands in the checkpoint write after a step.
		wantKill := killed < kills
		steps := 1 + rng.IntN(9)
		delay := time.Duration(rng.IntN(4000)) * time.Microsecond
		sc := bufio.NewScanner(stdout)
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
		err = cmd.Wait()
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
