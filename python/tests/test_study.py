"""benchmarks/study.py end to end at a toy size: the parts run, reuse and
extension behave as the report says, and a rerun trains nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "benchmarks" / "study.py"

# The goreweight-train of this interpreter's environment first (a venv's, even when not activated).
EXE = shutil.which("goreweight-train", path=os.path.dirname(sys.executable)) or shutil.which("goreweight-train")
pytestmark = pytest.mark.skipif(EXE is None, reason="goreweight-train is not installed")


def run_study(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(STUDY), "--scale", "tiny", "--steps", "4", "--seeds", "1,2", "--parts", "a,d",
           "--out", str(out), "--report", str(out / "STUDY.md"), "--threads", "1", "--exe", str(EXE), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)


def load(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def test_study_parts_reuse_and_more_seeds(tmp_path: Path) -> None:
    out = tmp_path / "study"
    p = run_study(out, "--more-seeds", "3")
    assert p.returncode == 0, p.stderr
    report = (out / "STUDY.md").read_text()
    for heading in ("### (a)", "### (d)"):
        assert heading in report
    # (d)'s batch-16 arm is part (a)'s models, not a retrain.
    assert not (out / "batch16").exists()
    assert "`batch16` is the same models as `strategies`" in report
    # The same-tokens arm trains a quarter of the steps at 4x the batch.
    c = load(out / "batch64-same-tokens" / "config.json")
    assert (c["batch"], c["steps"]) == (64, 1)
    # The extension: seeds 1, 2 are the very models of the 2-seed run, seed 3 is new.
    two = load(out / "strategies" / "summary.json")
    three = load(out / "strategies-seeds3" / "summary.json")
    assert two["seeds"] == [1, 2] and three["seeds"] == [1, 2, 3]
    old = {(r["strategy"], r["seed"]): r["val_loss"] for r in two["runs"]}
    new = {(r["strategy"], r["seed"]): r["val_loss"] for r in three["runs"]}
    assert {k: new[k] for k in old} == old
    assert {s for _, s in new} == {1, 2, 3}
    assert three["strategies"]["linupper"]["n_seeds"] == 3
    assert "strategies-seeds3" in report
    # A rerun reuses every finished variant: nothing is trained again.
    p = run_study(out, "--more-seeds", "3")
    assert p.returncode == 0, p.stderr
    assert "goreweight-train" not in p.stderr.replace("study: report", ""), p.stderr


def test_study_report_only_trains_nothing(tmp_path: Path) -> None:
    out = tmp_path / "s"
    p = run_study(out, "--report-only")
    assert p.returncode == 1  # every variant missing
    assert not (out / "strategies").exists()
    assert "Not run" in (out / "STUDY.md").read_text()


def test_study_refuses_repeated_seeds(tmp_path: Path) -> None:
    p = run_study(tmp_path / "s", "--more-seeds", "2,3")
    assert p.returncode == 2 and "--more-seeds" in p.stderr
    assert not os.path.exists(tmp_path / "s" / "strategies")
