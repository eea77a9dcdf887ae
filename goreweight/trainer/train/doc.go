// Package train is goreweight's Go-native GPT trainer: it trains a small
// GPT-2 style model on a CPU with the core Reweighter in the loop, one
// model per strategy on the same data order and initialisation, and
// reports what the strategies did with numbers and plots.
//
// One training step, top to bottom (see trainer.loop):
//
//	batch  := iterator.Next(B)                     // seeded, resumable order
//	losses := model.Forward(batch)                 // one loss per sequence
//	w, st  := reweighter.Weights(losses, domains)  // the core: weights sum to 1
//	model.Backward(w)                              // gradient of Σ w_i·l_i
//	optim.ClipGradNorm; adamw.Step(optim.LR(step)) // warm-up + cosine lr
//	metrics, per-sample log, evaluation, checkpoint
//
// With Config.Accum = G > 1 one optimiser step is G micro-batches (see
// trainer.accumulate): in micro scope each is weighted alone and scaled by
// 1/G; in global scope a first pass of model.Evaluate (no gradients) gives
// every micro-batch's losses, one core call weighs all G·B of them, and
// each micro-batch's Forward/Backward uses its slice. Config.Granularity
// "token" weighs target tokens (model.TokenLosses, model.BackwardTokens);
// Config.Reference scores by the excess loss over a reference
// checkpoint's model (loss - reference loss) while the loss stays Σ w·l.
//
// With the uniform strategy every weight is exactly 1/B, so the run is
// training on the plain mean loss. The same configuration, seed and thread
// count give the same run bit for bit, and a run resumed from a checkpoint
// equals an uninterrupted one.
//
// Run writes everything under Config.Out: config.json, metrics.jsonl,
// <strategy>/samples.arrow (Arrow IPC, one row per sample per step),
// <strategy>/checkpoint.zip, summary.md, summary.json, val_loss.png,
// temperature.png and weight_vs_loss.png, each written atomically. The
// command goreweight-train, the C ABI's grw_train and Python's
// goreweight.train are thin fronts over Run; docs/trainer.md describes the
// flags and files.
package train
