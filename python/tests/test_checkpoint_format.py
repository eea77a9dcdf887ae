"""Go-written tensor files (goreweight/trainer/tensorfile) are safetensors files.

The Go side writes the PyTorch-generated parameters of
goreweight/trainer/gpt/testdata/gpt_fixture.json with gpt.Model.SaveParams;
here the `safetensors` library reads them and they must equal the JSON's
values exactly, and goreweight's checksum must match one computed here.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest

safetensors_numpy = pytest.importorskip("safetensors.numpy")

REPO = pathlib.Path(__file__).resolve().parents[2]
GO = shutil.which("go") or os.environ.get("GOREWEIGHT_GO")


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    if not GO:
        pytest.skip("the Go toolchain is needed to write the Go-side file")
    out = tmp_path_factory.mktemp("st") / "model.safetensors"
    subprocess.run(
        [GO, "test", "-count=1", "-run", "^TestWriteFixtureSafetensors$", "./goreweight/trainer/gpt"],
        cwd=REPO, check=True, env={**os.environ, "GOREWEIGHT_FIXTURE_OUT": str(out)},
        stdout=subprocess.DEVNULL,
    )
    return out


def test_go_params_load_with_safetensors(fixture_file: pathlib.Path) -> None:
    fx = json.loads((REPO / "goreweight/trainer/gpt/testdata/gpt_fixture.json").read_text())
    got = safetensors_numpy.load_file(str(fixture_file))
    assert set(got) == {p["name"] for p in fx["params"]}
    for p in fx["params"]:
        arr = got[p["name"]]
        assert arr.dtype == np.float32
        assert list(arr.shape) == p["shape"], p["name"]
        np.testing.assert_array_equal(arr.ravel(), np.asarray(p["data"], dtype=np.float32))


def test_metadata_and_checksum(fixture_file: pathlib.Path) -> None:
    raw = fixture_file.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = dict(header["__metadata__"])
    cfg = json.loads((REPO / "goreweight/trainer/gpt/testdata/gpt_fixture.json").read_text())["config"]
    assert meta["format"] == "goreweight.gpt" and meta["version"] == "2"
    assert {k: int(meta[k]) for k in ("vocab", "seq", "layers", "heads", "width")} == {
        k.lower(): v for k, v in cfg.items()
    }
    stored = meta.pop("goreweight.crc32")
    canon = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    assert f"{zlib.crc32(raw[8 + n:] + canon):08x}" == stored
