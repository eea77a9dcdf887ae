"""Peak memory and time: per_sample_loss_from_hidden against per_sample_loss on full logits.

    python benchmarks/bench_hidden_loss.py                       # CPU: B=4, T=512, V=50257, H=768
    python benchmarks/bench_hidden_loss.py --size 8x1024         # the issue's size (5+ GB on CPU)
    python benchmarks/bench_hidden_loss.py --device cuda --size 8x1024 --dtype bfloat16
    python benchmarks/bench_hidden_loss.py --json out.json

What is measured, per implementation, for one forward + backward of the per-sample losses of a
``(B, T, H)`` hidden-state tensor through a ``(V, H)`` output layer (both requiring grad), summed
with per-sequence coefficients:

- ``full``: ``goreweight.per_sample_loss(hidden @ W.T, labels)``, autograd through the logits;
- ``hidden``: ``per_sample_loss_from_hidden(hidden, W, labels)`` with the default chunk.

Peak memory is the extra memory of that one step over the inputs: on CPU, in a fresh subprocess
per implementation (torch's CPU allocations are invisible to tracemalloc), the peak resident set
during the step (Linux: ``VmHWM`` after resetting it through ``/proc/self/clear_refs``) minus the
resident set before it (elsewhere the growth of ``ru_maxrss``, which can under-count); on CUDA ``torch.cuda.max_memory_allocated`` minus
the allocation before the step. Both include the gradients of ``hidden`` and ``W`` (the same on
both sides). Time is the median of ``--reps`` steps after the measured one (also reported, as
"first step") (wall clock; on CUDA
with synchronisation). The two implementations' losses are also compared (max abs difference).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any


def _step(impl: str, hidden: Any, w: Any, labels: Any, coef: Any) -> Any:
    import goreweight
    from goreweight._hidden_loss import per_sample_loss_from_hidden

    if impl == "full":
        ps = goreweight.per_sample_loss(hidden @ w.t(), labels)
    else:
        ps = per_sample_loss_from_hidden(hidden, w, labels)
    (ps * coef).sum().backward()
    return ps.detach()


def _reset_hwm() -> bool:
    """Linux: reset the process's peak RSS (VmHWM) to its current RSS; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kib("VmHWM") > 0
    except OSError:
        return False


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def child(a: argparse.Namespace) -> None:
    """One implementation in this process: prints one JSON line."""
    import torch

    torch.manual_seed(0)
    dev = torch.device(a.device)
    dt = getattr(torch, a.dtype)
    b, t = (int(x) for x in a.size.split("x"))
    hidden = torch.randn(b, t, a.hidden, device=dev).to(dt).requires_grad_(True)
    w = (torch.randn(a.vocab, a.hidden, device=dev) * 0.02).to(dt).requires_grad_(True)
    labels = torch.randint(0, a.vocab, (b, t), device=dev)
    coef = torch.linspace(0.5, 1.5, b, device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    hwm = dev.type == "cpu" and _reset_hwm()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    elif hwm:
        before = _status_kib("VmRSS") * 1024
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    ps = _step(a.impl, hidden, w, labels, coef)
    sync()
    first = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - before
    elif hwm:
        peak = _status_kib("VmHWM") * 1024 - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    times = []
    for _ in range(a.reps):
        hidden.grad = w.grad = None
        sync()
        t0 = time.perf_counter()
        _step(a.impl, hidden, w, labels, coef)
        sync()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"impl": a.impl, "peak_bytes": peak, "first_step_s": first, "times_s": times,
                      "losses": ps.float().cpu().tolist()}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="4x512", help="BxT (default %(default)s)")
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--reps", type=int, default=2, help="timed steps after the measured one")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--impl", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.impl:
        child(a)
        return
    res = {}
    for impl in ("full", "hidden"):
        cmd = [sys.executable, os.path.abspath(__file__), "--impl", impl, "--size", a.size, "--vocab", str(a.vocab),
               "--hidden", str(a.hidden), "--dtype", a.dtype, "--device", a.device, "--reps", str(a.reps)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res[impl] = json.loads(out.strip().splitlines()[-1])
    diff = max(abs(x - y) for x, y in zip(res["full"]["losses"], res["hidden"]["losses"]))
    b, t = (int(x) for x in a.size.split("x"))
    logits_mib = b * t * a.vocab * 4 / 2**20
    print(f"B x T = {a.size}, V = {a.vocab}, H = {a.hidden}, {a.dtype} on {a.device}; "
          f"full float32 logits would be {logits_mib:.0f} MiB")
    print(f"{'impl':8s} {'peak extra memory':>18s} {'first step':>12s} {'time/step (median)':>20s}")
    for impl, r in res.items():
        med = statistics.median(r["times_s"]) if r["times_s"] else float("nan")
        print(f"{impl:8s} {r['peak_bytes'] / 2**20:15.0f} MiB {r['first_step_s']:10.3f} s {med:18.3f} s")
    ratio = res["full"]["peak_bytes"] / max(res["hidden"]["peak_bytes"], 1)
    print(f"memory: full / hidden = {ratio:.1f}x; max |loss difference| = {diff:.2e}")
    if a.json:
        doc = {"config": vars(a), "results": {k: {kk: v for kk, v in r.items() if kk != "losses"}
                                              for k, r in res.items()}, "max_abs_loss_diff": diff}
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
