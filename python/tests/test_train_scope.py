"""goreweight.train passes accum/scope/granularity/reference to the Go trainer.

The keys travel as JSON through grw_train; the Go tests check the math
(global scope equals one big batch, token weights, reference scores). Here:
the summary records them, the metrics count the accumulated tokens, and a
bad value is a GoreweightError naming the key.
"""

from __future__ import annotations

import json

import pytest

import goreweight

TINY = {"steps": 2, "layers": 1, "width": 16, "heads": 2, "seq": 16, "batch": 2,
        "data_bytes": 100_000, "eval_every": 1, "val_max": 2, "warmup_r": 0, "threads": 1, "quiet": True, "seed": 1}


def test_accum_global_token_reference(tmp_path) -> None:
    ref = goreweight.train({**TINY, "strategy": "uniform", "out": str(tmp_path / "ref")})
    summary = goreweight.train({**TINY, "strategy": "linupper", "accum": 3, "scope": "global",
                                "granularity": "token", "reference": ref["out"], "out": str(tmp_path / "run")})
    cfg = summary["config"]
    assert (cfg["accum"], cfg["scope"], cfg["granularity"], cfg["reference"]) == (3, "global", "token", ref["out"])
    assert summary["reference"]["path"].endswith("uniform/checkpoint.zip")
    with open(tmp_path / "run" / "metrics.jsonl", encoding="utf-8") as f:
        last = [json.loads(line) for line in f][-1]
    assert last["tokens"] == 2 * 3 * 2 * 16
    assert 0 < last["ess_frac"] <= 1


def test_deferred_scope(tmp_path) -> None:
    """scope="deferred" (the approximate global scope) runs from Python and
    records the range each step normalised with; a strategy it cannot
    weigh is refused before training, naming the key."""
    ref = goreweight.train({**TINY, "strategy": "uniform", "out": str(tmp_path / "ref")})
    summary = goreweight.train({**TINY, "strategy": "linupper", "accum": 3, "scope": "deferred",
                                "granularity": "token", "reference": ref["out"], "out": str(tmp_path / "run")})
    assert summary["config"]["scope"] == "deferred"
    with open(tmp_path / "run" / "metrics.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f][1:]
    assert records and all(r["range_lo"] <= r["range_hi"] and 0 <= r["clipped_frac"] <= 1 for r in records)
    with pytest.raises(goreweight.GoreweightError, match="strategy"):
        goreweight.train({**TINY, "strategy": "topk", "q": 0.5, "scope": "deferred", "accum": 2,
                          "out": str(tmp_path / "topk")})
    assert not (tmp_path / "topk" / "topk").exists()


@pytest.mark.parametrize("key,value", [("accum", 0), ("accum", 1.5), ("scope", "all"), ("granularity", "char")])
def test_bad_values_name_the_key(tmp_path, key: str, value: object) -> None:
    with pytest.raises(goreweight.GoreweightError, match=key):
        goreweight.train({**TINY, "strategy": "linupper", key: value, "out": str(tmp_path / "run")})


def test_missing_reference_names_it(tmp_path) -> None:
    missing = str(tmp_path / "no-such-run")
    with pytest.raises(goreweight.GoreweightError, match="no-such-run"):
        goreweight.train({**TINY, "strategy": "linupper", "reference": missing, "out": str(tmp_path / "run")})
