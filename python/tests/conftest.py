"""Test setup: the tests exercise the *installed* goreweight package
(`pip install .[test]` first). Set GOREWEIGHT_TEST_SOURCE=1 to allow the
source tree (python/ on PYTHONPATH with GOREWEIGHT_LIB pointing at a library
built with `go build -buildmode=c-shared -o libgoreweight.so ./capi`)."""

from __future__ import annotations

import os
import pathlib

import pytest

import goreweight

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCE_PKG = REPO / "python" / "goreweight"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"goreweight {goreweight.__version__} from {pathlib.Path(goreweight.__file__).parent}",
        f"goreweight library: {goreweight.library_path()}",
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    pkg = pathlib.Path(goreweight.__file__).resolve().parent
    if pkg == SOURCE_PKG.resolve() and os.environ.get("GOREWEIGHT_TEST_SOURCE") != "1":
        raise pytest.UsageError(
            "goreweight was imported from the source tree (python/goreweight), not from an installation. "
            "Run `pip install '.[test]'` and the tests from a directory where python/ is not on sys.path, "
            "or set GOREWEIGHT_TEST_SOURCE=1 (with GOREWEIGHT_LIB) to test the source tree on purpose."
        )
    if not os.path.exists(goreweight.library_path()):
        raise pytest.UsageError(f"the goreweight Go library is missing: {goreweight.library_path()}")
