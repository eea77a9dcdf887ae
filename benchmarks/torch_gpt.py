"""The PyTorch twin of goreweight's Go GPT, for the benchmarks.

Same architecture as ``goreweight/trainer/gpt``: GPT-2 style decoder, token plus learned
position embeddings, pre-LayerNorm blocks (causal multi-head self-attention, a
4x-wide GELU(tanh) MLP, both added to the residual stream), a final LayerNorm and
a language-model head tied to the token embedding; LayerNorm eps 1e-5; GPT-2
initialisation (N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), biases 0).
The loss is per sequence (mean token cross-entropy of each sequence), so that
sample reweighting can use it.

Run as a script it times training steps and prints one JSON line, the same
record ``benchmarks/gostep`` prints for the Go model::

    python benchmarks/torch_gpt.py --vocab 256 --layers 4 --heads 4 --width 128 \
        --seq 128 --batch 16 --steps 10 --threads 2

One step: forward, loss (``--loss mean``: the plain mean; ``goreweight``:
``goreweight.reweighted_loss``; ``twin``: the pure-PyTorch twin's weights),
zero_grad, backward, clip_grad_norm_(1.0), AdamW.step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    """Shape of the model, as goreweight's gpt.Config."""

    vocab: int = 256
    seq: int = 128
    layers: int = 4
    heads: int = 4
    width: int = 128


class Block(nn.Module):
    """One pre-LN transformer block, parameter names as Hugging Face GPT-2."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        C = cfg.width
        self.heads = cfg.heads
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.c_attn = nn.Linear(C, 3 * C)
        self.attn_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        H = self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(B, T, H, C // H).transpose(1, 2)
        k = k.view(B, T, H, C // H).transpose(1, 2)
        v = v.view(B, T, H, C // H).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.attn_proj(y)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    """GPT-2 style model with a tied head; ``forward`` returns per-sequence losses."""

    def __init__(self, cfg: GPTConfig, seed: int = 1) -> None:
        super().__init__()
        self.cfg = cfg
        g = torch.Generator().manual_seed(seed)
        self.wte = nn.Embedding(cfg.vocab, cfg.width)
        self.wpe = nn.Embedding(cfg.seq, cfg.width)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.width, eps=1e-5)
        proj_std = 0.02 / math.sqrt(2 * cfg.layers)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("attn_proj.weight") or name.endswith("mlp_proj.weight"):
                    p.normal_(0.0, proj_std, generator=g)
                elif p.dim() == 2:
                    p.normal_(0.0, 0.02, generator=g)
                elif "ln" in name and name.endswith("weight"):
                    p.fill_(1.0)
                else:
                    p.zero_()

    def num_params(self) -> int:
        """Scalar parameters, the tied head counted once (as gpt.Model.NumParams)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sequence mean token cross-entropy, shape (B,); target -1 is ignored."""
        B, T = tokens.shape
        pos = torch.arange(T, device=tokens.device)
        x = self.wte(tokens) + self.wpe(pos)
        for blk in self.h:
            x = blk(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)
        tok = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), reduction="none", ignore_index=-1)
        count = (targets >= 0).sum(dim=1).clamp_min(1)
        return tok.view(B, T).sum(dim=1) / count

    def optimizer(self, lr: float = 3e-4, **kw) -> torch.optim.AdamW:
        """AdamW as goreweight's optim.DefaultConfig: betas (0.9, 0.95), eps 1e-8,
        weight decay 0.1 on matrices and embeddings only."""
        decay = [p for n, p in self.named_parameters() if p.dim() == 2]
        rest = [p for n, p in self.named_parameters() if p.dim() != 2]
        groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, **kw)


def loss_fn(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The step's reduction of per-sequence losses to the training loss.

    ``mean``: the plain mean; ``goreweight``: ``goreweight.reweighted_loss``
    (linupper, r = 1); ``twin``: ``goreweight.torch_reference`` weights, detached,
    times the losses (the same loss in pure PyTorch).
    """
    if kind == "mean":
        return lambda ps: ps.mean()
    import goreweight  # imported only when asked for, so the mean baseline needs nothing

    if kind == "goreweight":
        return lambda ps: goreweight.reweighted_loss(ps, strategy="linupper", r=1.0)
    if kind == "twin":
        from goreweight import torch_reference

        def twin(ps: torch.Tensor) -> torch.Tensor:
            w = torch_reference.weights(ps.detach(), strategy="linupper", r=1.0)
            return (w.to(ps.dtype) * ps).sum()

        return twin
    raise ValueError(f"unknown loss kind {kind!r}: want mean, goreweight or twin")


def make_batch(gen: torch.Generator, vocab: int, B: int, T: int, device: str):
    """Uniform random tokens and their next-token targets."""
    buf = torch.randint(0, vocab, (B, T + 1), generator=gen)
    return buf[:, :T].contiguous().to(device), buf[:, 1:].contiguous().to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(cfg: GPTConfig, B: int, steps: int, warmup: int, loss: str = "mean",
               device: str = "cpu", lr: float = 3e-4, clip: float = 1.0) -> dict:
    """Build a model and AdamW, run ``warmup`` then ``steps`` timed training steps;
    returns the per-step seconds and tokens/s (B*T over the median step)."""
    torch.manual_seed(1)
    model = GPT(cfg).to(device)
    opt = model.optimizer(lr)
    f = loss_fn(loss)
    gen = torch.Generator().manual_seed(7)
    T = cfg.seq
    times: List[float] = []
    last = float("nan")
    for i in range(warmup + steps):
        x, y = make_batch(gen, cfg.vocab, B, T, device)
        sync(device)
        t0 = time.perf_counter()
        l = f(model(x, y))
        opt.zero_grad(set_to_none=True)
        l.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sync(device)
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
        last = float(l.detach())
    s = sorted(times)
    med = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    return {
        "impl": "pytorch",
        "backend": _backend(device),
        "threads": torch.get_num_threads(),
        "params": model.num_params(),
        "batch": B,
        "seq": T,
        "weights": loss,
        "step_s": times,
        "tokens_per_s": B * T / med,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "vmhwm_kib": vmhwm_kib(),
        "final_loss": last,
        "device": device,
        "torch": torch.__version__,
    }


def vmhwm_kib() -> int:
    """Peak resident set size of this process in KiB (VmHWM of /proc/self/status),
    or -1 where there is none. Unlike getrusage's ru_maxrss it starts afresh at
    exec, so a child does not inherit its (large) parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return -1


def _backend(device: str) -> str:
    if device.startswith("cuda"):
        return "cuda " + torch.cuda.get_device_name(0)
    cfg = torch.__config__.show()
    if "BLAS_INFO=mkl" in cfg:
        return "mkl"
    if "BLAS_INFO=open" in cfg:
        return "openblas"
    return "torch-cpu"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    ap.add_argument("--loss", default="mean", choices=["mean", "goreweight", "twin"])
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    cfg = GPTConfig(vocab=a.vocab, seq=a.seq, layers=a.layers, heads=a.heads, width=a.width)
    rec = time_steps(cfg, a.batch, a.steps, a.warmup, a.loss, a.device)
    json.dump(rec, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
