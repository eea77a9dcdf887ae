package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/goreweight/goreweight/goreweight/internal/jsonx"
)

// Float is a float64 whose JSON form is null for NaN and ±Inf (JSON has no
// such numbers), and which reads null back as NaN; Valid reports whether it
// is finite. It is the core's NaN-safe number (goreweight/internal/jsonx),
// shared with goreweight.Stats.
type Float = jsonx.Float

var nan = Float(math.NaN())

// A Record is one line of metrics.jsonl. Step 0 holds only the validation
// losses of the initial model (its training fields are null). Training
// fields describe the batch of the step, before the update; validation
// fields are present at evaluation steps only.
type Record struct {
	// Strategy is the strategy of the run.
	Strategy string `json:"strategy"`
	// Step is the number of optimiser steps taken, from 1 (0: before
	// training).
	Step int `json:"step"`
	// Tokens is the number of training tokens seen so far.
	Tokens int64 `json:"tokens"`
	// LR is the learning rate of the step.
	LR Float `json:"lr"`
	// Loss is the unweighted mean loss of the batch; LossWeighted is
	// Σ w_i·l_i, the loss the step descends.
	Loss         Float `json:"loss"`
	LossWeighted Float `json:"loss_weighted"`
	// R is the temperature (null during the uniform warm-up).
	R Float `json:"r"`
	// Uniform says whether the weights were uniform by construction.
	Uniform bool `json:"uniform"`
	// MaxWM and MinWM are the largest and smallest weight times M; ESS is
	// the effective sample size 1/Σw², ESSFrac ESS/M; Entropy is -Σ w log w.
	MaxWM   Float `json:"max_wm"`
	MinWM   Float `json:"min_wm"`
	ESS     Float `json:"ess"`
	ESSFrac Float `json:"ess_frac"`
	Entropy Float `json:"entropy"`
	// Capped is the number of weights the cap lowered; NonFinite the number
	// of samples with a NaN or infinite loss (weight 0).
	Capped    int `json:"capped"`
	NonFinite int `json:"nonfinite"`
	// RangeLo and RangeHi are the loss range (of the scores: the excess
	// losses with a reference) that the step's normalisation used in
	// deferred scope: the previous step's global min/max (so the next
	// step's record holds this step's own); ClippedFrac is the fraction
	// of the step's finite scores outside it, whose normalised value was
	// clipped to ±delta. Present in deferred scope only.
	RangeLo     *Float `json:"range_lo,omitempty"`
	RangeHi     *Float `json:"range_hi,omitempty"`
	ClippedFrac *Float `json:"clipped_frac,omitempty"`
	// GradNorm is the global gradient norm before clipping.
	GradNorm Float `json:"grad_norm"`
	// DomainLoss is the unweighted mean loss per domain in the batch;
	// DomainWM the mean weight times M per domain (1: its uniform share).
	DomainLoss map[string]Float `json:"domain_loss,omitempty"`
	DomainWM   map[string]Float `json:"domain_wm,omitempty"`
	// ValLoss is the validation loss averaged over the domains (each
	// domain counts once); Val the validation loss per domain. Present at
	// evaluation steps.
	ValLoss *Float           `json:"val_loss,omitempty"`
	Val     map[string]Float `json:"val,omitempty"`
	// TokensPerS is the training throughput since the previous record
	// (excluding evaluation and checkpoint time); ElapsedS the wall time
	// of the run so far. They depend on the machine; everything else is
	// reproducible.
	TokensPerS Float `json:"tokens_per_s"`
	ElapsedS   Float `json:"elapsed_s"`
}

// emptyRecord returns a record with every float null.
func emptyRecord(strategy string, step int) Record {
	return Record{Strategy: strategy, Step: step, LR: nan, Loss: nan, LossWeighted: nan, R: nan,
		MaxWM: nan, MinWM: nan, ESS: nan, ESSFrac: nan, Entropy: nan, GradNorm: nan, TokensPerS: nan, ElapsedS: nan}
}

// writeRecords writes records as JSON lines.
func writeRecords(w io.Writer, recs []Record) error {
	enc := json.NewEncoder(w)
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// readRecords reads a metrics.jsonl file.
func readRecords(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: reading metrics: %w", err)
	}
	var recs []Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("train: %s line %d: %w", path, line, err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}
