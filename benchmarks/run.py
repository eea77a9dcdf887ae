#!/usr/bin/env python3
"""goreweight against pure PyTorch, side by side: the three benchmark tables.

    python benchmarks/run.py --quick              # all three tables, < 5 minutes
    python benchmarks/run.py                      # the full figures (benchmarks/RESULTS.md)
    python benchmarks/run.py --json out.json      # also every figure as JSON records
    python benchmarks/run.py --tables 1,3         # a subset

1. weights per call from Python, every goreweight exchange path against
   goreweight.torch_reference (bench_weights.py);
2. the extra time reweighting adds to a PyTorch GPT training step (bench_overhead.py);
3. the installed goreweight-train and goreweight.train() against the same GPT
   in PyTorch: tokens/s, peak memory, GF/s, the BLAS backend each runs
   (bench_trainer.py; needs the installed package, and says so when it is missing).

Tables 1-2 need the installed Python package (``pip install .``). Records are
``{"bench", "config", "impl", "metric", "value"}``. ``--tiny`` (or
GOREWEIGHT_BENCH_TINY=1) shrinks everything to seconds, for the test that keeps
the scripts from rotting; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sizes/repeats/steps: under 5 minutes")
    ap.add_argument("--tiny", action="store_true", default=os.environ.get("GOREWEIGHT_BENCH_TINY") == "1",
                    help="seconds-long smoke run (M in {128, 1024}, 1 repeat, a 1-step tiny model)")
    ap.add_argument("--json", metavar="PATH", help="write every figure as a JSON list of records")
    ap.add_argument("--tables", default="1,2,3", help="comma-separated subset of 1,2,3")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for both sides (default 2)")
    ap.add_argument("--configs", default=None, help="table 3 configurations, e.g. a,b (default a,b,c)")
    ap.add_argument("--gostep", action="store_true",
                    help="table 3: also time benchmarks/gostep (the model and AdamW alone, built here)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="MIN",
                    help="first wait up to MIN minutes for a quiet machine (a minute of 1-min load < 1.5 "
                         "and no other process above 20%% of a CPU)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    a = parse(argv)
    tables = {t.strip() for t in a.tables.split(",") if t.strip()}
    bad = tables - {"1", "2", "3"}
    if bad:
        print(f"run.py: unknown table(s) {sorted(bad)}; want 1, 2, 3", file=sys.stderr)
        return 2
    # The same thread budget for every library, set before torch loads its pools.
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(a.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ.setdefault("GOMAXPROCS", str(a.threads))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    import torch

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    from common import LoadMonitor, Records, busy_processes, load_average, machine_info, say

    rec = Records()
    if a.wait_quiet > 0:  # quiet = a full minute with no busy process and a low load
        deadline, quiet_since = time.time() + 60 * a.wait_quiet, None
        while time.time() < deadline:
            if load_average()[0] < 1.5 and not busy_processes():
                quiet_since = quiet_since or time.time()
                if time.time() - quiet_since >= 60:
                    break
            else:
                quiet_since = None
            time.sleep(5)
    mode = "tiny" if a.tiny else ("quick" if a.quick else "full")
    info = machine_info()
    busy = busy_processes()
    load0 = load_average()[0]
    under_load = bool(load0 > 1.5 or busy)
    say(f"# goreweight benchmarks ({mode})")
    say(f"machine: {info['nproc']} CPUs, {info['cpu']}; Python {info['python']}, torch {info['torch']} "
        f"({a.threads} threads), goreweight {info['goreweight']}, CUDA: {info['cuda'] or 'none'}")
    say(f"load average at start: {load0:.2f}" + (f"; busy: {', '.join(busy[:8])}" if busy else ""))
    if under_load:
        say("WARNING: the machine is not quiet; timings are taken under load and are noisy")
    rec.add("env", "machine", "-", "nproc", info["nproc"] or 0)
    rec.add("env", "machine", "-", "threads", a.threads)
    rec.add("env", "machine", "-", "loadavg1_start", load0)
    rec.add("env", "machine", "-", "cuda_available", 1 if info["cuda"] else 0)
    t_start = time.time()
    monitor = LoadMonitor().start()
    failed = False

    def section(title: str, fn) -> None:
        nonlocal failed
        say(f"\n## {title}\n")
        t0 = time.time()
        try:
            say(fn())
        except ImportError as e:
            say(f"UNAVAILABLE: {e} (install the package: pip install .)")
        except Exception:  # noqa: BLE001 - report, go on with the other tables
            failed = True
            say("FAILED:\n" + traceback.format_exc())
        t1 = time.time()
        busy = monitor.window(t0, t1)
        key = title.split(".")[0]
        if busy == busy:
            rec.add("env", f"table{key}", "-", "other_processes_cpus_mean", busy)
        say(f"({t1 - t0:.0f} s" + (f"; other processes used {busy:.2f} CPUs meanwhile"
                                  + (": UNDER LOAD" if busy > 0.1 else "") if busy == busy else "") + ")")

    if "1" in tables:
        def t1() -> str:
            import bench_weights as bw

            sizes = bw.SIZES_TINY if a.tiny else bw.SIZES_FULL
            reps, target = (1, 0.002) if a.tiny else ((5, 0.04) if a.quick else (11, 0.2))
            return bw.run(rec, sizes, reps, target)

        section("1. Weights per call from Python (float32, CPU, linupper, r=1)", t1)

    if "2" in tables:
        def t2() -> str:
            import goreweight  # noqa: F401 - fail early and clearly if not installed

            import bench_overhead as bo
            from bench_trainer import CONFIGS, TINY
            from torch_gpt import GPTConfig

            def gc(c):
                return GPTConfig(vocab=c.vocab, seq=c.seq, layers=c.layers, heads=c.heads, width=c.width), c.batch

            if a.tiny:
                return bo.run(rec, {"tiny": gc(TINY["tiny"])}, 1, 0)
            if a.quick:
                return bo.run(rec, {"a": gc(CONFIGS["a"])}, 12, 1)
            return bo.run(rec, {"a": gc(CONFIGS["a"]), "b": gc(CONFIGS["b"])}, 30, 2)

        section("2. Overhead inside a PyTorch GPT training step", t2)

    if "3" in tables:
        def t3() -> str:
            import bench_trainer as bt

            if a.tiny:
                return bt.run(rec, bt.TINY, runs=1, steps=1, warmup=0, threads=a.threads, level="tiny")
            names = (a.configs or "a,b,c").split(",")
            unknown = [n for n in names if n not in bt.CONFIGS]
            if unknown:
                raise ValueError(f"unknown configuration(s) {unknown}; want a subset of a,b,c")
            cfgs = {n: bt.CONFIGS[n] for n in names}
            if a.quick:
                return bt.run(rec, cfgs, runs=2, steps=4, warmup=1, threads=a.threads, level="quick", gostep=a.gostep)
            return bt.run(rec, cfgs, runs=5, steps=10, warmup=2, threads=a.threads, level="full", gostep=a.gostep)

        section(f"3. Trainer: Go GPT against the same GPT in PyTorch ({a.threads} threads, float32, AdamW)", t3)

    others_mean, others_max = monitor.stop()
    if others_mean == others_mean:  # measured
        under_load = under_load or others_mean > 0.1
        rec.add("env", "machine", "-", "other_processes_cpus_mean", others_mean)
        rec.add("env", "machine", "-", "other_processes_cpus_max", others_max)
    rec.add("env", "machine", "-", "loadavg1_end", load_average()[0])
    rec.add("env", "machine", "-", "under_load", 1 if under_load else 0)
    rec.add("env", "machine", "-", "wall_s", time.time() - t_start)
    others = (f"other processes used {others_mean:.2f} CPUs on average (max {others_max:.2f}) during the run"
              if others_mean == others_mean else "other processes' CPU use not sampled (run too short)")
    say(f"\ntotal {time.time() - t_start:.0f} s; {others}" + ("; taken UNDER LOAD" if under_load else "; machine quiet"))
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rec.as_list(), f, indent=1)
        os.replace(tmp, a.json)
        say(f"wrote {len(rec.items)} records to {a.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
