"""An independent float64 numpy implementation of the weights (method.md),
written for the tests only: neither the Go core nor torch_reference is used.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

# The core's documented threshold: losses closer than 8 float32 ulps of the
# largest magnitude are "all equal" and get uniform weights.
TINY_SPREAD = 8 * 2.0**-23


class NonFinite(Exception):
    """The oracle's verdict that the core must refuse the batch (non-finite
    losses it may not weight, an infeasible cap, or no sample with a weight)."""


def weights(
    losses: Sequence[float],
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    domains: Optional[Sequence[int]] = None,
    q: Optional[float] = None,
    domain_multipliers: Optional[Sequence[float]] = None,
) -> np.ndarray:
    l32 = np.asarray(losses, dtype=np.float32)
    l = l32.astype(np.float64)
    ok = np.isfinite(l)
    if (not ok.all() and nonfinite == "raise") or not ok.any():
        raise NonFinite
    lo, hi = l[ok].min(), l[ok].max()
    uniform = strategy == "uniform" or math.isinf(r) or hi - lo <= TINY_SPREAD * max(abs(lo), abs(hi))
    z = np.full(l.shape, -np.inf)
    if uniform:
        z[ok] = 0.0
    elif strategy in ("topk", "truncate"):
        idx = [i for i in range(len(l)) if ok[i]]
        idx.sort(key=lambda i: (-float(l32[i]), i))  # highest loss first, ties: lower index first
        n = len(idx)
        if strategy == "topk":
            k = max(1, min(n, math.ceil(q * n - 1e-9)))
            keep = idx[:k]
        else:
            k = max(1, n - math.floor(q * n + 1e-9))
            keep = idx[n - k:]
        z[keep] = 0.0
    else:
        x = 2 * delta * (l[ok] - lo) / (hi - lo) - delta
        if strategy == "linupper":
            s = np.minimum(x + delta, delta)
        elif strategy == "quadratic":
            s = 1 - x * x / (delta * delta)
        elif strategy == "extremes":
            s = np.abs(x)
        elif strategy == "dro-kl":
            s = x
        else:
            raise ValueError(strategy)
        z[ok] = s / r
    if domain_multipliers is not None:
        with np.errstate(divide="ignore"):
            logm = np.log(np.asarray(domain_multipliers, dtype=np.float64))
        z = z + logm[np.asarray(domains)]
    if np.isneginf(z).all():
        raise NonFinite  # every weight would be 0 (all multipliers of the batch's domains are 0)
    z = z - z.max()
    e = np.exp(z)
    w = e / e.sum()
    if cap is not None:
        t = cap / ok.sum()
        if (w > 0).sum() * t < 1 - 1e-9:
            raise NonFinite  # infeasible cap: the core refuses it too
        # w_i = min(t, lam * w_i) with sum 1: bisection on lam, independent of the
        # core's clip-and-rescale loop.
        lo_l, hi_l = 1.0, 1.0
        while np.minimum(t, hi_l * w).sum() < 1:
            hi_l *= 2
        for _ in range(200):
            mid = (lo_l + hi_l) / 2
            if np.minimum(t, mid * w).sum() < 1:
                lo_l = mid
            else:
                hi_l = mid
        w = np.minimum(t, hi_l * w)
    return w
