"""Argument checks shared by the public functions. They only check types and
ranges so that errors name the Python argument; the Go core validates
everything again and owns the math."""

from __future__ import annotations

import json
import math
import numbers
from typing import Any, Optional, Sequence

NONFINITE_POLICIES = ("zero", "raise")
SELECTORS = ("topk", "truncate")


def real(name: str, v: Any) -> float:
    """v as a float, or TypeError naming the argument."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"goreweight: {name} must be a real number, got {type(v).__name__} {v!r}")
    return float(v)


def integer(name: str, v: Any) -> int:
    """v as an int, or TypeError naming the argument."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"goreweight: {name} must be an integer, got {type(v).__name__} {v!r}")
    return int(v)


def check_r(r: Any) -> float:
    """The temperature: a number > 0; +inf means uniform weights."""
    f = real("r", r)
    if not f > 0:
        raise ValueError(f"goreweight: r (the temperature) must be > 0 (inf for uniform weights), got {r!r}")
    return f


def check_strategy(strategy: Any) -> str:
    if not isinstance(strategy, str):
        raise TypeError(f"goreweight: strategy must be a str, got {type(strategy).__name__} {strategy!r}")
    if not strategy:
        raise ValueError("goreweight: strategy must not be empty")
    return strategy


def check_delta(delta: Any) -> float:
    f = real("delta", delta)
    if not (f > 0 and math.isfinite(f)):
        raise ValueError(f"goreweight: delta must be a finite number > 0, got {delta!r}")
    return f


def check_cap(cap: Any) -> Optional[float]:
    if cap is None:
        return None
    f = real("cap", cap)
    if not (f >= 1 and math.isfinite(f)):
        raise ValueError(f"goreweight: cap must be a finite number >= 1 (or None for no cap), got {cap!r}")
    return f


def check_nonfinite(nonfinite: Any) -> str:
    if not isinstance(nonfinite, str):
        raise TypeError(f"goreweight: nonfinite must be a str, got {type(nonfinite).__name__} {nonfinite!r}")
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"goreweight: nonfinite must be 'zero' or 'raise', got {nonfinite!r}")
    return nonfinite


def check_q(strategy: str, q: Any) -> Optional[float]:
    if q is None:
        if strategy in SELECTORS:
            kind = "kept, in (0, 1]" if strategy == "topk" else "dropped, in [0, 1)"
            raise ValueError(f"goreweight: strategy {strategy!r} needs q (the fraction {kind})")
        return None
    f = real("q", q)
    if not math.isfinite(f):
        raise ValueError(f"goreweight: q must be finite, got {q!r}")
    return f


def check_multipliers(m: Any) -> Optional[tuple[float, ...]]:
    if m is None:
        return None
    if isinstance(m, (str, bytes)) or not isinstance(m, Sequence):
        try:
            m = list(m)
        except TypeError:
            raise TypeError(
                f"goreweight: domain_multipliers must be a sequence of numbers, got {type(m).__name__}"
            ) from None
    out = tuple(real(f"domain_multipliers[{i}]", v) for i, v in enumerate(m))
    for i, v in enumerate(out):
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"goreweight: domain_multipliers[{i}] must be finite and >= 0, got {v!r}")
    return out


def options(
    strategy: Any, delta: Any, cap: Any, nonfinite: Any, q: Any, multipliers: Any
) -> dict[str, Any]:
    """The core's Options as a dict, every argument checked."""
    s = check_strategy(strategy)
    o: dict[str, Any] = {"strategy": s, "delta": check_delta(delta), "nonfinite": check_nonfinite(nonfinite)}
    c = check_cap(cap)
    if c is not None:
        o["cap"] = c
    qq = check_q(s, q)
    if qq is not None:
        o["q"] = qq
    m = check_multipliers(multipliers)
    if m is not None:
        o["domain_multipliers"] = list(m)
    return o


def dumps(o: Any) -> str:
    """JSON for the Go side (never NaN or Infinity: those are checked out before)."""
    return json.dumps(o, allow_nan=False)
