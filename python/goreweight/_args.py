"""Converting Python arguments to what the Go core reads.

This module converts types and shapes only, so that a wrong type is a
TypeError naming the argument and a value the C ABI cannot carry (an int
beyond 64 bits, a float JSON cannot hold) a ValueError naming it. It holds
no rule of the method: which values are valid (r > 0, cap >= 1, the known
strategies, nonfinite policies and schedule kinds, ...) is decided by the Go
core alone, whose messages name the argument too.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from ._lib import INT64_MAX, INT64_MIN

__all__ = ["real", "integer", "int64", "text", "multipliers", "options", "json_value", "dumps"]


def real(name: str, v: Any) -> float:
    """v as a float, or TypeError (not a real number) / ValueError (beyond
    the float64 range) naming the argument.

    Example::

        real("r", 2)  # 2.0
    """
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"goreweight: {name} must be a real number, got {type(v).__name__} {v!r}")
    try:
        return float(v)
    except OverflowError:
        raise ValueError(f"goreweight: {name} is beyond the float64 range, got {v!r:.40}") from None


def integer(name: str, v: Any) -> int:
    """v as an int, or TypeError naming the argument.

    Example::

        integer("steps", numpy.int64(3))  # 3
    """
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"goreweight: {name} must be an integer, got {type(v).__name__} {v!r}")
    return int(v)


def int64(name: str, v: Any) -> int:
    """v as an int that a C int64_t holds, or TypeError / ValueError naming
    the argument (ctypes would silently wrap it modulo 2^64).

    Example::

        int64("step", 2**64 + 3)  # ValueError: step ... 64-bit
    """
    i = integer(name, v)
    if not INT64_MIN <= i <= INT64_MAX:
        raise ValueError(f"goreweight: {name} must fit in a signed 64-bit integer, got {i}")
    return i


def text(name: str, v: Any) -> str:
    """v as a str, or TypeError naming the argument.

    Example::

        text("strategy", "linupper")
    """
    if not isinstance(v, str):
        raise TypeError(f"goreweight: {name} must be a str, got {type(v).__name__} {v!r}")
    return v


def multipliers(m: Any) -> Optional[tuple[float, ...]]:
    """Per-domain multipliers as a tuple of floats (domain id = position), or
    None. Any iterable of real numbers is read exactly once (an iterator or
    generator is materialised here, before anything else looks at it). A
    mapping (e.g. a dict ``{domain id: multiplier}``) is refused with a
    TypeError: iterating it would read its keys, not its values.

    Example::

        multipliers(iter([1, 2.5]))  # (1.0, 2.5)
    """
    if m is None:
        return None
    if isinstance(m, Mapping):
        raise TypeError(
            "goreweight: domain_multipliers must be a sequence indexed by domain id, got a "
            f"{type(m).__name__} (a mapping); pass e.g. [m[i] for i in range(n_domains)]"
        )
    if isinstance(m, (str, bytes)) or not isinstance(m, Iterable):
        raise TypeError(f"goreweight: domain_multipliers must be a sequence of numbers, got {type(m).__name__}")
    if hasattr(m, "tolist") and not isinstance(m, (list, tuple)):  # numpy arrays, tensors
        if getattr(m, "ndim", 1) != 1:
            raise ValueError(
                f"goreweight: domain_multipliers must be 1-D, got shape {tuple(getattr(m, 'shape', ()))}"
            )
        m = m.tolist()
    return tuple(real(f"domain_multipliers[{i}]", v) for i, v in enumerate(m))


def options(strategy: Any, delta: Any, cap: Any, nonfinite: Any, q: Any, mult: Any) -> dict[str, Any]:
    """The core's Options as a dict of JSON values (types converted; the Go
    core validates the values). ``cap`` and ``q`` left out when None.

    Example::

        options("linupper", 1.0, None, "zero", None, None)
        # {"strategy": "linupper", "delta": 1.0, "nonfinite": "zero"}
    """
    o: dict[str, Any] = {
        "strategy": text("strategy", strategy),
        "delta": real("delta", delta),
        "nonfinite": text("nonfinite", nonfinite),
    }
    if cap is not None:
        o["cap"] = real("cap", cap)
    if q is not None:
        o["q"] = real("q", q)
    mm = multipliers(mult)
    if mm is not None:
        o["domain_multipliers"] = list(mm)
    return o


def json_value(name: str, v: Any) -> Any:
    """v as plain JSON values: numpy scalars and 0-d arrays to numbers,
    tuples, arrays and other iterables to lists, mappings to dicts with str
    keys; TypeError naming the place (``name``, ``name.key``, ``name[i]``)
    of a value JSON cannot hold. Which fields and values are valid is left
    to the Go core.

    Example::

        json_value("schedule", {"kind": "step", "values": numpy.array([2.0, 1.0])})
    """
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return real(name, v)
    if isinstance(v, Mapping):
        return {str(k): json_value(f"{name}.{k}", x) for k, x in v.items()}
    if hasattr(v, "tolist") and getattr(v, "ndim", 1) == 0:  # 0-d arrays and tensors
        return json_value(name, v.tolist())
    if isinstance(v, Iterable) and not isinstance(v, (bytes, bytearray)):
        if hasattr(v, "tolist"):
            v = v.tolist()
        return [json_value(f"{name}[{i}]", x) for i, x in enumerate(v)]
    raise TypeError(f"goreweight: {name} must be a JSON value (number, str, list or dict), got {type(v).__name__}")


def _nonfinite_path(o: Any, path: str) -> Optional[str]:
    """The path (e.g. ``"schedule.r"``) of the first non-finite float in o, or None."""
    if isinstance(o, float):
        return None if math.isfinite(o) else path
    if isinstance(o, dict):
        for k, v in o.items():
            p = _nonfinite_path(v, f"{path}.{k}" if path else str(k))
            if p is not None:
                return p
    if isinstance(o, (list, tuple)):
        for i, v in enumerate(o):
            p = _nonfinite_path(v, f"{path}[{i}]")
            if p is not None:
                return p
    return None


def dumps(o: Any) -> str:
    """JSON for the Go side. JSON has no NaN or infinity: a non-finite float
    is a ValueError naming where it is (e.g. ``delta`` or ``schedule.r``).

    Example::

        dumps({"strategy": "linupper", "delta": float("inf")})  # ValueError: delta ...
    """
    try:
        return json.dumps(o, allow_nan=False)
    except ValueError:
        where = _nonfinite_path(o, "")
        if where is None:
            raise
        raise ValueError(f"goreweight: {where} must be a finite number") from None
