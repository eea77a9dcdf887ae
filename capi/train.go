package main

/*
#include <stdint.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"sync"

	"github.com/goreweight/goreweight/goreweight/trainer/train"
)

// grw_train runs the Go-native GPT trainer (package goreweight/train) and
// stores its summary as JSON in *result_json (free with grw_free).
//
// config_json is a JSON object with the keys of train.Config, the same
// names as goreweight-train's flags ("r_start" or "r-start"); keys left out
// take the command's defaults, so "{}" runs the default comparison,
// uniform against linupper on the built-in corpus. "resume": DIR continues
// the run in DIR (only "threads", "ckpt_every" and "quiet" may be given
// anew). Progress is printed on the process's standard error unless
// "quiet" is true. Every file lands under "out" (default
// runs/<YYYYMMDD-HHMMSS> in the working directory); the summary lists them
// under "files".
//
// The call blocks until the run ends. While it runs, SIGINT (Ctrl-C) stops
// the run after the current step and writes a checkpoint: the call then
// fails with GRW_EINTR and a message that names the directory to resume.
// A file that cannot be read or written (the corpus, a checkpoint, the
// output directory) gives GRW_EIO; other bad settings GRW_EINVAL. The process's own SIGINT handling is
// restored when no grw_train call is running.
//
//export grw_train
func grw_train(config_json *C.char, result_json **C.char, err **C.char) (status C.int) {
	defer guard(&status, err)()
	if result_json == nil {
		return done(err, errNullResult)
	}
	cfg, e := goString(config_json, "config_json")
	if e != nil {
		return done(err, e)
	}
	res, e := trainJSON(cfg)
	if e != nil {
		return done(err, e)
	}
	return done(err, setOut(result_json, []byte(res)))
}

var errNullResult = errInvalid("goreweight: result_json (the out-parameter) is NULL")

// trainJSON parses a trainer configuration, runs it with SIGINT stopping it
// cleanly, and returns the summary as JSON.
func trainJSON(configJSON string) (string, error) {
	cfg, keys, err := train.DefaultConfig().ParseJSON([]byte(configJSON))
	if err != nil {
		return "", err
	}
	if cfg.Resume != "" {
		if cfg, err = train.ResumeConfig(cfg.Resume, cfg, keys); err != nil {
			return "", err
		}
	}
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := catchInterrupt(cancel)
	defer release()
	sum, err := train.Run(ctx, cfg, train.Options{Progress: os.Stderr})
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(sum)
	return string(b), err
}

// interrupts routes SIGINT to the running grw_train calls while there are
// any; the host's handler (Python's KeyboardInterrupt, say) is restored
// with signal.Reset when the last one returns.
var interrupts struct {
	sync.Mutex
	next    int
	cancels map[int]context.CancelFunc
	ch      chan os.Signal
}

// catchInterrupt makes SIGINT call cancel until the returned function is
// called.
func catchInterrupt(cancel context.CancelFunc) (release func()) {
	in := &interrupts
	in.Lock()
	defer in.Unlock()
	if in.cancels == nil {
		in.cancels = map[int]context.CancelFunc{}
	}
	id := in.next
	in.next++
	in.cancels[id] = cancel
	if len(in.cancels) == 1 {
		ch := make(chan os.Signal, 1)
		in.ch = ch
		signal.Notify(ch, os.Interrupt)
		go func() {
			for range ch {
				in.Lock()
				for _, c := range in.cancels {
					c()
				}
				in.Unlock()
			}
		}()
	}
	return func() {
		in.Lock()
		defer in.Unlock()
		delete(in.cancels, id)
		if len(in.cancels) == 0 && in.ch != nil {
			signal.Stop(in.ch)
			signal.Reset(os.Interrupt)
			close(in.ch)
			in.ch = nil
		}
	}
}
