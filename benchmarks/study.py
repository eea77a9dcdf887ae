#!/usr/bin/env python3
"""Does loss-based reweighting help here? A resumable study with error bars.

One command runs five comparisons with ``goreweight-train`` (every one with
several seeds, each strategy paired with uniform on the same seed) and writes
a Markdown report with plots::

    pip install ".[study]"                            # matplotlib, for the interval plots
    python benchmarks/study.py --scale tiny           # ~25 minutes on 2 cores, pure-Go backend
    python benchmarks/study.py --scale small          # the README's default model, ~15 minutes with scipy-openblas
    python benchmarks/study.py --scale medium         # 0.8M parameters, ~1 hour on 2 quiet cores with scipy-openblas
    python benchmarks/study.py --scale large --parts a  # 1.8M parameters, 2x the tokens: part (a) in ~35 minutes
    python benchmarks/study.py --scale full           # sized (not run) for ~1 hour per part

The parts (``--parts a,b,c,d,e`` picks some):

  a. uniform vs linupper vs quadratic vs extremes (the continuous anneal r 100 -> 1);
  b. linupper at a fixed r in {0.2, 0.4, 0.6, 0.8, 1.0, 100} after the uniform warm-up;
  c. the strategies with 20% of the training windows replaced by random tokens (--noise 0.2);
  d. linupper with batch M = 16 against M = 64 (min-max normalisation over a small batch is noisy),
     at the same number of training tokens (a quarter of the steps) and at the same number of steps;
  e. max w·M of each strategy and r against 2 (Theorem 1) and the worst case, and extremes at
     r = 0.4 with and without the cap 2/M that enforces it.

Every comparison is one ``goreweight-train --seeds ...`` run in its own directory under ``--out``;
a directory with a summary.json is reused, one with a config.json but no summary is resumed
(``--resume``), so an interrupted study continues where it stopped. The statistics (paired
differences, t intervals, evaluation noise) are the trainer's own (summary.json); this script
only runs, collects and reports. Nothing here is tuned to make a strategy win: every variant
uses the trainer's defaults except the setting the part is about.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Model, data and seeds per scale. tiny runs the whole study in about 20 minutes on 2 shared
# cores with the pure-Go backend; small is the README's default model; medium is the largest
# model whose whole grid (every part, 3 seeds, about 100 models) trains in about an hour on 2
# quiet cores with scipy-openblas (one model: ~37 s); large is the next step up (1.8M
# parameters, 1.2M tokens per model: ~4x medium's compute), run for part (a); full is sized,
# not measured, for about an hour per part.
SCALES: Dict[str, Dict[str, Any]] = {
    "tiny": {"layers": 1, "heads": 2, "width": 32, "seq": 32, "batch": 16, "steps": 400, "seeds": [1, 2, 3, 4, 5],
             "val_max": 64, "eval_every": 50},
    "small": {"layers": 2, "heads": 4, "width": 64, "seq": 64, "batch": 16, "steps": 600, "seeds": [1, 2, 3],
              "val_max": 128, "eval_every": 100},
    "medium": {"layers": 4, "heads": 4, "width": 128, "seq": 64, "batch": 16, "steps": 600, "seeds": [1, 2, 3],
               "val_max": 128, "eval_every": 100},
    "large": {"layers": 4, "heads": 6, "width": 192, "seq": 128, "batch": 16, "steps": 600, "seeds": [1, 2, 3],
              "val_max": 128, "eval_every": 100},
    "full": {"layers": 4, "heads": 4, "width": 128, "seq": 128, "batch": 16, "steps": 2000, "seeds": [1, 2, 3, 4, 5],
             "val_max": 128, "eval_every": 100},
}

STRATEGIES = "uniform,linupper,quadratic,extremes"
FIXED_R = [0.2, 0.4, 0.6, 0.8, 1.0, 100.0]


# A variant whose flags are a string "=VARIANT:S1,S2" reuses VARIANT's runs (same flags, a
# subset of its strategies) instead of training them again.
Variant = Tuple[str, Any]


def parts(steps: int = 400) -> Dict[str, Tuple[str, List[Variant]]]:
    """Each part: a title and its variants (directory name, extra flags or a reuse)."""
    return {
        "a": ("strategies (r linear 100 -> 1)", [("strategies", ["--compare", STRATEGIES])]),
        "b": ("linupper at a fixed r", [(f"fixed-r{r:g}", ["--compare", "uniform,linupper", "--schedule", "constant",
                                                           "--r-end", f"{r:g}"]) for r in FIXED_R]),
        "c": ("20% corrupted training windows", [("noise0.2", ["--compare", STRATEGIES, "--noise", "0.2"])]),
        "d": ("batch size", [("batch16", "=strategies:uniform,linupper"),
                             ("batch64-same-tokens", ["--compare", "uniform,linupper", "--batch", "64",
                                                      "--steps", str(max(1, steps // 4))]),
                             ("batch64", ["--compare", "uniform,linupper", "--batch", "64"])]),
        "e": ("the cap: extremes at r = 0.4", [("extremes-r0.4", ["--compare", "uniform,extremes", "--schedule", "constant",
                                                                   "--r-end", "0.4"]),
                                                ("extremes-r0.4-cap2", ["--compare", "uniform,extremes", "--schedule",
                                                                        "constant", "--r-end", "0.4", "--cap", "2"])]),
    }


def find_exe(explicit: Optional[str], out: str) -> str:
    """The goreweight-train to drive: --exe, the installed one, or a fresh go build."""
    if explicit:
        return explicit
    exe = shutil.which("goreweight-train")
    if exe:
        return exe
    exe = os.path.join(out, "bin", "goreweight-train")
    print(f"study: no goreweight-train installed; building {exe}", file=sys.stderr)
    subprocess.run(["go", "build", "-o", exe, "./goreweight/trainer/cmd/goreweight-train"], cwd=ROOT, check=True)
    return exe


def base_flags(scale: Dict[str, Any], seeds: List[int], threads: int) -> List[str]:
    """The flags every variant shares."""
    return ["--layers", str(scale["layers"]), "--heads", str(scale["heads"]), "--width", str(scale["width"]),
            "--seq", str(scale["seq"]), "--batch", str(scale["batch"]), "--steps", str(scale["steps"]),
            "--val-max", str(scale["val_max"]), "--eval-every", str(scale["eval_every"]),
            "--seeds", ",".join(map(str, seeds)), "--threads", str(threads), "--quiet"]


def override(flags: List[str], extra: List[str]) -> List[str]:
    """flags with the values of extra's flags replaced (or appended)."""
    out = list(flags)
    for i in range(0, len(extra), 2):
        k, v = extra[i], extra[i + 1]
        if k in out:
            out[out.index(k) + 1] = v
        else:
            out += [k, v]
    return out


def load(path: str) -> Dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def train(cmd: List[str], summary: str, log: Any) -> Optional[Dict[str, Any]]:
    """Run one goreweight-train command; its summary, None on failure (Ctrl-C propagates)."""
    print(f"study: {' '.join(cmd)}", file=log, flush=True)
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        print(f"study: failed ({p.returncode}): {p.stderr.strip()[-2000:]}", file=log, flush=True)
        if p.returncode == 130:
            raise KeyboardInterrupt
        return None
    print(f"study: done in {time.time() - t0:.0f}s", file=log, flush=True)
    return load(summary)


def run_variant(exe: str, d: str, flags: List[str], log: Any) -> Optional[Dict[str, Any]]:
    """Run (or resume, or reuse) one variant; return its summary, None on failure."""
    summary = os.path.join(d, "summary.json")
    if os.path.exists(summary):
        return load(summary)
    if os.path.exists(os.path.join(d, "config.json")):
        return train([exe, "--resume", d, "--quiet"], summary, log)
    return train([exe, *flags, "--out", d], summary, log)


def add_seeds(exe: str, d: str, seeds: List[int], log: Any, train_ok: bool = True) -> Tuple[str, Optional[Dict[str, Any]]]:
    """Variant d with more seeds: a copy of its finished run, resumed with the longer seed list
    (the trainer trains only the new seeds; the result equals a run started with all of them).
    With train_ok False only a finished extension is returned."""
    name = f"{os.path.basename(d)}-seeds{len(seeds)}"
    d2 = os.path.join(os.path.dirname(d), name)
    summary = os.path.join(d2, "summary.json")
    s: Optional[Dict[str, Any]] = load(summary) if os.path.exists(summary) else None
    if s is None or len(s.get("seeds") or []) != len(seeds):
        if not train_ok:
            return name, None
        if not os.path.exists(d2):
            tmp = d2 + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(d, tmp)
            os.replace(tmp, d2)
        s = train([exe, "--resume", d2, "--seeds", ",".join(map(str, seeds)), "--quiet"], summary, log)
    if s is not None:
        s["base_seeds"] = load(os.path.join(d, "summary.json")).get("seeds", [])  # their wall time counts once, in d
    return name, s


def subset(s: Dict[str, Any], names: List[str], src: str) -> Dict[str, Any]:
    """Summary s restricted to the strategies names (the runs are the same models)."""
    out = dict(s)
    out["strategies"] = {n: a for n, a in s["strategies"].items() if n in names}
    out["runs"] = [r for r in s.get("runs", []) if r.get("strategy") in names]
    out["reused_from"] = src
    return out


# ---- the report ---------------------------------------------------------------------------


def fnum(x: Any, fmt: str = "{:+.4f}") -> str:
    return "—" if x is None else fmt.format(x)


def fci(ci: Any) -> str:
    return "—" if not ci or ci[0] is None else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def verdict(agg: Dict[str, Any]) -> str:
    """Plain words for a paired difference: helped / hurt when the 95% interval excludes 0."""
    ci = agg.get("delta_ci95")
    if not ci or ci[0] is None:
        return "one seed: no interval"
    if ci[1] < 0:
        return "helped (CI below 0)"
    if ci[0] > 0:
        return "hurt (CI above 0)"
    return "no detectable difference (CI contains 0)"


def worst_wm(strategy: str, m: int, r: float, delta: float = 1.0) -> Optional[float]:
    """The worst-case max w·M at temperature r: goreweight.max_weight_bound (the core's
    MaxWeightBound) times M, with the score range D of the strategy; None without a closed form."""
    d = {"linupper": delta, "extremes": delta, "dro-kl": delta, "quadratic": 1.0}.get(strategy)
    if d is None or r <= 0 or math.isinf(r):
        return None
    try:
        import goreweight  # the Go core through the C ABI: one source of truth

        return float(goreweight.max_weight_bound(m, d, r)) * m
    except Exception:  # noqa: BLE001 - no library: the closed form of docs/method.md
        e = math.exp(d / r)
        return e * m / (e + m - 1)


def sum_wall(results: Dict[str, Dict[str, Any]]) -> float:
    """Wall seconds of every model of every variant, over all its sessions."""
    return sum(float(r.get("wall_s") or 0) for s in results.values() if "reused_from" not in s for r in s["runs"]
               if r.get("seed") not in s.get("base_seeds", []))


def table(s: Dict[str, Any], label: str = "") -> str:
    """One variant's strategies: Δ vs the baseline with its interval and verdict."""
    lines = ["| variant | strategy | val loss mean ± sd | Δ vs " + s["baseline"] + " | 95% CI | seeds better | max w·M | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for name, a in s["strategies"].items():
        if name == s["baseline"]:
            continue
        sd = a.get("val_loss_sd")
        lines.append(f"| {label} | {name} | {a['val_loss_mean']:.4f} ± {sd if sd is None else f'{sd:.4f}'} | "
                     f"{fnum(a['delta_mean'])} | {fci(a['delta_ci95'])} | {a['seeds_better']}/{a['n_seeds']} | "
                     f"{fnum(a['max_wm'], '{:.2f}')} | {verdict(a)} |")
    return "\n".join(lines)


def domain_table(s: Dict[str, Any]) -> str:
    """Δ per domain: mean [95% CI]."""
    doms = s["domains"]
    lines = ["| strategy | " + " | ".join(doms) + " |", "|---" * (len(doms) + 1) + "|"]
    for name, a in s["strategies"].items():
        if name == s["baseline"]:
            continue
        cells = [f"{fnum(a['domains'][d]['delta_mean'])} {fci(a['domains'][d]['delta_ci95'])}" for d in doms]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def noise_line(s: Dict[str, Any]) -> str:
    en = s.get("eval_noise", {})
    return (f"evaluation noise: se of one model's val loss {fnum(en.get('val_se'), '{:.4f}')}, of a paired Δ "
            f"{fnum(en.get('delta_se'), '{:.4f}')} (over {en.get('val_windows')} windows); seed-to-seed sd of Δ "
            f"{fnum(en.get('delta_seed_sd'), '{:.4f}')}")


def plot_deltas(path: str, title: str, rows: List[Tuple[str, Dict[str, Any]]], xlabel: str = "") -> bool:
    """Error-bar plot of mean Δ with 95% CI per row (label, aggregate); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(rows) + 2), 3.6), dpi=110)
    for i, (label, a) in enumerate(rows):
        m, ci = a.get("delta_mean"), a.get("delta_ci95")
        if m is None:
            continue
        err = None if not ci or ci[0] is None else [[m - ci[0]], [ci[1] - m]]
        color = "tab:green" if ci and ci[0] is not None and ci[1] < 0 else (
            "tab:red" if ci and ci[0] is not None and ci[0] > 0 else "tab:gray")
        ax.errorbar([i], [m], yerr=err, fmt="o", color=color, capsize=4)
    ax.axhline(0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(rows)), [r[0] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("Δ val loss vs uniform (nats)")
    ax.set_title(title, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_wm(path: str, rows: List[Tuple[str, float, Optional[float]]]) -> bool:
    """Bars of the largest max w·M observed with the bound 2 and the worst case."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(rows) + 2), 3.6), dpi=110)
    xs = range(len(rows))
    ax.bar(xs, [r[1] for r in rows], color="tab:blue", label="largest max w·M observed")
    wx = [i for i, r in enumerate(rows) if r[2] is not None]
    ax.scatter(wx, [rows[i][2] for i in wx], marker="_", s=400, color="tab:red", label="worst case at that r")
    ax.axhline(2, color="black", ls="--", lw=0.8, label="2 (Theorem 1)")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), [r[0] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("max w·M")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def report(args: argparse.Namespace, scale: Dict[str, Any], seeds: List[int], results: Dict[str, Dict[str, Any]],
           missing: List[str], wall_s: float, cmdline: str) -> str:
    """The Markdown report; plots land next to it."""
    rdir = os.path.dirname(os.path.abspath(args.report))
    assets = os.path.join(rdir, args.assets)
    os.makedirs(assets, exist_ok=True)
    rel = os.path.relpath(assets, rdir)
    any_s = next(iter(results.values()), None)
    out: List[str] = [f"# Study: does loss-based reweighting help here? (scale `{args.scale}`)", ""]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        out += ["*The interval plots are missing: they need matplotlib (`pip install \".[study]\"`).*", ""]
    out += [f"**This is the `{args.scale}` scale.** Read the numbers as what this setting shows, not as the "
            "paper's claim at its scale (120M+ parameters, billions of tokens); benchmarks/STUDY.md compares the "
            "scales and says what they show, in words.", ""]
    out += ["Regenerate (resumable: finished runs in the output directory are reused):", "", "```bash", cmdline, "```", ""]
    if any_s:
        c = any_s["config"]
        toks = c["steps"] * c["batch"] * c["seq"]
        out += [f"- model: GPT, {c['layers']} layers, {c['heads']} heads, width {c['width']}, context {c['seq']}: "
                f"{any_s['params']:,} parameters; batch {c['batch']}, {c['steps']} steps = {toks:,} training tokens "
                f"per model (part d's batch 64: the same tokens in a quarter of the steps, and 4x the tokens in as many steps)",
                f"- data: {any_s['data']}",
                f"- seeds {','.join(map(str, seeds))} ({len(seeds)}); within a seed every strategy shares "
                "initialisation, split, noise and batch order, so each Δ is a paired difference to uniform; "
                f"95% intervals are t intervals over seeds ({len(seeds) - 1} degrees of freedom)"
                + (f"; parts {', '.join(args.more_seeds_parts.split(','))} also with seeds "
                   f"{args.more_seeds} added (variants named -seeds{len(seeds) + len(args.more_seeds.split(','))}, "
                   "the same runs resumed with the longer list)" if args.more_seeds else ""),
                f"- {any_s['backend']} backend, {any_s['threads']} threads; {sum_wall(results) / 60:.1f} min of training "
                f"wall time in all (every model, all sessions), {wall_s / 60:.1f} min in the session that wrote this report", ""]
    if missing:
        out += [f"**Not run (budget or failure):** {', '.join(missing)}.", ""]
    out += [f"## {args.scale.capitalize()} scale: every part" if len(args.parts) == 5 else f"## {args.scale.capitalize()} scale",
            "", "Verdicts are mechanical: *helped* / *hurt* when the 95% interval of the mean paired Δ lies below / "
            "above 0, else *no detectable difference*. Δ < 0 is better than uniform.", ""]

    P = parts(scale["steps"])
    for key in sorted(args.parts):
        title, variants = P[key]
        got = [(v, results[v]) for v, _ in variants if v in results]
        got += [(v, s) for v, s in results.items() if any(v.startswith(w + "-seeds") for w, _ in variants)]
        if not got:
            continue
        out += [f"### ({key}) {title}", ""]
        for v, s in got:
            if "reused_from" in s:
                out += [f"`{v}` is the same models as `{s['reused_from']}` (identical flags), not trained again.", ""]
            out += [table(s, v), "", f"Per domain ({v}), Δ mean [95% CI]:", "", domain_table(s), "",
                    f"- {v}: {noise_line(s)}", ""]
        if key == "b":
            rows = [(f"r={v.removeprefix('fixed-r')}", s["strategies"]["linupper"]) for v, s in got]
            if plot_deltas(os.path.join(assets, "b_fixed_r.png"), "linupper at a fixed r: Δ vs uniform, 95% CI", rows):
                out += [f"![fixed r]({rel}/b_fixed_r.png)", ""]
        elif key in ("a", "c"):
            s = got[-1][1]  # the most seeds
            rows = [(n, a) for n, a in s["strategies"].items() if n != s["baseline"]]
            for d in s["domains"]:
                rows += [(f"{n}/{d}", a["domains"][d]) for n, a in s["strategies"].items() if n != s["baseline"]]
            if plot_deltas(os.path.join(assets, f"{key}_deltas.png"), f"({key}) Δ vs uniform, average then per domain, 95% CI", rows):
                out += [f"![deltas]({rel}/{key}_deltas.png)", ""]
        elif key in ("d", "e"):
            rows = [(f"{v}:{n}", a) for v, s in got for n, a in s["strategies"].items() if n != s["baseline"]]
            if plot_deltas(os.path.join(assets, f"{key}_deltas.png"), f"({key}) Δ vs uniform, 95% CI", rows):
                out += [f"![deltas]({rel}/{key}_deltas.png)", ""]
        for v, s in got:
            src = os.path.join(args.out, v, "val_loss.png")
            if key != "b" and os.path.exists(src):  # (b): the Δ-vs-r plot says it; six more PNGs would not
                shutil.copyfile(src, os.path.join(assets, f"{v}_val_loss.png"))
                out += [f"<details><summary>{v}: validation curves (mean over seeds, min-max band)</summary>", "",
                        f"![{v}]({rel}/{v}_val_loss.png)", "", "</details>", ""]
        if key == "e":
            wm: List[Tuple[str, float, Optional[float]]] = []
            for v, s in results.items():
                c = s["config"]
                r = c["r_end"]
                for n, a in s["strategies"].items():
                    if n == "uniform" or a.get("max_wm") is None:
                        continue
                    worst = None if c.get("cap") else worst_wm(n, c["batch"], r, c.get("delta", 1.0))
                    wm.append((f"{v}:{n}", a["max_wm"], worst))
            out += ["Largest max w·M over all steps and seeds, against 2 (Theorem 1) and the worst case "
                    "`e^(D/r)·M/(e^(D/r)+M-1)` at the final r (no cap):", "",
                    "| run:strategy | max w·M | worst case | above 2? |", "|---|---|---|---|"]
            for name, m, worst in wm:
                out.append(f"| {name} | {m:.2f} | {fnum(worst, '{:.2f}')} | {'yes' if m > 2 else 'no'} |")
            out.append("")
            if plot_wm(os.path.join(assets, "e_max_wm.png"), wm):
                out += [f"![max w·M]({rel}/e_max_wm.png)", ""]
    return "\n".join(out) + "\n"


def training_args(argv: List[str]) -> List[str]:
    """argv without the options that only say how this session ran (--report-only, --exe,
    --budget-min, --threads): the command that trains and reports the same study."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name == "--report-only":
            continue
        if name in ("--exe", "--budget-min", "--threads"):
            skip = "=" not in a
            continue
        out.append(a)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    ap.add_argument("--parts", default="a,b,c,d,e", help="comma-separated parts to run (a-e)")
    ap.add_argument("--seeds", default="", help="comma-separated seeds (default: the scale's)")
    ap.add_argument("--out", default="", help="run directory (default runs/study-<scale>)")
    ap.add_argument("--report", default="", help="Markdown report path (default OUT/STUDY.md)")
    ap.add_argument("--assets", default="", help="plot folder next to the report (default study-<scale>)")
    ap.add_argument("--exe", default="", help="goreweight-train to run (default: the installed one, else go build)")
    ap.add_argument("--steps", type=int, default=0, help="steps per model (default: the scale's; for smoke tests)")
    ap.add_argument("--threads", type=int, default=0, help="threads per run (0: all CPUs)")
    ap.add_argument("--budget-min", type=float, default=0, help="start no new variant after this many minutes (0: none)")
    ap.add_argument("--data", default="", help="training data (default builtin)")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: report the variants that have finished (e.g. while the study still runs)")
    ap.add_argument("--more-seeds", default="", help="comma-separated seeds to add, after the others, to the "
                    "variants of --more-seeds-parts (each copied to <variant>-seeds<N> and resumed with the longer list)")
    ap.add_argument("--more-seeds-parts", default="a,c", help="parts whose variants get --more-seeds (default a,c)")
    args = ap.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    P = parts()
    for p in args.parts:
        if p not in P:
            ap.error(f"unknown part {p!r} (parts: {', '.join(P)})")
    scale = dict(SCALES[args.scale])
    if args.steps:
        scale["steps"] = args.steps
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()] or scale["seeds"]
    P = parts(scale["steps"])
    more = [int(x) for x in args.more_seeds.split(",") if x.strip()]
    if set(more) & set(seeds):
        ap.error("--more-seeds must not repeat the seeds")
    more_parts = [p.strip() for p in args.more_seeds_parts.split(",") if p.strip()]
    args.out = args.out or os.path.join("runs", f"study-{args.scale}")
    args.report = args.report or os.path.join(args.out, "STUDY.md")
    args.assets = args.assets or f"study-{args.scale}"
    os.makedirs(args.out, exist_ok=True)
    exe = find_exe(args.exe or None, args.out)
    flags = base_flags(scale, seeds, args.threads)
    if args.data:
        flags += ["--data", args.data]
    cmdline = "python benchmarks/study.py " + " ".join(training_args(argv if argv is not None else sys.argv[1:]))

    t0 = time.time()
    results: Dict[str, Dict[str, Any]] = {}
    missing: List[str] = []
    try:
        for key in args.parts:
            for v, extra in P[key][1]:
                if v in results:
                    continue
                if isinstance(extra, str):  # reuse another variant's runs
                    src, names = extra[1:].split(":")
                    if src not in results and not args.report_only:
                        s = run_variant(exe, os.path.join(args.out, src), flags, sys.stderr)
                        if s is not None:
                            results[src] = s
                    if src in results:
                        results[v] = subset(results[src], names.split(","), src)
                    else:
                        missing.append(v)
                    continue
                d = os.path.join(args.out, v)
                done = os.path.exists(os.path.join(d, "summary.json"))
                if not done and (args.report_only or args.budget_min and time.time() - t0 > args.budget_min * 60):
                    missing.append(v)
                    continue
                s = run_variant(exe, d, override(flags, extra), sys.stderr)
                if s is None:
                    missing.append(v)
                    continue
                results[v] = s
                if more and key in more_parts:
                    name, s2 = add_seeds(exe, d, seeds + more, sys.stderr, train_ok=not args.report_only)
                    if s2 is None:
                        missing.append(name)
                    else:
                        results[name] = s2
    except KeyboardInterrupt:
        print("study: interrupted; rerun the same command to continue", file=sys.stderr)
        missing.append("(interrupted)")
    text = report(args, scale, seeds, results, missing, time.time() - t0, cmdline)
    tmp = args.report + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.report)
    print(f"study: report {args.report}", file=sys.stderr)
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
