"""TensorBoard events from goreweight-train's metrics.jsonl.

Tiny trainings run through the installed ``goreweight-train`` console
command with ``--tensorboard``; the event files are read back with
TensorBoard's own reader (EventAccumulator) and compared with the
metrics.jsonl records, parsed here independently of the converter.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

import pytest

pytest.importorskip("tensorboard")
np = pytest.importorskip("numpy")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import goreweight  # noqa: E402
from goreweight.tensorboard import write_events  # noqa: E402


def _console() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "goreweight-train")
    exe = here if os.path.exists(here) else shutil.which("goreweight-train")
    if not exe:
        pytest.skip("the goreweight-train console command is not installed")
    if not (pathlib.Path(goreweight.__file__).parent / "bin" / "goreweight-train").exists():
        pytest.skip("the trainer binary was not built into this installation")
    return exe


def _corpus(path: pathlib.Path) -> pathlib.Path:
    lines = [f"{i % 17} plus {i % 5} is {i % 17 + i % 5}; sample {i}." for i in range(600)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tiny(corpus: pathlib.Path, steps: int, width: int = 16, seq: int = 16) -> List[str]:
    return ["--data", str(corpus), "--compare", "uniform,linupper", "--seed", "1",
            "--steps", str(steps), "--batch", "4", "--seq", str(seq), "--layers", "2", "--heads", "2",
            "--width", str(width), "--warmup-r", "3", "--eval-every", "4", "--ckpt-every", "4",
            "--log-every", "1", "--val-max", "8", "--threads", "1", "--quiet"]


# The expected tags, written out here (the spec of docs/trainer.md), not
# taken from the converter.
_TAGS = {"loss": "train/loss", "loss_weighted": "train/loss_weighted", "r": "reweight/r",
         "max_wm": "reweight/max_wm", "ess_frac": "reweight/ess_frac", "val_loss": "val/loss",
         "grad_norm": "train/grad_norm"}


def _expected(metrics: pathlib.Path) -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
    """strategy -> tag -> [(step, value)] of the finite values in the file."""
    out: Dict[str, Dict[str, List[Tuple[int, float]]]] = {}
    for line in metrics.read_text().splitlines():
        rec = json.loads(line)
        tags = out.setdefault(rec["strategy"], {})
        for field, tag in _TAGS.items():
            v = rec.get(field)
            if v is not None and math.isfinite(v):
                tags.setdefault(tag, []).append((rec["step"], v))
        for d, v in (rec.get("val") or {}).items():
            if v is not None:
                tags.setdefault("val/" + d, []).append((rec["step"], v))
    return out


def _read(run: pathlib.Path) -> Dict[str, List[Tuple[int, float]]]:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _check(metrics: pathlib.Path, logdir: pathlib.Path, prefix: str = "") -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
    want = _expected(metrics)
    assert set(want) == {"uniform", "linupper"}
    for strategy, tags in want.items():
        got = _read(logdir / prefix / strategy)
        for tag, points in tags.items():
            assert tag in got, (strategy, tag, sorted(got))
            steps = [s for s, _ in got[tag]]
            assert steps == [s for s, _ in points], (strategy, tag)  # each step once, in order
            # TensorBoard stores scalars as float32
            assert [v for _, v in got[tag]] == [float(np.float32(v)) for _, v in points], (strategy, tag)
        for tag, pts in got.items():
            assert all(math.isfinite(v) for _, v in pts), tag
    return want


def test_live_run_writes_the_metrics_as_events(tmp_path: pathlib.Path) -> None:
    exe = _console()
    run = tmp_path / "run"
    p = subprocess.run([exe, "--tensorboard", *_tiny(_corpus(tmp_path / "c.txt"), 10), "--out", str(run)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    want = _check(run / "metrics.jsonl", run / "tensorboard")
    # the warm-up's temperature is null in the jsonl and absent from the events
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    warm = [r["step"] for r in recs if r["strategy"] == "linupper" and r["step"] > 0 and r["r"] is None]
    assert warm, "the test needs warm-up steps with r = null"
    r_steps = {s for s, _ in want["linupper"]["reweight/r"]}
    assert r_steps and not r_steps & set(warm)
    got = _read(run / "tensorboard" / "linupper")
    assert {s for s, _ in got["reweight/r"]} == r_steps
    assert 0 not in {s for s, _ in got["train/loss"]}  # step 0 has no training fields
    assert (0, float(np.float32(recs[0]["val_loss"]))) in got["val/loss"]


def test_interrupt_then_resume_gives_each_step_once(tmp_path: pathlib.Path) -> None:
    exe = _console()
    run = tmp_path / "run"
    args = _tiny(_corpus(tmp_path / "c.txt"), 400, width=64, seq=64)
    child = subprocess.Popen([exe, "--tensorboard", *args, "--out", str(run)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "GOREWEIGHT_TENSORBOARD_INTERVAL": "0.2"})
    try:
        deadline = time.monotonic() + 120
        # live: events appear while the trainer is still running
        while not (run / "tensorboard" / "uniform").is_dir():
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "no events within 120 s"
            time.sleep(0.05)
        assert child.poll() is None
        child.send_signal(signal.SIGINT)  # to the wrapper, which forwards it
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    first = _expected(run / "metrics.jsonl")
    last_uniform = first["uniform"]["train/loss"][-1][0]
    assert last_uniform < 400 and "linupper" not in first
    # the events of the interrupted run were written at exit
    got = _read(run / "tensorboard" / "uniform")
    assert [s for s, _ in got["train/loss"]] == [s for s, _ in first["uniform"]["train/loss"]]

    p = subprocess.run([exe, "--tensorboard", "--resume", str(run), "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    want = _check(run / "metrics.jsonl", run / "tensorboard")
    assert [s for s, _ in want["uniform"]["train/loss"]] == list(range(1, 401))
    assert len(list((run / "tensorboard" / "uniform").iterdir())) == 1  # one event file, replaced


def test_posthoc_subcommand_is_idempotent(tmp_path: pathlib.Path) -> None:
    exe = _console()
    run = tmp_path / "run"
    subprocess.run([exe, *_tiny(_corpus(tmp_path / "c.txt"), 6), "--out", str(run)],
                   check=True, stdout=subprocess.DEVNULL, timeout=300)
    assert not (run / "tensorboard").exists()  # opt-in
    logdir = tmp_path / "tb"
    for _ in range(2):
        p = subprocess.run([exe, "tensorboard", str(run), "--logdir", str(logdir)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        files = p.stdout.split()
        assert len(files) == 2 and all(os.path.exists(f) for f in files)
    _check(run / "metrics.jsonl", logdir)
    p = subprocess.run([exe, "tensorboard", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "nothing" in p.stderr


def _record(strategy: str, step: int, **fields: Any) -> str:
    return json.dumps({"strategy": strategy, "step": step, **fields})


def test_write_events_per_seed_and_strategy_skips_non_finite(tmp_path: pathlib.Path) -> None:
    run = tmp_path / "run"
    for seed in (1, 2):
        d = run / f"seed-{seed}"
        d.mkdir(parents=True)
        lines = [_record("uniform", 0, loss=None, r=None, val_loss=3.5 + seed, val={"code": 3.0}),
                 _record("uniform", 1, loss=2.0 * seed, r=None, max_wm=1.0),
                 '{"strategy": "linupper", "step": 1, "loss": NaN, "r": Infinity, "max_wm": 1.5}',
                 _record("linupper", 2, loss=1.25, r=0.5, max_wm=2.0, domain_wm={"code": 0.75})]
        (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    files = write_events(str(run))
    assert len(files) == 4
    for seed in (1, 2):
        u = _read(run / "tensorboard" / f"seed-{seed}" / "uniform")
        assert u["train/loss"] == [(1, 2.0 * seed)]
        assert u["val/loss"] == [(0, 3.5 + seed)] and u["val/code"] == [(0, 3.0)]
        assert "reweight/r" not in u
        lu = _read(run / "tensorboard" / f"seed-{seed}" / "linupper")
        assert lu["reweight/r"] == [(2, 0.5)] and lu["train/loss"] == [(2, 1.25)]
        assert lu["reweight/max_wm"] == [(1, 1.5), (2, 2.0)]
        assert lu["reweight/domain_wm/code"] == [(2, 0.75)]


def test_write_events_names_bad_input(tmp_path: pathlib.Path) -> None:
    with pytest.raises(goreweight.GoreweightError, match="not a run directory"):
        write_events(str(tmp_path / "missing"))
    with pytest.raises(goreweight.GoreweightError, match="no metrics.jsonl"):
        write_events(str(tmp_path))
    (tmp_path / "metrics.jsonl").write_text(_record("uniform", 1, loss=1.0) + "\n{oops\n")
    with pytest.raises(goreweight.GoreweightError, match="line 2"):
        write_events(str(tmp_path))
    assert not (tmp_path / "tensorboard").exists()


def test_train_function_option(tmp_path: pathlib.Path) -> None:
    corpus = _corpus(tmp_path / "c.txt")
    out = tmp_path / "run"
    summary = goreweight.train({"data": str(corpus), "compare": ["uniform", "linupper"], "seed": 1, "steps": 5,
                                "batch": 4, "seq": 16, "layers": 1, "heads": 2, "width": 16, "warmup_r": 2,
                                "eval_every": 5, "val_max": 8, "threads": 1, "quiet": True, "out": str(out),
                                "tensorboard": True})
    assert summary["out"] == str(out)
    _check(out / "metrics.jsonl", out / "tensorboard")
    with pytest.raises(goreweight.GoreweightError, match="tensorboard"):
        goreweight.train({"tensorboard": "yes"})


def test_console_flag_parsing_and_run_directory(tmp_path: pathlib.Path) -> None:
    from goreweight import _train

    assert _train._tensorboard_flag(["--steps", "3", "--tensorboard"]) == (True, ["--steps", "3"])
    assert _train._tensorboard_flag(["-tensorboard=false", "--quiet"]) == (False, ["--quiet"])
    assert _train._tensorboard_flag(["--steps", "3"]) == (False, ["--steps", "3"])
    with pytest.raises(ValueError, match="not a boolean"):
        _train._tensorboard_flag(["--tensorboard=maybe"])
    assert _train._run_dir(["--out", "a", "--steps", "2"]) == ("a", ["--out", "a", "--steps", "2"])
    assert _train._run_dir(["-resume=b"]) == ("b", ["-resume=b"])
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"steps": 3, "out": "from-file"}))
    assert _train._run_dir(["--config", str(cfg)])[0] == "from-file"
    before = time.time()
    out, args = _train._run_dir(["--steps", "2"])
    # the trainer's default, runs/<YYYYMMDD-HHMMSS> in local time, made explicit
    assert args == ["--steps", "2", "--out", out]
    stamp = time.mktime(time.strptime(os.path.basename(out), "%Y%m%d-%H%M%S"))
    assert os.path.dirname(out) == "runs" and before - 1 <= stamp <= time.time()
