"""Checked by mypy (scripts/test.sh), not run by pytest: goreweight.weights
returns the type of its input. If an overload is lost or widened to Any,
assert_type fails the type check."""

from __future__ import annotations

from typing import assert_type

import numpy as np
import pyarrow as pa
import torch

import goreweight


def check_weights_types(t: torch.Tensor, a: np.ndarray) -> None:
    assert_type(goreweight.weights(t), torch.Tensor)
    assert_type(goreweight.weights(a), np.ndarray)
    assert_type(goreweight.weights(t, return_stats=True), tuple[torch.Tensor, dict[str, float]])
    assert_type(goreweight.weights(a, "quadratic", 0.5, return_stats=True), tuple[np.ndarray, dict[str, float]])
    assert_type(goreweight.reweighted_loss(t), torch.Tensor)
    assert_type(goreweight.per_sample_loss(t, t), torch.Tensor)
    assert_type(goreweight.Reweighter()(t), torch.Tensor)
    assert_type(goreweight.Reweighter().stats, dict[str, float])
    assert_type(goreweight.Reweighter().weights(t), torch.Tensor)
    assert_type(goreweight.Reweighter().weights(a), np.ndarray)
    assert_type(goreweight.max_weight_bound(3, 1.0, 1.0), float)
    assert_type(goreweight.schedules.linear(10, 1, 100)(5), float)
    goreweight.weights(pa.array([1.0, 2.0]))
