"""goreweight in a Hugging Face Accelerate loop with gradient accumulation (CPU, a few seconds).

    pip install ".[hf]"                                   # accelerate comes with it
    python examples/accelerate_loop.py
    accelerate launch --num_processes 2 examples/accelerate_loop.py     # DDP

The semantics are those documented in docs/integrations.md: every *micro-batch* is weighted on its
own (over all ranks: ``Reweighter`` gathers the per-sequence losses of every process), all
micro-batches of one optimizer step at the same temperature ``r = schedule(optimizer step)``, and
``accelerator.backward`` divides each micro-batch loss by ``gradient_accumulation_steps``. One
optimizer step therefore applies ``(1/G) * sum_g sum_i w_i^(g) * grad l_i^(g)``.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.nn as nn
from accelerate import Accelerator

import goreweight
from goreweight import schedules


class Bigram(nn.Module):
    """The smallest language model: an embedding per byte and a linear layer to the next byte."""

    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.emb, self.head = nn.Embedding(256, d), nn.Linear(d, 256)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.emb(idx)))  # logits (B, T, 256)


class RandomWindows(torch.utils.data.IterableDataset):
    """Endless random windows of a byte string (the same sequence for a given seed)."""

    def __init__(self, data: torch.Tensor, seq_len: int, seed: int) -> None:
        self.data, self.seq_len, self.seed = data, seq_len, seed

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        while True:
            s = int(torch.randint(0, len(self.data) - self.seq_len - 1, (1,), generator=g))
            yield self.data[s : s + self.seq_len + 1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=argparse.__file__, help="text file, read as bytes (default: %(default)s)")
    p.add_argument("--steps", type=int, default=30, help="optimizer steps")
    p.add_argument("--accum", type=int, default=4, help="micro-batches per optimizer step")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per process per micro-batch")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--strategy", default="linupper")
    p.add_argument("--r-start", type=float, default=10.0)
    p.add_argument("--r-end", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dump", help="directory: each rank writes rank<N>.jsonl (losses, weights, stats)")
    args = p.parse_args()

    acc = Accelerator(gradient_accumulation_steps=args.accum, cpu=not torch.cuda.is_available())
    with open(args.data, "rb") as f:
        data = torch.tensor(list(f.read()), dtype=torch.long)
    torch.manual_seed(args.seed)
    model = Bigram()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    # each process draws its own windows (seed + rank); accelerate would shard a map-style dataset
    loader = torch.utils.data.DataLoader(RandomWindows(data, args.seq_len, args.seed + 1 + acc.process_index),
                                         batch_size=args.batch_size)
    model, opt = acc.prepare(model, opt)
    rw = goreweight.Reweighter(args.strategy, schedule=schedules.linear(args.r_start, args.r_end, args.steps))

    dump = None
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        dump = open(os.path.join(args.dump, f"rank{acc.process_index}.jsonl"), "w")
    opt_step = 0
    for window in loader:
        window = window.to(acc.device)
        x, y = window[:, :-1], window[:, 1:]
        with acc.accumulate(model):  # no_sync inside an accumulation, sync on its last micro-batch
            per_sample = goreweight.per_sample_loss(model(x), y, shift=False)  # (B,) float32
            if dump is not None:
                per_sample.retain_grad()  # only to report the weights
            rw.step = opt_step  # every micro-batch of one optimizer step: the same r
            loss = rw(per_sample)  # gathers every process's losses; weights the global micro-batch
            acc.backward(loss)  # divides by gradient_accumulation_steps
            opt.step()  # accelerate skips these until the accumulation is complete
            opt.zero_grad()
        st = rw.stats
        if dump is not None:  # d loss / d l_i = world * w_i / accum
            w = (per_sample.grad * args.accum / acc.num_processes).tolist()
            dump.write(json.dumps({"step": opt_step, "losses": per_sample.detach().tolist(), "weights": w,
                                   "stats": st}) + "\n")
        if acc.sync_gradients:  # this micro-batch completed an optimizer step
            if acc.is_main_process and (opt_step % 10 == 0 or opt_step == args.steps - 1):
                print(f"step {opt_step:3d}  r {st['r']:6.3f}  loss(mean) {st['loss_mean']:.4f}  "
                      f"loss(weighted) {st['loss_weighted']:.4f}  max w*M {st['max_wm']:.3f}", flush=True)
            opt_step += 1
            if opt_step == args.steps:
                break
    if dump is not None:
        dump.close()
    if acc.is_main_process:
        print(f"done: {opt_step} optimizer steps of {args.accum} micro-batches, {acc.num_processes} process(es)")


if __name__ == "__main__":
    main()
