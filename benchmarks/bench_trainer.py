"""Table 3: the Go trainer's model against the same GPT in PyTorch.

Each side runs in its own child process (so that its peak resident memory is
its own, read from ``wait4``), alternating Go, PyTorch, Go, ... (the side that
starts rotates). A run builds the model and AdamW, takes untimed warm-up steps,
then times steps of: forward (per-sequence losses), the mean loss, backward,
gradient clipping at 1.0, AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on
matrices and embeddings). Tokens/s of a run = B*T / its median step.

* Go, as installed (what users run; nothing is built here):
  ``goreweight-train``, the binary ``pip install .`` put in the package
  (``goreweight._train.binary_path()``), and ``goreweight.train()``, the shared
  library Python loads (``benchmarks/train_lib.py``). Both run the whole trainer
  (batches from the built-in corpus, linupper weights from the core, metrics),
  so they do a little more per step than the PyTorch side. Tokens/s of a run is
  the median of its per-step metrics records after the warm-up; each names its
  BLAS backend, and a gonum build is flagged loudly (it is ~6x slower).
  ``--gostep`` adds ``benchmarks/gostep`` (package gpt + optim called directly,
  built here with the installed package's backend) for reference.
* PyTorch: ``benchmarks/torch_gpt.py``, eager, float32, scaled_dot_product_attention.

Threads, the same budget for both: 2 (``--threads``). Go: GOMAXPROCS=2 and the
layers split over 2 goroutines, each calling single-threaded OpenBLAS
(OPENBLAS_NUM_THREADS=1; the backend also pins it). PyTorch: torch.set_num_threads(2),
set_num_interop_threads(1), OMP_NUM_THREADS=MKL_NUM_THREADS=2, OPENBLAS_NUM_THREADS=1.
The Go/PyTorch ratio pairs each goreweight-train run with the PyTorch run of the
same round.

FLOPs per token, the standard count (PaLM, Chowdhery et al. 2022, app. B):
6*N + 12*L*C*T, with N the parameters of every matrix product: 12*L*C^2 in the
blocks plus V*C for the tied head (position embeddings, biases and LayerNorm are
left out, and the causal mask's skipped half of the attention is counted as done).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch

from common import Records, Summary, fmt_range, median, say, table, warn

BENCH = "trainer"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOAL_SPEEDUP = 1.2  # configs a and b
GOAL_SPEEDUP_C = 1.5
ANCHOR_TORCH113 = {"a": 8200.0, "b": 1170.0, "c": 600.0}


@dataclass
class TrainConfig:
    """One configuration of the table."""

    name: str
    vocab: int
    layers: int
    heads: int
    width: int
    seq: int
    batch: int

    def args(self) -> List[str]:
        return ["--vocab", str(self.vocab), "--layers", str(self.layers), "--heads", str(self.heads),
                "--width", str(self.width), "--seq", str(self.seq), "--batch", str(self.batch)]

    def flops_per_token(self) -> float:
        L, C, V, T = self.layers, self.width, self.vocab, self.seq
        return 6.0 * (12 * L * C * C + V * C) + 12.0 * L * C * T

    def describe(self) -> str:
        voc = "byte" if self.vocab == 256 else ("gpt2" if self.vocab == 50257 else str(self.vocab))
        return f"{voc} {self.layers}/{self.heads}/{self.width} T={self.seq} B={self.batch}"


CONFIGS = {
    "a": TrainConfig("a", 256, 4, 4, 128, 128, 16),
    "b": TrainConfig("b", 256, 6, 6, 384, 256, 8),
    "c": TrainConfig("c", 50257, 4, 4, 256, 128, 8),
}
TINY = {"tiny": TrainConfig("tiny", 256, 1, 2, 32, 16, 2)}


# ---------------------------------------------------------------- children


def run_child(cmd: List[str], env: Dict[str, str], timeout: float) -> Tuple[int, str, str, int]:
    """Runs cmd; returns (exit code, stdout, stderr, peak RSS in KiB from wait4)."""
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=ROOT)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            out = p.stdout.read() if p.stdout else b""
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.stdout:
            p.stdout.close()
        err.seek(0)
        return p.returncode, out.decode(errors="replace"), err.read().decode(errors="replace"), ru.ru_maxrss


def child_env(threads: int) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": "1",
        "GOMAXPROCS": str(threads),
    })
    env["PYTHONPATH"] = HERE + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def last_json(text: str) -> Optional[Dict[str, Any]]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


# ---------------------------------------------------------------- builds


def installed_build() -> Tuple[Optional[str], Dict[str, Any], str]:
    """(path of the installed goreweight-train or None, build.json of the
    installed package, a note)."""
    try:
        import goreweight
        from goreweight import _train
    except ImportError as e:
        return None, {}, f"the goreweight package is not installed ({e}): pip install ."
    info: Dict[str, Any] = {}
    try:
        with open(os.path.join(os.path.dirname(goreweight.__file__), "_lib", "build.json")) as f:
            info = json.load(f)
    except (OSError, json.JSONDecodeError):
        pass
    exe = _train.binary_path()
    if not os.path.exists(exe):
        return None, info, f"the installed package has no goreweight-train ({exe})"
    return exe, info, ""


def build_go(tmp: str, tags: List[str], pkg: str = "./benchmarks/gostep") -> Tuple[Optional[str], str]:
    """Builds the Go command pkg into tmp with the given build tags (the cgo
    flags for scipyopenblas from the installed scipy_openblas32); returns
    (binary or None, a note)."""
    go = shutil.which("go")
    if not go:
        return None, "Go toolchain not found (go not on PATH): gostep is skipped"
    if not os.path.isdir(os.path.join(ROOT, pkg)):
        return None, f"{pkg} is not in this checkout"
    exe = os.path.join(tmp, os.path.basename(pkg))
    env = dict(os.environ, CGO_ENABLED="1")
    if "scipyopenblas" in tags:
        import scipy_openblas32 as sob  # type: ignore[import-not-found]

        env["CGO_CFLAGS"] = f"-O2 -g -I{sob.get_include_dir()}"
        env["CGO_LDFLAGS"] = f"-L{sob.get_lib_dir()} -Wl,-rpath,{sob.get_lib_dir()}"
    cmd = [go, "build"] + (["-tags", ",".join(tags)] if tags else []) + ["-o", exe, pkg]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode == 0:
        return exe, ""
    return None, f"build {' '.join(cmd[2:-3]) or '(gonum)'} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"


def fma_peak(tmp: str, threads: int, level: str) -> Tuple[float, str]:
    """Best GFLOP/s of benchmarks/peak/fma.c on ``threads`` threads, over AVX2 and
    -march=native builds; (nan, why) without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return float("nan"), "no C compiler: FMA peak not measured"
    src = os.path.join(HERE, "peak", "fma.c")
    best, how = float("nan"), ""
    for flags, label in ((["-mavx2", "-mfma"], "AVX2"), (["-march=native"], "native")):
        exe = os.path.join(tmp, "fma_" + label)
        r = subprocess.run([cc, "-O3", *flags, "-pthread", src, "-o", exe], capture_output=True, text=True)
        if r.returncode != 0:
            continue
        reps, iters = {"tiny": (1, 2_000_000), "quick": (2, 20_000_000)}.get(level, (5, 100_000_000))
        for _ in range(reps):
            out = subprocess.run([exe, str(threads), str(iters)], capture_output=True, text=True, timeout=300).stdout
            j = last_json(out)
            if j and not (j["gflops"] <= best):
                best, how = j["gflops"], f"{label}, {j['width']}-wide FMA chains, {threads} threads"
    return best, how


def matmul_peak(threads: int, level: str) -> float:
    """Best GFLOP/s of a large float32 torch.mm on ``threads`` threads (a practical peak)."""
    import time

    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        n = {"tiny": 256, "quick": 1024}.get(level, 2048)
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        torch.mm(a, b, out=c)
        best = 0.0
        for _ in range(3 if level != "full" else 10):
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            best = max(best, 2.0 * n ** 3 / (time.perf_counter() - t0) / 1e9)
        return best
    finally:
        torch.set_num_threads(old)


def trainer_config(cfg: TrainConfig, steps: int, threads: int, out: str) -> Dict[str, Any]:
    """The trainer configuration of one Go run: linupper on a 1 MiB built-in
    corpus, one validation window per domain, no evaluation or checkpoint
    before the end, a metrics record every step."""
    return {"strategy": "linupper", "seed": 1, "tokenizer": "byte" if cfg.vocab == 256 else "gpt2", "data": "builtin",
            "data_bytes": 1 << 20, "steps": steps, "batch": cfg.batch, "seq": cfg.seq, "layers": cfg.layers,
            "heads": cfg.heads, "width": cfg.width, "threads": threads, "out": out, "eval_every": 10 * steps,
            "ckpt_every": 10 * steps, "log_every": 1, "val_max": 1, "quiet": True}


def trainer_cmd(exe: str, cfg: TrainConfig, steps: int, threads: int, out: str) -> List[str]:
    """The goreweight-train command line of trainer_config."""
    cmd = [exe]
    for k, v in trainer_config(cfg, steps, threads, out).items():
        if v is True:
            cmd.append("--" + k.replace("_", "-"))
        else:
            cmd += ["--" + k.replace("_", "-"), str(v)]
    # GNU time waits for the trainer itself, so its maxrss is the trainer's own
    # (not this Python process's, which a direct child would inherit).
    return (["/usr/bin/time", "-v"] + cmd) if os.path.exists("/usr/bin/time") else cmd


def trainer_result(out_dir: str, stderr: str, warmup: int) -> Optional[Dict[str, Any]]:
    """tokens/s of a goreweight-train run: the median of its per-step metrics
    records after ``warmup`` steps (else its summary's), and the peak RSS that
    /usr/bin/time -v reported (-1 without it)."""
    try:
        with open(os.path.join(out_dir, "summary.json")) as f:
            summ = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    run0 = summ["runs"][0]
    tps = []
    try:
        with open(os.path.join(out_dir, "metrics.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                if r.get("step", 0) > warmup and isinstance(r.get("tokens_per_s"), (int, float)):
                    tps.append(float(r["tokens_per_s"]))
    except (OSError, json.JSONDecodeError):
        pass
    rss = -1
    for line in stderr.splitlines():
        if "Maximum resident set size (kbytes):" in line:
            rss = int(line.rsplit(":", 1)[1])
    return {"tokens_per_s": median(tps) if tps else float(run0["tokens_per_s"]), "vmhwm_kib": rss,
            "backend": summ.get("backend", "?"), "params": summ.get("params", 0)}


def peak_kib(j: Dict[str, Any], wait4_kib: int) -> int:
    """A child's peak RSS: its own VmHWM report where it has one. wait4's
    ru_maxrss is only the fallback: Linux carries the parent's peak into a child
    across fork+exec, so a child of this (PyTorch-sized) process reads too high."""
    v = int(j.get("vmhwm_kib", -1))
    return v if v > 0 else wait4_kib


def torch_import_rss(env: Dict[str, str]) -> int:
    """Peak RSS (KiB) of a Python process that only imports torch and makes a tensor."""
    code = ("import json, torch; from torch_gpt import vmhwm_kib; torch.zeros(1); "
            "print(json.dumps({'vmhwm_kib': vmhwm_kib()}))")
    _, out, _, rss = run_child([sys.executable, "-c", code], env, 120)
    return peak_kib(last_json(out) or {}, rss)


# ---------------------------------------------------------------- the table


def run(rec: Records, configs: Dict[str, TrainConfig], runs: int, steps: int, warmup: int, threads: int,
        level: str, gostep: bool = False, lib: bool = True) -> str:
    """Measures and records table 3; returns it as text. The sides: the
    installed goreweight-train, the installed library (``lib``), PyTorch, and
    with ``gostep`` a gostep binary built here for reference."""
    notes: List[str] = []
    env = child_env(threads)
    with tempfile.TemporaryDirectory(prefix="goreweight-bench-") as tmp:
        trainer, build, note = installed_build()
        if note:
            notes.append(note)
        if build:
            rec.add(BENCH, "machine", f"installed[{build.get('blas', '?')}]", "gonum_build",
                    1 if build.get("blas") == "gonum" else 0)
        gostep_exe = None
        if gostep:
            gostep_exe, note = build_go(tmp, list(build.get("tags", [])))
            if note:
                notes.append(note)
        # The peaks are measured before and after the configurations and the
        # better kept: a peak taken while something else ran would flatter
        # every fraction of it.
        peak, peak_how = fma_peak(tmp, threads, level)
        mm = matmul_peak(threads, level)
        base_rss = torch_import_rss(env) if level != "tiny" else 0  # tiny: save a PyTorch start-up
        if base_rss > 0:
            rec.add(BENCH, "machine", "pytorch(import only)", "peak_rss_mib", base_rss / 1024)

        rows: List[List[str]] = []
        gonum_sides: set = set()
        for cname, cfg in configs.items():
            fpt = cfg.flops_per_token()
            rec.add(BENCH, cname, "-", "flops_per_token", fpt)
            sides: Dict[str, List[str]] = {}
            out_dir = os.path.join(tmp, "train-out")
            if trainer:
                sides["train"] = trainer_cmd(trainer, cfg, warmup + steps, threads, out_dir)
            sides["pytorch"] = [sys.executable, os.path.join(HERE, "torch_gpt.py"), *cfg.args(), "--steps",
                                str(steps), "--warmup", str(warmup), "--threads", str(threads)]
            if trainer and lib:
                sides["lib"] = [sys.executable, os.path.join(HERE, "train_lib.py"),
                                json.dumps(trainer_config(cfg, warmup + steps, threads, out_dir)), str(warmup)]
            if gostep_exe:
                sides["go"] = [gostep_exe, *cfg.args(), "--steps", str(steps), "--warmup", str(warmup),
                               "--threads", str(threads)]
            res: Dict[str, List[Dict[str, Any]]] = {k: [] for k in sides}
            order = list(sides)
            for i in range(runs):
                k = i % len(order)
                for side in order[k:] + order[:k]:
                    rc, out, err, rss = run_child(sides[side], env, 1800)
                    if side == "train":
                        j = trainer_result(out_dir, err, warmup)
                    else:
                        j = last_json(out)
                    shutil.rmtree(out_dir, ignore_errors=True)
                    if rc != 0 or j is None:
                        tail = (err.strip().splitlines() or ["no output"])[-1]
                        notes.append(f"{cname} {side}: run failed (exit {rc}): {tail}")
                        continue
                    j["rss_kib"] = j["vmhwm_kib"] if side == "train" else peak_kib(j, rss)
                    res[side].append(j)
                    if side in ("train", "lib") and str(j.get("backend", "")).startswith("gonum"):
                        gonum_sides.add(_impl_name(side, j))
            if torch.cuda.is_available():
                rc, out, err, rss = run_child(sides["pytorch"] + ["--device", "cuda"], env, 1800)
                j = last_json(out)
                if j:
                    j["rss_kib"] = peak_kib(j, rss)
                    res["pytorch[cuda]"] = [j]
            tok: Dict[str, Summary] = {}
            for side, runs_ in res.items():
                if not runs_:
                    continue
                impl = _impl_name(side, runs_[0])
                t = rec.add_summary(BENCH, cname, impl, "tokens_per_s", [r["tokens_per_s"] for r in runs_])
                rss_ = [r["rss_kib"] / 1024 for r in runs_ if r["rss_kib"] > 0]
                m = rec.add_summary(BENCH, cname, impl, "peak_rss_mib", rss_) if rss_ else Summary.of([])
                gfs = t.median * fpt / 1e9
                rec.add(BENCH, cname, impl, "gflops", gfs)
                rec.add(BENCH, cname, impl, "params", runs_[0]["params"])
                tok[side] = t
                rows.append([
                    cname, cfg.describe(), impl, fmt_range(t, lambda v: f"{v:,.0f}"),
                    fmt_range(m, lambda v: f"{v:,.0f}") if m.n else "n/a", f"{gfs:.1f}", "", "", "",
                ])
            for side in ("train", "lib", "go"):
                if side not in tok or "pytorch" not in tok:
                    continue
                g, p = res[side], res["pytorch"]
                # the runs of one round are paired (a failed run drops its round)
                pairs = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(g, p)]
                impl = _impl_name(side, g[0])
                ratio = rec.add_summary(BENCH, cname, impl, "speedup_vs_pytorch", pairs)
                mem = median([r["rss_kib"] for r in g]) / median([r["rss_kib"] for r in p])
                rec.add(BENCH, cname, impl, "rss_ratio_vs_pytorch", mem)
                for row in rows:
                    if row[0] == cname and row[2] == impl:
                        row[-1] = fmt_range(ratio, lambda v: f"{v:.2f}x")
                if side != "train":
                    continue
                goal = GOAL_SPEEDUP_C if cname == "c" else GOAL_SPEEDUP
                if cname in ("a", "b", "c") and ratio.median < goal:
                    notes.append(f"{cname}: goreweight-train at {ratio.median:.2f}x PyTorch's tokens/s, "
                                 f"below the {goal}x goal")
                if mem > 1:
                    notes.append(f"{cname}: goreweight-train's peak RSS is {mem:.2f}x PyTorch's")
            if cname in ANCHOR_TORCH113:
                rec.add(BENCH, cname, "pytorch1.13(anchor)", "tokens_per_s_median", ANCHOR_TORCH113[cname])
        peak2, how2 = fma_peak(tmp, threads, level)
        if peak2 == peak2 and not peak2 <= peak:
            peak, peak_how = peak2, how2
        mm = max(mm, matmul_peak(threads, level))
    if peak == peak:
        rec.add(BENCH, "machine", "fma-peak", "gflops", peak)
    else:
        notes.append(peak_how)
    rec.add(BENCH, "machine", "torch.mm", "gflops", mm)
    for row in rows:  # the fractions, now that the peaks are final
        gfs, cpu = float(row[5]), row[2] != "pytorch[cuda]"
        row[6] = f"{100 * gfs / peak:.1f}%" if peak == peak and cpu else "-"
        row[7] = f"{100 * gfs / mm:.1f}%" if cpu else "-"
        if peak == peak and cpu:
            rec.add(BENCH, row[0], row[2], "frac_of_fma_peak", gfs / peak)
        if cpu:
            rec.add(BENCH, row[0], row[2], "frac_of_torch_mm", gfs / mm)
    out = table(["cfg", "shape", "impl", "tokens/s median [min..max]", "peak RSS MiB", "GF/s", "% FMA peak",
                 "% torch.mm", "Go/PyTorch tok/s"], rows)
    out += (f"\n(machine: FMA peak {peak:.1f} GF/s ({peak_how}); torch.mm {mm:.1f} GF/s, {threads} threads; "
            + (f"PyTorch import alone: {base_rss / 1024:.0f} MiB RSS)" if base_rss > 0 else "PyTorch import alone: not measured)"))
    out += (f"\n(FLOPs/token = 6*(12*L*C^2 + V*C) + 12*L*C*T; {runs} alternating runs per side, "
            f"{warmup} warm-up + {steps} timed steps each; anchors PyTorch 1.13: "
            + ", ".join(f"{k} {v:,.0f}" for k, v in ANCHOR_TORCH113.items()) + " tok/s)")
    if build:
        out += (f"\n(installed package built with BLAS {build.get('blas', '?')!r}; the impl column names the "
                "backend each program reported at run time)")
    if os.environ.get("OPENBLAS_CORETYPE"):
        out += (f"\n(OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} in the environment forces OpenBLAS's "
                "kernel set; without it OpenBLAS picks one for the CPU)")
    if gonum_sides:
        out += ("\n  !!! GONUM BUILD: " + ", ".join(sorted(gonum_sides)) + " ran on pure-Go gonum, not "
                "OpenBLAS: these are NOT the figures of a normal `pip install .` (which links "
                "scipy-openblas32); reinstall without GOREWEIGHT_BLAS=gonum !!!")
    if notes:
        out += "\n" + "\n".join("  ! " + n for n in notes)
    return out


def _impl_name(side: str, j: Dict[str, Any]) -> str:
    if side == "go":
        return f"goreweight-go[{j.get('backend', '?')}]"
    if side == "pytorch[cuda]":
        return "pytorch[cuda]"
    if side == "train":
        return f"goreweight-train[{j.get('backend', '?')}]"
    if side == "lib":
        return f"goreweight.train[{j.get('backend', '?')}]"
    return f"pytorch[{j.get('backend', '?')}]"
