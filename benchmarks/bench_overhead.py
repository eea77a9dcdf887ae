"""Table 2: what reweighting adds to a real PyTorch training step.

One PyTorch GPT (benchmarks/torch_gpt.py) and one AdamW train with three losses
in rotation, step by step, so that all three see the same machine state:

* ``mean``: ``per_sample.mean()``, the plain baseline;
* ``goreweight``: ``goreweight.reweighted_loss(per_sample, strategy="linupper", r=1)``;
* ``twin``: the pure-PyTorch twin's weights (detached) times the losses, summed.

The extra time of a variant is measured inside each step, where it happens: the
forward of the loss reduction (a clock around the call) plus its backward (from
``loss.backward()`` until the gradient reaches the per-sample losses, marked by
a tensor hook). Extra = median(variant) - median(mean), as a percentage of the
median step of the mean variant. The whole-step medians are printed too; their
differences are within the step-to-step noise (a few percent on a shared CPU),
far above the 0.1% being measured, which is why the direct measurement is the
figure that counts.
"""

from __future__ import annotations

import time
from typing import Dict, List

import torch

from common import Records, Summary, fmt_range, median, say, table, warn
from torch_gpt import GPT, GPTConfig, loss_fn, make_batch, sync

BENCH = "step_overhead"
VARIANTS = ["mean", "goreweight", "twin"]
GOAL_PCT = 0.1


def measure(cfg: GPTConfig, B: int, steps_per_variant: int, warmup: int, device: str) -> Dict[str, Dict[str, List[float]]]:
    """Per variant: lists of step, reduce-forward and reduce-backward seconds."""
    torch.manual_seed(1)
    model = GPT(cfg).to(device)
    opt = model.optimizer(3e-4)
    fns = {v: loss_fn(v) for v in VARIANTS}
    gen = torch.Generator().manual_seed(7)
    out: Dict[str, Dict[str, List[float]]] = {v: {"step": [], "fwd": [], "bwd": []} for v in VARIANTS}
    mark: List[float] = []

    def hook(g: torch.Tensor) -> torch.Tensor:
        sync(device)
        mark.append(time.perf_counter())
        return g

    n = len(VARIANTS)
    for i in range(warmup * n + steps_per_variant * n):
        v = VARIANTS[i % n]
        x, y = make_batch(gen, cfg.vocab, B, cfg.seq, device)
        sync(device)
        t0 = time.perf_counter()
        ps = model(x, y)
        ps.register_hook(hook)
        sync(device)
        t1 = time.perf_counter()
        loss = fns[v](ps)
        sync(device)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        mark.clear()
        t3 = time.perf_counter()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync(device)
        t4 = time.perf_counter()
        if i >= warmup * n:
            out[v]["step"].append(t4 - t0)
            out[v]["fwd"].append(t2 - t1)
            out[v]["bwd"].append(mark[0] - t3 if mark else float("nan"))
        # Drop this step's graph now: left alive, it would be freed inside the
        # next step's timed loss call (when `loss` is rebound), ~100 us here.
        del loss, ps
    return out


def run(rec: Records, configs: Dict[str, tuple], steps_per_variant: int, warmup: int) -> str:
    """Measures and records table 2 for each (name -> (GPTConfig, B)); returns it as text."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows: List[List[str]] = []
    notes: List[str] = []
    for dev in devices:
        for name, (cfg, B) in configs.items():
            conf = name if dev == "cpu" else f"{name}/cuda"
            m = measure(cfg, B, steps_per_variant, warmup, dev)
            step_mean = median(m["mean"]["step"])
            base = median(m["mean"]["fwd"]) + median(m["mean"]["bwd"])
            for v in VARIANTS:
                st = rec.add_summary(BENCH, conf, v, "step_ms", [t * 1e3 for t in m[v]["step"]])
                fw = rec.add_summary(BENCH, conf, v, "reduce_fwd_us", [t * 1e6 for t in m[v]["fwd"]])
                bw = rec.add_summary(BENCH, conf, v, "reduce_bwd_us", [t * 1e6 for t in m[v]["bwd"]])
                cost = median(m[v]["fwd"]) + median(m[v]["bwd"])
                extra = cost - base
                pct = 100.0 * extra / step_mean
                rec.add(BENCH, conf, v, "extra_us", extra * 1e6)
                rec.add(BENCH, conf, v, "extra_pct_of_step", pct)
                whole = 100.0 * (st.median - step_mean * 1e3) / (step_mean * 1e3)
                rec.add(BENCH, conf, v, "step_delta_pct", whole)
                rows.append([
                    conf, f"{B}x{cfg.seq}", v,
                    fmt_range(st, lambda x: f"{x:.1f}"),
                    f"{fw.median:.1f}", f"{bw.median:.1f}",
                    "(baseline)" if v == "mean" else f"{extra * 1e6:+.1f}",
                    "(baseline)" if v == "mean" else f"{pct:+.4f}%",
                    "(baseline)" if v == "mean" else f"{whole:+.2f}%",
                ])
                if v != "mean" and pct > GOAL_PCT:
                    notes.append(f"{conf} {v}: extra {pct:.3f}% of the step, above the {GOAL_PCT}% goal")
    out = table(["config", "BxT", "loss", "step ms median [min..max]", "reduce fwd us", "reduce bwd us",
                 "extra us", "extra % of step", "whole-step delta (noise)"], rows)
    out += (f"\n(extra = in-step reduce fwd+bwd minus the mean loss's; {steps_per_variant} steps per variant, "
            "variants in rotation; goal <= 0.1%)")
    if notes:
        out += "\n" + "\n".join("  ! " + n for n in notes)
    return out
