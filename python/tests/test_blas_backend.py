"""The installed programs run the BLAS that `pip install` built them with.

setup.py records its choice in goreweight/_lib/build.json; the trainer reports
the backend it actually runs (nn.Backend()) in its start-up line and in the
summary that goreweight.train() returns. Both entry points, the
goreweight-train binary and the shared library Python loads, must agree with
the record (so an install that silently fell back to gonum, or a library
whose rpath does not resolve, fails here).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

import goreweight
from goreweight import _train

TINY = {"steps": 1, "layers": 1, "width": 16, "heads": 2, "seq": 16, "batch": 2,
        "data_bytes": 100_000, "eval_every": 1, "val_max": 2}

# build.json's "blas" -> the prefix of nn.Backend() it must produce
EXPECTED = {"scipy": "scipy-openblas (", "system": "openblas (", "gonum": "gonum"}


@pytest.fixture(scope="module")
def recorded() -> str:
    path = os.path.join(os.path.dirname(goreweight.__file__), "_lib", "build.json")
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: the package was not built by this setup.py")
    with open(path, encoding="utf-8") as f:
        blas = json.load(f)["blas"]
    assert blas in EXPECTED, blas
    return blas


def test_library_runs_recorded_backend(recorded: str, tmp_path) -> None:
    summary = goreweight.train({**TINY, "compare": ["uniform"], "out": str(tmp_path / "run"), "quiet": True})
    assert summary["backend"].startswith(EXPECTED[recorded]), (summary["backend"], recorded)


def test_binary_runs_recorded_backend(recorded: str, tmp_path) -> None:
    args = [_train.binary_path(), "--compare", "uniform", "--out", str(tmp_path / "run")]
    for k, v in TINY.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    # no LD_LIBRARY_PATH: the rpath must find the BLAS on its own
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH")}
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    m = re.search(r" parameters, (.+?) backend, \d+ threads", out.stdout + out.stderr)
    assert m is not None, out.stdout + out.stderr
    backend = m.group(1)
    assert backend.startswith(EXPECTED[recorded]), (backend, recorded)
