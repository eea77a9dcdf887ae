"""Table 3: the Go trainer's model against the same GPT in PyTorch.

Each side runs in its own child process (so that its peak resident memory is
its own, read from ``wait4``), alternating Go, PyTorch, Go, ... (the side that
starts rotates). A run builds the model and AdamW, takes untimed warm-up steps,
then times steps of: forward (per-sequence losses), the mean loss, backward,
gradient clipping at 1.0, AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on
matrices and embeddings). Tokens/s of a run = B*T / its median step.

* Go: ``benchmarks/gostep`` (package gpt + optim called directly), built with
  ``-tags openblas`` when libopenblas links, else pure-Go gonum.
* PyTorch: ``benchmarks/torch_gpt.py``, eager, float32, scaled_dot_product_attention.

Threads, the same budget for both: 2 (``--threads``). Go: GOMAXPROCS=2 and the
layers split over 2 goroutines, each calling single-threaded OpenBLAS
(OPENBLAS_NUM_THREADS=1; the backend also pins it). PyTorch: torch.set_num_threads(2),
set_num_interop_threads(1), OMP_NUM_THREADS=MKL_NUM_THREADS=2, OPENBLAS_NUM_THREADS=1.

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
GOAL_SPEEDUP = 1.2
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


def build_go(tmp: str, openblas: bool = True, pkg: str = "./benchmarks/gostep") -> Tuple[Optional[str], str]:
    """Builds the Go command pkg into tmp; returns (binary or None, a note).
    Tries OpenBLAS first (unless ``openblas`` is False), then pure-Go gonum."""
    go = shutil.which("go")
    if not go:
        return None, "Go toolchain not found (go not on PATH): the Go side is skipped"
    if not os.path.isdir(os.path.join(ROOT, pkg)):
        return None, f"{pkg} is not in this checkout"
    exe = os.path.join(tmp, os.path.basename(pkg))
    env = dict(os.environ, CGO_ENABLED="1")
    notes = []
    for tags in ((["-tags", "openblas"], []) if openblas else ([],)):
        r = subprocess.run([go, "build", *tags, "-o", exe, pkg], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=900)
        if r.returncode == 0:
            return exe, "; ".join(notes)
        msg = (r.stderr.strip().splitlines() or ["?"])[-1]
        notes.append(f"build {' '.join(tags) or '(gonum)'} failed: {msg}")
    return None, "; ".join(notes)


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


def trainer_cmd(exe: str, cfg: TrainConfig, steps: int, threads: int, out: str) -> List[str]:
    """goreweight-train on real text (tinyshakespeare when present, else the
    built-in corpus), linupper, no evaluation or checkpoint before the end."""
    shakespeare = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt")
    data = ["--data", os.path.abspath(shakespeare)] if os.path.exists(shakespeare) else ["--data", "builtin"]
    tok = "byte" if cfg.vocab == 256 else "gpt2"
    cmd = [exe, "--strategy", "linupper", "--seed", "1", "--tokenizer", tok, *data, "--steps", str(steps), "--batch",
           str(cfg.batch), "--seq", str(cfg.seq), "--layers", str(cfg.layers), "--heads", str(cfg.heads),
           "--width", str(cfg.width), "--threads", str(threads), "--out", out, "--eval-every", str(10 * steps),
           "--ckpt-every", str(10 * steps), "--log-every", "1", "--quiet"]
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
        level: str, e2e: bool = False) -> str:
    """Measures and records table 3; returns it as text. With ``e2e``, the real
    goreweight-train (data, linupper weights, metrics; on tinyshakespeare when
    present) joins the rotation as a third side, for reference."""
    notes: List[str] = []
    env = child_env(threads)
    with tempfile.TemporaryDirectory(prefix="goreweight-bench-") as tmp:
        # tiny: gonum only, whose packages `go test ./...` has already compiled,
        # so the smoke test does not wait for a cold cgo build.
        gostep, note = build_go(tmp, openblas=level != "tiny")
        if note:
            notes.append(note)
        trainer = None
        if e2e and gostep:
            trainer, note = build_go(tmp, openblas=True, pkg="./goreweight/trainer/cmd/goreweight-train")
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
        for cname, cfg in configs.items():
            fpt = cfg.flops_per_token()
            rec.add(BENCH, cname, "-", "flops_per_token", fpt)
            sides: Dict[str, List[str]] = {}
            if gostep:
                sides["go"] = [gostep, *cfg.args(), "--steps", str(steps), "--warmup", str(warmup),
                               "--threads", str(threads)]
            sides["pytorch"] = [sys.executable, os.path.join(HERE, "torch_gpt.py"), *cfg.args(), "--steps",
                                str(steps), "--warmup", str(warmup), "--threads", str(threads)]
            if trainer:
                sides["train"] = trainer_cmd(trainer, cfg, warmup + steps, threads, os.path.join(tmp, "train-out"))
            res: Dict[str, List[Dict[str, Any]]] = {k: [] for k in sides}
            order = list(sides)
            for i in range(runs):
                k = i % len(order)
                for side in order[k:] + order[:k]:
                    rc, out, err, rss = run_child(sides[side], env, 1800)
                    if side == "train":
                        j = trainer_result(os.path.join(tmp, "train-out"), err, warmup)
                        shutil.rmtree(os.path.join(tmp, "train-out"), ignore_errors=True)
                    else:
                        j = last_json(out)
                    if rc != 0 or j is None:
                        tail = (err.strip().splitlines() or ["no output"])[-1]
                        notes.append(f"{cname} {side}: run failed (exit {rc}): {tail}")
                        continue
                    j["rss_kib"] = j["vmhwm_kib"] if side == "train" else peak_kib(j, rss)
                    res[side].append(j)
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
            if "go" in tok and "pytorch" in tok:
                g, p = res["go"], res["pytorch"]
                pairs = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(g, p)]
                ratio = rec.add_summary(BENCH, cname, _impl_name("go", g[0]), "speedup_vs_pytorch", pairs)
                mem = median([r["rss_kib"] for r in g]) / median([r["rss_kib"] for r in p])
                rec.add(BENCH, cname, _impl_name("go", g[0]), "rss_ratio_vs_pytorch", mem)
                for row in rows:
                    if row[0] == cname and row[2].startswith("goreweight-go"):
                        row[-1] = fmt_range(ratio, lambda v: f"{v:.2f}x")
                if cname in ("a", "b") and ratio.median < GOAL_SPEEDUP:
                    notes.append(f"{cname}: Go at {ratio.median:.2f}x PyTorch's tokens/s, below the {GOAL_SPEEDUP}x goal")
                if mem > 1:
                    notes.append(f"{cname}: Go's peak RSS is {mem:.2f}x PyTorch's")
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
    if notes:
        out += "\n" + "\n".join("  ! " + n for n in notes)
    return out


def _impl_name(side: str, j: Dict[str, Any]) -> str:
    if side == "go":
        return f"goreweight-go[{j.get('backend', '?')}]"
    if side == "pytorch[cuda]":
        return "pytorch[cuda]"
    if side == "train":
        return f"goreweight-train[{j.get('backend', '?')}](e2e)"
    return f"pytorch[{j.get('backend', '?')}]"
