"""Train a small byte-level GPT with goreweight's loss-based sample reweighting: a plain PyTorch loop.

    python examples/pytorch_loop.py                                  # one process
    torchrun --nproc_per_node 2 examples/pytorch_loop.py             # DDP: gloo on CPU, NCCL on GPUs
    python examples/pytorch_loop.py --data my_corpus.txt --steps 500 --strategy linupper

Each step draws a *global* batch of ``batch_size * world_size`` random windows of the text (the same
draw on every rank) and each rank trains on its global-rank slice, so the run on N processes sees
the same data as one process with an N times larger batch. ``goreweight.Reweighter`` gathers the
per-sequence losses of all ranks, weights the global batch and returns this rank's share times the
world size, which DDP's gradient averaging turns back into ``sum_i w_i * grad l_i``.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

import goreweight
from goreweight import schedules


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention and an MLP."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """A tiny GPT over bytes (vocabulary 256), output head tied to the token embedding."""

    def __init__(self, seq_len: int, d: int = 64, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(256, d), nn.Embedding(seq_len, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        for emb in (self.tok, self.pos):  # GPT-2's init; N(0, 1) would start at a loss of ~30
            nn.init.normal_(emb.weight, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        return self.ln(x) @ self.tok.weight.T  # logits (B, T, 256)


def default_data() -> str:
    """A text every Python install has: the standard library's argparse source (~100 KB)."""
    path = argparse.__file__
    return path if path and path.endswith(".py") and os.path.isfile(path) else os.path.abspath(__file__)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=default_data(), help="text file, read as bytes (default: %(default)s)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8, help="sequences per rank per step")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--strategy", default="linupper")
    p.add_argument("--schedule", choices=["linear", "cosine"], default="cosine")
    p.add_argument("--r-start", type=float, default=100.0)
    p.add_argument("--r-end", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=0, help="uniform steps before the r schedule starts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--dump", help="directory: each rank writes rank<N>.jsonl (losses, weights, stats per step)")
    args = p.parse_args()

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    with open(args.data, "rb") as f:
        data = torch.tensor(list(f.read()), dtype=torch.long)
    if len(data) <= args.seq_len + 1:
        raise SystemExit(f"{args.data}: {len(data)} bytes, need more than --seq-len + 1 = {args.seq_len + 1}")

    torch.manual_seed(args.seed)  # the same initial weights on every rank
    model = GPT(args.seq_len).to(device)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    make = schedules.linear if args.schedule == "linear" else schedules.cosine
    rw = goreweight.Reweighter(args.strategy, schedule=make(args.r_start, args.r_end, args.steps, warmup=args.warmup))

    dump = None
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        dump = open(os.path.join(args.dump, f"rank{rank}.jsonl"), "w")
    gen = torch.Generator().manual_seed(args.seed + 1)  # same draws on every rank
    for step in range(args.steps):
        starts = torch.randint(0, len(data) - args.seq_len - 1, (args.batch_size * world,), generator=gen)
        mine = starts[rank * args.batch_size : (rank + 1) * args.batch_size]  # global-rank slice
        window = torch.stack([data[s : s + args.seq_len + 1] for s in mine.tolist()]).to(device)
        x, y = window[:, :-1], window[:, 1:]

        per_sample = goreweight.per_sample_loss(model(x), y, shift=False)  # (B,) float32
        per_sample.retain_grad()  # only to report the weights in --dump
        loss = rw(per_sample)  # r = schedule(rw.step); advances rw.step
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

        st = rw.stats
        if dump is not None:  # d loss / d l_i = world * w_i: the weights this rank applied
            w = (per_sample.grad / world).tolist()
            rec = {"step": step, "losses": per_sample.detach().tolist(), "weights": w, "stats": st}
            dump.write(json.dumps(rec) + "\n")
        if rank == 0 and (step % args.log_every == 0 or step == args.steps - 1):
            print(
                f"step {step:4d}  r {st['r']:8.3f}  loss(mean) {st['loss_mean']:.4f}  "
                f"loss(weighted) {st['loss_weighted']:.4f}  max w*M {st['max_wm']:.3f}  "
                f"ESS/M {st['ess_frac']:.3f}",
                flush=True,
            )
    if dump is not None:
        dump.close()
    if rank == 0:
        print(f"done: {args.steps} steps, {world} process(es), bits/byte {st['loss_mean'] / math.log(2):.3f}")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
