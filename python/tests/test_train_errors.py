"""goreweight.train's error mapping: by the C status code, never the message."""

from __future__ import annotations

import importlib

import pytest

from goreweight import _lib

# The module, not the function goreweight.train that the package exports.
train_mod = importlib.import_module("goreweight.train")


def test_status_codes_choose_the_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(_lib, "error_for_status", raising=False)
    # The message says "interrupted" but the status is EINVAL: not an interrupt.
    e = train_mod._train_error(1, "train: interrupted (a misleading message)")
    assert type(e) is _lib.GoreweightError
    # Status GRW_EINTR is an interrupt whatever the message says.
    e = train_mod._train_error(train_mod._EINTR, "stopped")
    assert isinstance(e, KeyboardInterrupt) and str(e) == "stopped"
    assert isinstance(train_mod._train_error(train_mod._EIO, "disk"), _lib.GoreweightError)


def test_the_package_wide_mapping_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    class Mapped(Exception):
        pass

    seen = []

    def mapper(status: int, msg: str) -> BaseException:
        seen.append((status, msg))
        return Mapped(msg)

    monkeypatch.setattr(_lib, "error_for_status", mapper, raising=False)
    e = train_mod._train_error(6, "corrupt checkpoint")
    assert isinstance(e, Mapped) and seen == [(6, "corrupt checkpoint")]
