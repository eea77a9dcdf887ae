"""Table 1: weights per call from Python, goreweight against its pure-PyTorch twin.

For each batch size M, float32 losses, strategy linupper, r = 1: every exchange
path goreweight offers (a torch tensor through raw pointers, a numpy array, an
Arrow array; CUDA tensors with their device-host copies when a GPU is present)
and ``goreweight.torch_reference.weights`` on the same losses. The paths are
timed in rotating order within each repeat, each over a calibrated number of
back-to-back calls; the speed-up is twin time / goreweight time per repeat, so
both sides of a ratio ran within the same fraction of a second.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from common import Records, Summary, calibrate, fmt_range, fmt_time, median, say, table, time_calls, warn

BENCH = "weights"
SIZES_FULL = [128, 1024, 16384, 262144, 1048576]
SIZES_TINY = [128, 1024]
# Anchors measured with PyTorch 1.13 on these machines (the figures).
ANCHOR_TORCH113_US = {128: 85.0, 16384: 137.0, 1048576: 2600.0}
GOAL_SMALL = 10.0  # goreweight at least this many times faster for M <= 1024


def _losses(M: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + M)
    # Per-sequence cross-entropies of a small LM: positive, a few nats, spread.
    return (2.0 + 1.5 * rng.standard_normal(M) ** 2).astype(np.float32)


def paths(M: int) -> Tuple[Dict[str, Callable[[], Any]], Dict[str, Optional[Callable[[], None]]], Dict[str, str]]:
    """The callables to time for one M: name -> fn, name -> sync, name -> twin name.

    Names: ``goreweight[torch]``, ``goreweight[numpy]``, ``goreweight[arrow]``,
    ``torch_reference`` and, on a CUDA machine, ``goreweight[cuda]`` and
    ``torch_reference[cuda]``. Paths the installed package lacks are skipped with
    a note.
    """
    import goreweight
    from goreweight import torch_reference

    kw = dict(strategy="linupper", r=1.0)
    host = _losses(M)
    t_cpu = torch.from_numpy(host.copy())
    fns: Dict[str, Callable[[], Any]] = {}
    syncs: Dict[str, Optional[Callable[[], None]]] = {}
    twin_of: Dict[str, str] = {}

    fns["goreweight[torch]"] = lambda: goreweight.weights(t_cpu, **kw)
    fns["goreweight[numpy]"] = lambda: goreweight.weights(host, **kw)
    try:
        import pyarrow as pa

        arr = pa.array(host, type=pa.float32())
        goreweight.weights(arr, **kw)
        fns["goreweight[arrow]"] = lambda: goreweight.weights(arr, **kw)
    except Exception as e:  # noqa: BLE001 - a missing path is reported, not fatal
        warn(f"goreweight Arrow path unavailable ({type(e).__name__}: {e}); skipped")
    fns["torch_reference"] = lambda: torch_reference.weights(t_cpu, **kw)
    for k in fns:
        syncs[k] = None
        twin_of[k] = "torch_reference"

    if torch.cuda.is_available():
        t_gpu = t_cpu.cuda()
        sync = torch.cuda.synchronize
        fns["goreweight[cuda]"] = lambda: goreweight.weights(t_gpu, **kw)
        fns["torch_reference[cuda]"] = lambda: torch_reference.weights(t_gpu, **kw)
        syncs["goreweight[cuda]"] = sync
        syncs["torch_reference[cuda]"] = sync
        twin_of["goreweight[cuda]"] = twin_of["torch_reference[cuda]"] = "torch_reference[cuda]"
    return fns, syncs, twin_of


def check_agreement(M: int) -> float:
    """Largest relative difference between goreweight's and the twin's weights
    (a sanity check that both sides compute the same thing)."""
    import goreweight
    from goreweight import torch_reference

    t = torch.from_numpy(_losses(M))
    a = torch.as_tensor(np.asarray(goreweight.weights(t, strategy="linupper", r=1.0)), dtype=torch.float64)
    b = torch_reference.weights(t, strategy="linupper", r=1.0).to(torch.float64)
    return float(((a - b).abs() / b.abs().clamp_min(1e-30)).max())


def run(rec: Records, sizes: List[int], repeats: int, target_s: float) -> str:
    """Measures and records table 1; returns it as text."""
    rows: List[List[str]] = []
    notes: List[str] = []
    for M in sizes:
        fns, syncs, twin_of = paths(M)
        names = list(fns)
        for name in names:  # warm up: first-call costs, allocator, library load
            fns[name]()
        ns = {name: calibrate(fns[name], target_s, syncs[name]) for name in names}
        times: Dict[str, List[float]] = {name: [] for name in names}
        for rep in range(repeats):
            k = rep % len(names)
            for name in names[k:] + names[:k]:  # rotate who goes first
                times[name].append(time_calls(fns[name], ns[name], syncs[name]))
        diff = check_agreement(M)
        rec.add(BENCH, f"M={M}", "goreweight[torch]", "max_rel_diff_vs_twin", diff)
        if not diff < 1e-4:
            notes.append(f"M={M}: goreweight and twin weights differ by {diff:.2e} (relative)")
        summ = {name: rec.add_summary(BENCH, f"M={M}", name, "us_per_call", [t * 1e6 for t in times[name]])
                for name in names}
        for name in names:
            twin = twin_of[name]
            ratio: Optional[Summary] = None
            if name.startswith("goreweight"):
                pairs = [b / a for a, b in zip(times[name], times[twin])]
                ratio = rec.add_summary(BENCH, f"M={M}", name, "speedup_vs_twin", pairs)
            s = summ[name]
            us = lambda v: f"{v:.1f}" if v < 1000 else f"{v:,.0f}"  # noqa: E731
            rows.append([
                str(M), name, fmt_range(s, us),
                f"{M / (s.median * 1e-6) / 1e6:.1f}" if s.median > 0 else "n/a",
                fmt_range(ratio, lambda v: f"{v:.2f}x") if ratio else "(baseline)",
            ])
            if ratio and name != "goreweight[cuda]":
                if M <= 1024 and ratio.median < GOAL_SMALL:
                    notes.append(f"M={M} {name}: {ratio.median:.1f}x faster, below the {GOAL_SMALL:.0f}x goal")
                if ratio.median < 1.0:
                    notes.append(f"M={M} {name}: SLOWER than the twin ({ratio.median:.2f}x)")
        anchor = ANCHOR_TORCH113_US.get(M)
        if anchor:
            rec.add(BENCH, f"M={M}", "torch_reference@pytorch1.13(anchor)", "us_per_call_median", anchor)
    out = table(["M", "impl", "us/call median [min..max]", "Melem/s", "speed-up vs twin [range]"], rows)
    anchors = ", ".join(f"M={m}: {v:g} us" for m, v in ANCHOR_TORCH113_US.items())
    out += f"\n(twin anchor with PyTorch 1.13 on these machines: {anchors}; {repeats} repeats, rotating order)"
    if notes:
        out += "\n" + "\n".join("  ! " + n for n in notes)
    return out
