package train_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreweight/goreweight/goreweight/trainer/train"
)

// Train two tiny models, uniform and linupper, on the same data order and
// initialisation, and compare their validation losses; everything lands
// under Out (metrics.jsonl, checkpoints, summary, plots).
func ExampleRun() {
	dir, err := os.MkdirTemp("", "goreweight-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	corpus := filepath.Join(dir, "corpus.txt")
	var text strings.Builder
	for i := range 600 {
		fmt.Fprintf(&text, "%d plus %d is %d.\n", i%17, i%5, i%17+i%5)
	}
	if err := os.WriteFile(corpus, []byte(text.String()), 0o644); err != nil {
		panic(err)
	}

	cfg := train.DefaultConfig()
	cfg.Data, cfg.Out = corpus, filepath.Join(dir, "run")
	cfg.Compare = train.StrategyList{"uniform", "linupper"}
	cfg.Seeds = nil // one seed (Config.Seed); --seeds would train each strategy once per seed
	cfg.Steps, cfg.Batch, cfg.Seq = 20, 8, 16
	cfg.Layers, cfg.Heads, cfg.Width = 1, 2, 16
	cfg.LR, cfg.LRWarmup, cfg.WarmupR = 1e-2, 2, 2
	cfg.EvalEvery, cfg.CkptEvery, cfg.ValMax = 10, 10, 16
	cfg.Threads, cfg.Quiet = 1, true
	sum, err := train.Run(context.Background(), cfg, train.Options{})
	if err != nil {
		panic(err)
	}
	for _, r := range sum.Runs {
		fmt.Printf("%s: validation loss from ln(256) = %.2f to below 4: %v\n", r.Strategy, math.Log(256), r.ValLoss < 4)
	}
	_, err = os.Stat(filepath.Join(cfg.Out, "uniform", "checkpoint.zip"))
	fmt.Println("checkpoint written:", err == nil)
	// Output:
	// uniform: validation loss from ln(256) = 5.55 to below 4: true
	// linupper: validation loss from ln(256) = 5.55 to below 4: true
	// checkpoint written: true
}
