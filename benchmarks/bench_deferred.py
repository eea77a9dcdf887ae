"""The approximate (deferred) global scope against the exact one: its error
on real loss sequences, and its cost per optimizer step, side by side.

    python benchmarks/bench_deferred.py                      # both parts
    python benchmarks/bench_deferred.py --part error --steps 40
    python benchmarks/bench_deferred.py --part cost --reps 20

Error: a small GPT (benchmarks/torch_gpt.py, char-level) trains on
tinyshakespeare (``--data``, default ../shared/data/tinyshakespeare.txt;
without it, a synthetic Markov text) with the **exact** global scope
(GlobalBatch: a no-grad first pass, the weights of the whole step, then
forward/backward per micro-batch) for G micro-batches per step. Along that
trajectory, every step's per-sample losses are also weighted by
DeferredGlobalBatch (range momentum 0 and 0.9), by micro scope (each
micro-batch on its own, divided by G, today's default) and uniformly (no
reweighting at all: the scale against which the errors read), and each is
compared with the exact weights: the largest relative weight error
``max_i |w_i - w*_i| / w*_i``, the total variation distance ``½ Σ |w - w*|``
and the relative error of the accumulated gradient ``|g - g*| / |g*|``
(each variant's gradient from its own backward over the same graph).
Step 0 (whose range is the first micro-batch's own) is reported apart from
the median / 90th percentile / max over steps --report-from..S-1 (default
1; e.g. --steps 120 --report-from 40 leaves out the fast early descent).

Cost: ms per optimizer step (forward/backward of G micro-batches and the
optimizer step) of micro scope, exact global scope and deferred global
scope, interleaved rounds, median and min.

Prints markdown tables and, with --json PATH, writes the raw records.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import GPT, GPTConfig  # noqa: E402

import goreweight  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# ../shared next to the repository (or next to the directory of a git worktree)
_CANDIDATES = [os.path.normpath(os.path.join(HERE, "..", up, "shared", "data", "tinyshakespeare.txt")) for up in ("..", "../..")]
DEFAULT_DATA = next((p for p in _CANDIDATES if os.path.exists(p)), _CANDIDATES[0])


def load_text(path: str, n: int = 400_000) -> tuple[torch.Tensor, int, str]:
    """Byte-level tokens of the text (its distinct bytes as the vocabulary),
    or a synthetic order-2 Markov text when the file is absent."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            raw = f.read()[:n]
        src = os.path.basename(path)
    else:
        g = torch.Generator().manual_seed(0)
        v = 48
        trans = torch.rand(v, v, v, generator=g) ** 8  # peaked: some sequences far easier than others
        toks = [1, 2]
        for _ in range(n):
            toks.append(int(torch.multinomial(trans[toks[-2], toks[-1]], 1, generator=g)))
        raw = bytes(toks)
        src = "synthetic Markov text (no tinyshakespeare.txt)"
    vocab = sorted(set(raw))
    lut = {b: i for i, b in enumerate(vocab)}
    return torch.tensor([lut[b] for b in raw], dtype=torch.long), len(vocab), src


class Batches:
    def __init__(self, data: torch.Tensor, m: int, seq: int, seed: int, device: str) -> None:
        self.data, self.m, self.seq, self.device = data, m, seq, device
        self.g = torch.Generator().manual_seed(seed)

    def micro(self) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.randint(0, len(self.data) - self.seq - 1, (self.m,), generator=self.g)
        x = torch.stack([self.data[j: j + self.seq] for j in i.tolist()])
        y = torch.stack([self.data[j + 1: j + 1 + self.seq] for j in i.tolist()])
        return x.to(self.device), y.to(self.device)


def flat_grad(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=p.device) for p in params])


def error_run(data: torch.Tensor, vocab: int, strategy: str, G: int, a: argparse.Namespace) -> dict[str, Any]:
    """One exact-global training run of a.steps steps; per step the errors
    of the deferred (momentum 0, 0.9) and micro-scope weights."""
    torch.manual_seed(0)
    cfg = GPTConfig(vocab=vocab, seq=a.seq, layers=a.layers, heads=a.heads, width=a.width)
    model = GPT(cfg).to(a.device)
    opt = model.optimizer(lr=a.lr)
    params = [p for p in model.parameters()]
    batches = Batches(data, a.micro, a.seq, seed=1, device=a.device)
    rw = goreweight.Reweighter(strategy, schedule=a.r)
    variants = {"deferred m=0": 0.0, "deferred m=0.9": 0.9}
    accs = {k: goreweight.DeferredGlobalBatch(goreweight.Reweighter(strategy, schedule=a.r), range_momentum=m) for k, m in variants.items()}
    micro_w = goreweight.Reweighter(strategy, schedule=a.r)
    rows: list[dict[str, Any]] = []
    for step in range(a.steps):
        mb = [batches.micro() for _ in range(G)]
        with torch.no_grad():
            first = [model(x, y) for x, y in mb]
        gb = goreweight.GlobalBatch(rw, first)
        w_exact = torch.cat(gb.weights).double()
        # each variant's weights from the same first-pass losses
        w_var: dict[str, torch.Tensor] = {}
        for k, acc in accs.items():
            us = [acc.weights(l) for l in first]
            s = acc.finish()
            w_var[k] = torch.cat(us).double() * s
        w_var["micro"] = torch.cat([micro_w.weights(l) for l in first]).double() / G
        w_var["uniform"] = torch.full_like(w_exact, 1.0 / w_exact.numel())  # no reweighting: the scale of the errors
        # gradients: one backward per variant over each micro-batch's graph
        names = ["exact"] + list(w_var)
        wsplit = {"exact": torch.split(w_exact, [a.micro] * G)}
        for k, w in w_var.items():
            wsplit[k] = torch.split(w, [a.micro] * G)
        grads = {k: torch.zeros(sum(p.numel() for p in params), dtype=torch.float64, device=a.device) for k in names}
        for j, (x, y) in enumerate(mb):
            l = model(x, y)
            for i, k in enumerate(names):
                g = torch.autograd.grad((wsplit[k][j].float() * l).sum(), params, retain_graph=i < len(names) - 1)
                grads[k] += torch.cat([t.reshape(-1) for t in g]).double()
        # the exact run trains
        for p, gi in zip(params, torch.split(grads["exact"], [p.numel() for p in params])):
            p.grad = gi.view_as(p).float()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        gnorm = float(grads["exact"].norm())
        row: dict[str, Any] = {"step": step, "loss_mean": float(torch.cat(first).mean()), "loss_min": float(torch.cat(first).min()),
                               "loss_max": float(torch.cat(first).max())}
        for k, w in w_var.items():
            row[k] = {
                "max_rel": float(((w - w_exact).abs() / w_exact).max()),
                "tv": float(0.5 * (w - w_exact).abs().sum()),
                "grad_rel": float((grads[k] - grads["exact"]).norm()) / gnorm,
            }
            if k in accs:
                row[k]["clipped_frac"] = accs[k].stats["clipped_frac"]
        rows.append(row)
    return {"strategy": strategy, "G": G, "rows": rows}


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def summarize(runs: list[dict[str, Any]], start: int) -> str:
    out = [f"| strategy | G | variant | step 0: max rel w / TV / grad rel | steps {start}..: max rel w (median / p90 / max) | TV (median / max) | grad rel (median / p90 / max) | clipped (median) |",
           "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        rows = run["rows"]
        for k in ("deferred m=0", "deferred m=0.9", "micro", "uniform"):
            r0 = rows[0][k]
            rest = [r[k] for r in rows[start:]]
            mr = [r["max_rel"] for r in rest]
            tv = [r["tv"] for r in rest]
            gr = [r["grad_rel"] for r in rest]
            cl = f"{100 * statistics.median(r['clipped_frac'] for r in rest):.1f}%" if "clipped_frac" in rest[0] else "-"
            out.append(
                f"| {run['strategy']} | {run['G']} | {k} | {r0['max_rel']:.3g} / {r0['tv']:.3g} / {r0['grad_rel']:.3g} | "
                f"{statistics.median(mr):.3g} / {pct(mr, 0.9):.3g} / {max(mr):.3g} | {statistics.median(tv):.3g} / {max(tv):.3g} | "
                f"{statistics.median(gr):.3g} / {pct(gr, 0.9):.3g} / {max(gr):.3g} | {cl} |"
            )
    return "\n".join(out)


def cost(data: torch.Tensor, vocab: int, a: argparse.Namespace) -> str:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab=vocab, seq=a.seq, layers=a.layers, heads=a.heads, width=a.width)
    model = GPT(cfg).to(a.device)
    opt = model.optimizer(lr=a.lr)
    G = a.cost_accum
    batches = Batches(data, a.micro, a.seq, seed=2, device=a.device)
    mb = [batches.micro() for _ in range(G)]

    def sync() -> None:
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()

    def micro(rw: goreweight.Reweighter, acc: Any) -> None:
        for x, y in mb:
            (rw(model(x, y)) / G).backward()
        opt.step()
        opt.zero_grad()

    def exact(rw: goreweight.Reweighter, acc: Any) -> None:
        with torch.no_grad():
            first = [model(x, y) for x, y in mb]
        gb = goreweight.GlobalBatch(rw, first)
        for k, (x, y) in enumerate(mb):
            gb.loss(k, model(x, y)).backward()
        opt.step()
        opt.zero_grad()

    def deferred(rw: goreweight.Reweighter, acc: Any) -> None:
        for x, y in mb:
            acc.loss(model(x, y)).backward()
        acc.finish(model)
        opt.step()
        opt.zero_grad()

    fns: dict[str, Callable[[goreweight.Reweighter, Any], None]] = {"micro": micro, "global exact": exact, "global deferred": deferred}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(a.rounds):
        for name, f in fns.items():
            rw = goreweight.Reweighter("linupper", schedule=1.0)
            acc = goreweight.DeferredGlobalBatch(rw)
            f(rw, acc)
            f(rw, acc)
            for _ in range(a.reps):
                sync()
                t0 = time.perf_counter()
                f(rw, acc)
                sync()
                times[name].append(time.perf_counter() - t0)
    base = min(times["micro"])
    lines = ["| scope | median ms/step | min ms/step | min vs micro |", "|---|---|---|---|"]
    for name, ts in times.items():
        lines.append(f"| {name} | {statistics.median(ts) * 1e3:.1f} | {min(ts) * 1e3:.1f} | {min(ts) / base - 1:+.0%} |")
    # the goreweight calls alone, on the same losses (no model work): G weights
    # calls (micro: Reweighter calls; deferred: acc.weights, then finish scaling
    # every .grad of the model once)
    with torch.no_grad():
        ls = [model(x, y) for x, y in mb]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    rw = goreweight.Reweighter("linupper", schedule=1.0)
    acc = goreweight.DeferredGlobalBatch(goreweight.Reweighter("linupper", schedule=1.0))

    def calls_micro() -> None:
        for l in ls:
            rw.weights(l)

    def calls_deferred() -> None:
        for l in ls:
            acc.weights(l)
        acc.finish(model)

    for name, f in (("micro: weights calls only", calls_micro), ("deferred: weights + finish only", calls_deferred)):
        f()
        ts = []
        for _ in range(200):
            sync()
            t0 = time.perf_counter()
            f()
            sync()
            ts.append(time.perf_counter() - t0)
        lines.append(f"| {name} | {statistics.median(ts) * 1e3:.3f} | {min(ts) * 1e3:.3f} | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["error", "cost", "both"], default="both")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per error run")
    ap.add_argument("--accums", default="2,4,8", help="G values of the error part")
    ap.add_argument("--report-from", type=int, default=1, help="first step of the summary columns (the run trains from step 0)")
    ap.add_argument("--strategies", default="linupper,quadratic")
    ap.add_argument("--r", type=float, default=1.0)
    ap.add_argument("--micro", type=int, default=8, help="sequences per micro-batch")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--cost-accum", type=int, default=4)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data, vocab, src = load_text(a.data)
    print(f"data: {src}, {len(data)} tokens, vocab {vocab}; model {a.layers}x{a.width}, {a.heads} heads, seq {a.seq}; "
          f"micro-batch {a.micro}; r = {a.r}; device {a.device}, {a.threads} thread(s)", flush=True)
    record: dict[str, Any] = {"args": vars(a), "data": src}
    if a.part in ("error", "both"):
        runs = []
        for strategy in a.strategies.split(","):
            for G in (int(g) for g in a.accums.split(",")):
                t0 = time.perf_counter()
                runs.append(error_run(data, vocab, strategy, G, a))
                rows = runs[-1]["rows"]
                print(f"# {strategy} G={G}: {a.steps} steps in {time.perf_counter() - t0:.0f} s, loss {rows[0]['loss_mean']:.3f} -> {rows[-1]['loss_mean']:.3f}", flush=True)
        print("\n" + summarize(runs, a.report_from) + "\n", flush=True)
        record["error"] = runs
    if a.part in ("cost", "both"):
        table = cost(data, vocab, a)
        print(f"cost, G = {a.cost_accum}:\n" + table, flush=True)
        record["cost"] = table
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
