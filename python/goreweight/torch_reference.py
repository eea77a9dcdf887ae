"""The weights in pure PyTorch: a benchmark baseline and a test oracle.

This is the straightforward implementation a researcher would write, kept
correct: float64 internally, non-finite losses left out of the min/max and
given weight 0, uniform weights when the losses are too close to normalise
(the same threshold as the Go core), an exact cap. It is *not* used by the
package; :func:`goreweight.weights` calls the Go core.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import torch

__all__ = ["weights"]

_TINY_SPREAD = 8 * 2.0**-23  # the core's tinySpread


def weights(
    losses: Any,
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    domains: Any = None,
    *,
    q: Optional[float] = None,
    domain_multipliers: Optional[Sequence[float]] = None,
) -> torch.Tensor:
    """Same arguments and weights as :func:`goreweight.weights`, computed in
    PyTorch; returns a float32 tensor on the input's device (a numpy input
    is converted to a CPU tensor).

    Example::

        from goreweight import torch_reference
        torch_reference.weights(torch.tensor([1.0, 2.0, 3.0]), "linupper", r=1.0)
    """
    if not isinstance(losses, torch.Tensor):
        losses = np.asarray(losses, dtype=np.float32)  # numpy, pyarrow (nulls become NaN)
    l = torch.as_tensor(losses).detach().to(torch.float32).to(torch.float64)
    finite = torch.isfinite(l)
    if not bool(finite.all()) and (nonfinite == "raise" or not bool(finite.any())):
        raise ValueError("non-finite losses")
    lmin = torch.where(finite, l, math.inf).min()
    lmax = torch.where(finite, l, -math.inf).max()
    spread = lmax - lmin
    uniform = strategy == "uniform" or math.isinf(r) or bool(spread <= _TINY_SPREAD * torch.maximum(lmin.abs(), lmax.abs()))
    x = (2 * delta * (l - lmin) / spread - delta) if not uniform else torch.zeros_like(l)
    if uniform:
        s = torch.zeros_like(l)
    elif strategy == "linupper":
        s = torch.clamp(x + delta, max=delta)
    elif strategy == "quadratic":
        s = 1 - x**2 / delta**2
    elif strategy == "extremes":
        s = x.abs()
    elif strategy == "dro-kl":
        s = x
    elif strategy in ("topk", "truncate"):
        if q is None:
            raise ValueError(f"strategy {strategy!r} needs q")
        # rank the finite losses, highest first, ties by lower index
        idx = torch.nonzero(finite).flatten()
        order = idx[torch.sort(l[idx].to(torch.float32), descending=True, stable=True).indices]
        n = idx.numel()
        k = math.ceil(q * n - 1e-9) if strategy == "topk" else n - math.floor(q * n + 1e-9)
        k = max(1, min(k, n))
        keep = order[:k] if strategy == "topk" else order[n - k:]
        s = torch.full_like(l, -math.inf)
        s[keep] = 0
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    z = s / r if not uniform else s
    if domain_multipliers is not None:
        m = torch.as_tensor(domain_multipliers, dtype=torch.float64, device=l.device)
        z = z + torch.log(m)[torch.as_tensor(domains, device=l.device).long()]
    z = torch.where(finite, z, torch.tensor(-math.inf, dtype=z.dtype, device=z.device))
    if cap is None:
        return torch.softmax(z, dim=0).to(torch.float32)
    # KL projection onto {w <= cap/M}: clip at the cap, rescale the rest, repeat.
    # In log space: at small r the softmax of the uncapped entries underflows to
    # 0 though their projected weights are not small (cap = 1 is exactly uniform).
    logw = torch.log_softmax(z, dim=0)
    t = cap / int(finite.sum())
    support = logw > -math.inf
    if int(support.sum()) * t < 1 - 1e-9:
        raise ValueError("infeasible cap")
    logt = math.log(t)
    capped = torch.zeros_like(finite)
    while True:
        rem = 1 - int(capped.sum()) * t
        free = ~capped & support
        if rem <= 0 or not bool(free.any()):
            loglam = -math.inf
            break
        loglam = math.log(rem) - float(torch.logsumexp(logw[free], dim=0))
        new = free & (loglam + logw > logt)
        if not bool(new.any()):
            break
        capped |= new
    free_w = torch.where(support, torch.exp(logw + loglam), torch.zeros_like(logw))
    w = torch.where(capped, torch.full_like(logw, t), free_w)
    return w.to(torch.float32)
