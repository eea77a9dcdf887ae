"""Memory over time: the resident set size over 10^6 Python calls of each
exchange path, sampled every 10^5 calls.

Paths (each in a fresh state of this one process, one after the other):

* ``torch``: ``goreweight.weights(tensor)`` (raw pointers, the packed call);
* ``numpy``: ``goreweight.weights(ndarray, return_stats=True)`` (a stats
  string is allocated by Go and freed by Python on every call);
* ``arrow``: ``goreweight.weights(pyarrow.Array)`` (the C Data Interface:
  the array is moved to Go and released there);
* ``packed``: the raw ``grw_weights_packed`` entry point on a prebuilt
  argument block, no Python conversion at all;
* ``errors``: a call that fails in Go (``nonfinite="raise"``), so the error
  message is allocated, read and freed every time.

Every path warms up for ``--warmup`` calls (caches, Go heap, allocator
pools) before its first sample. For each path the script reports the RSS at
the first and the last sample, and the least-squares slope in MB per 10^6
calls, over all samples and over the second half (past the allocators'
warm-up); a leak of one small allocation per call shows as a slope of tens of
MB. Run it at low priority on a shared machine::

    nice -n 19 python benchmarks/bench_memory.py            # 10^6 calls per path
    nice -n 19 python benchmarks/bench_memory.py --calls 200000 --every 20000

Linux only (it reads /proc/self/statm). Not a unit test: it measures and
prints; ``--json FILE`` also writes the samples.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Callable, Dict, List

import numpy as np
import torch

import goreweight
from goreweight import _lib
from goreweight._exchange.go import Target, go_raw


def rss_mb() -> float:
    """The resident set size of this process in MB (10^6 bytes)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def slope_per_million(calls: List[int], mb: List[float]) -> float:
    """Least-squares slope of mb over calls, in MB per 10^6 calls."""
    x = np.asarray(calls, dtype=np.float64)
    y = np.asarray(mb, dtype=np.float64)
    if len(x) < 2:
        return 0.0
    xm = x - x.mean()
    return float((xm * (y - y.mean())).sum() / (xm * xm).sum() * 1e6)


def make_paths(m: int) -> Dict[str, Callable[[], object]]:
    """The callables, one call each, over a batch of m losses."""
    import pyarrow as pa

    rng = np.random.default_rng(0)
    a = (2.0 + rng.standard_normal(m) ** 2).astype(np.float32)
    t = torch.from_numpy(a.copy())
    arr = pa.array(a)
    bad = np.array([1.0, float("nan")], dtype=np.float32)

    h = _lib.new_handle("grw_weigher_new", '{"strategy": "linupper"}')
    target = Target(h, False)
    out = np.empty(m, dtype=np.float32)
    lp, op = a.ctypes.data, out.ctypes.data

    def errors() -> None:
        try:
            goreweight.weights(bad, nonfinite="raise")
        except goreweight.GoreweightError:
            pass

    return {
        "torch": lambda: goreweight.weights(t, "linupper", 0.5),
        "numpy": lambda: goreweight.weights(a, "quadratic", 1.0, return_stats=True),
        "arrow": lambda: goreweight.weights(arr, "linupper", 0.5),
        "packed": lambda: go_raw(target, 0.5, lp, None, m, op, False),
        "errors": errors,
    }


def run_path(fn: Callable[[], object], calls: int, every: int, warmup: int) -> Dict[str, object]:
    """Calls fn warmup + calls times and samples the RSS every `every` calls."""
    for _ in range(warmup):
        fn()
    xs, ys = [0], [rss_mb()]
    t0 = time.perf_counter()
    done = 0
    while done < calls:
        k = min(every, calls - done)
        for _ in range(k):
            fn()
        done += k
        xs.append(done)
        ys.append(rss_mb())
    wall = time.perf_counter() - t0
    return {
        "calls": xs,
        "rss_mb": ys,
        "start_mb": ys[0],
        "end_mb": ys[-1],
        "growth_mb": ys[-1] - ys[0],
        "slope_mb_per_1e6": slope_per_million(xs, ys),
        # the second half only: past the warm-up of allocator caches
        "late_slope_mb_per_1e6": slope_per_million(xs[len(xs) // 2:], ys[len(ys) // 2:]),
        "wall_s": wall,
    }


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000, help="calls per path (default 10^6)")
    ap.add_argument("--every", type=int, default=100_000, help="sample the RSS every N calls (default 10^5)")
    ap.add_argument("--warmup", type=int, default=20_000, help="calls before the first sample")
    ap.add_argument("--batch", type=int, default=256, help="losses per call")
    ap.add_argument("--paths", default="torch,numpy,arrow,packed,errors", help="comma-separated subset")
    ap.add_argument("--json", default="", help="also write the results to this file")
    a = ap.parse_args(argv)
    if not os.path.exists("/proc/self/statm"):
        print("bench_memory: needs /proc/self/statm (Linux)", file=sys.stderr)
        return 2
    paths = make_paths(a.batch)
    names = [p for p in a.paths.split(",") if p]
    unknown = [p for p in names if p not in paths]
    if unknown:
        print(f"bench_memory: unknown path(s) {unknown}; known: {sorted(paths)}", file=sys.stderr)
        return 2
    print(f"goreweight {goreweight.__version__}, library {goreweight.library_version()}; "
          f"{a.calls} calls per path, batch {a.batch}, sampled every {a.every}, warm-up {a.warmup}")
    print(f"{'path':8} {'start MB':>9} {'end MB':>9} {'growth MB':>10} {'slope MB/1e6 calls':>19} "
          f"{'2nd half slope':>15} {'wall s':>8}")
    results = {}
    for name in names:
        r = run_path(paths[name], a.calls, a.every, a.warmup)
        results[name] = r
        print(f"{name:8} {r['start_mb']:9.1f} {r['end_mb']:9.1f} {r['growth_mb']:10.2f} "
              f"{r['slope_mb_per_1e6']:19.2f} {r['late_slope_mb_per_1e6']:15.2f} {r['wall_s']:8.1f}", flush=True)
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"calls": a.calls, "every": a.every, "batch": a.batch, "warmup": a.warmup,
                       "paths": results}, f, indent=1)
        os.replace(tmp, a.json)  # atomic
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
