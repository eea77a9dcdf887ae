"""The benchmark scripts still run: benchmarks/run.py --tiny end to end.

It checks the structure of the JSON records, never the speed (tests do not
time things; the figures of a --tiny run mean nothing). Table 3's Go side
needs the Go toolchain; without it the run must say so and still succeed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "run.py"

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    if not RUN.exists():
        pytest.skip("benchmarks/run.py is not in this checkout")
    out = tmp_path_factory.mktemp("bench") / "records.json"
    env = dict(os.environ, GOREWEIGHT_BENCH_TINY="1")
    p = subprocess.run([sys.executable, str(RUN), "--tiny", "--json", str(out)], cwd=str(ROOT), env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"run.py --tiny failed (exit {p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return p.stdout, json.loads(out.read_text())


def _pick(records, **kw):
    return [r for r in records if all(r[k] == v for k, v in kw.items())]


def test_records_have_the_documented_shape(tiny_run):
    _, records = tiny_run
    assert isinstance(records, list) and records
    for r in records:
        assert set(r) == {"bench", "config", "impl", "metric", "value"}, r
        for k in ("bench", "config", "impl", "metric"):
            assert isinstance(r[k], str) and r[k], r
        assert isinstance(r["value"], (int, float)) and not isinstance(r["value"], bool), r
    assert {r["bench"] for r in records} >= {"env", "weights", "step_overhead", "trainer"}


def test_prints_three_tables(tiny_run):
    stdout, _ = tiny_run
    for title in ("## 1.", "## 2.", "## 3."):
        assert title in stdout
    assert "FAILED" not in stdout


def test_table1_every_path_against_the_twin(tiny_run):
    _, records = tiny_run
    for M in (128, 1024):
        rs = _pick(records, bench="weights", config=f"M={M}")
        impls = {r["impl"] for r in rs}
        assert {"goreweight[torch]", "goreweight[numpy]", "torch_reference"} <= impls
        for impl in impls - {"torch_reference"}:
            if not impl.startswith("goreweight"):
                continue
            sp = _pick(rs, impl=impl, metric="speedup_vs_twin_median")
            assert len(sp) == 1 and sp[0]["value"] > 0
        for metric in ("us_per_call_median", "us_per_call_min", "us_per_call_max"):
            vals = [r["value"] for r in _pick(rs, impl="torch_reference", metric=metric)]
            assert len(vals) == 1 and vals[0] > 0 and math.isfinite(vals[0])
        # both sides computed the same weights
        diff = _pick(rs, metric="max_rel_diff_vs_twin")
        assert len(diff) == 1 and diff[0]["value"] < 1e-4


def test_table2_overhead_for_both_reweighting_losses(tiny_run):
    _, records = tiny_run
    for impl in ("goreweight", "twin"):
        rs = _pick(records, bench="step_overhead", impl=impl, metric="extra_pct_of_step")
        assert rs and all(math.isfinite(r["value"]) for r in rs)
    assert _pick(records, bench="step_overhead", impl="mean", metric="step_ms_median")


def test_table3_both_sides_or_a_clear_note(tiny_run):
    stdout, records = tiny_run
    rs = _pick(records, bench="trainer", config="tiny", metric="tokens_per_s_median")
    impls = {r["impl"] for r in rs}
    assert any(i.startswith("pytorch[") for i in impls), impls
    if shutil.which("go"):  # the installed programs (pip install . built them with Go)
        assert any(i.startswith("goreweight-train[") for i in impls), impls
        assert any(i.startswith("goreweight.train[") for i in impls), impls
        assert _pick(records, bench="trainer", config="tiny", metric="speedup_vs_pytorch_median")
    else:
        assert "Go toolchain not found" in stdout
    assert _pick(records, bench="trainer", config="tiny", metric="flops_per_token")
    for r in _pick(records, bench="trainer", metric="peak_rss_mib_median"):
        assert r["value"] > 0
