"""Temperature schedules: r as a pure function of the global step.

Each schedule is a small value object holding the JSON form of the Go core's
``Schedule``; calling it, ``s(step)``, asks the Go core (no math is redone
in Python). During the first ``warmup`` steps the temperature is ``inf``:
the weights are uniform. After the warm-up the schedule runs on
``t = step - warmup``; the annealing kinds go from ``r_start`` at t = 0 to
``r_end`` at t = ``steps`` and hold ``r_end`` after; :func:`step` holds its
last value.

The two variants of the authors' public code::

    uniform_burn_in(r, steps=1000)  # == constant(r, warmup=1000)
    high_then_fixed(r, r_high=100, steps=2000)  # == step([2000], [100, r])
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

from . import _args, _lib

__all__ = [
    "Schedule",
    "constant",
    "linear",
    "cosine",
    "exponential",
    "step",
    "uniform_burn_in",
    "high_then_fixed",
    "from_dict",
]

_KINDS = ("constant", "linear", "cosine", "exponential", "step")
_FIELDS = ("kind", "r", "r_start", "r_end", "steps", "boundaries", "values", "warmup")


class Schedule:
    """A temperature schedule (build one with the functions of this module).

    ``s(step)`` returns the temperature at a global step >= 0 (``inf`` during
    the warm-up); ``s.to_dict()`` is the JSON form the Go core and
    :class:`goreweight.Reweighter` read. Schedules compare equal when their
    dicts are equal.
    """

    __slots__ = ("_d", "_json")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if not isinstance(spec, Mapping):
            raise TypeError(f"goreweight: a schedule spec must be a mapping, got {type(spec).__name__}")
        unknown = set(spec) - set(_FIELDS)
        if unknown:
            raise ValueError(f"goreweight: unknown schedule field(s) {sorted(unknown)} (known: {list(_FIELDS)})")
        kind = spec.get("kind")
        if kind not in _KINDS:
            raise ValueError(f"goreweight: schedule kind must be one of {list(_KINDS)}, got {kind!r}")
        d: dict[str, Any] = {"kind": kind}
        for k in ("r", "r_start", "r_end"):
            if k in spec:
                d[k] = _args.real(k, spec[k])
        for k in ("steps", "warmup"):
            if k in spec:
                d[k] = _args.integer(k, spec[k])
        if "boundaries" in spec:
            d["boundaries"] = [_args.integer(f"boundaries[{i}]", b) for i, b in enumerate(_seq("boundaries", spec["boundaries"]))]
        if "values" in spec:
            d["values"] = [_args.real(f"values[{i}]", v) for i, v in enumerate(_seq("values", spec["values"]))]
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"goreweight: schedule {k} must be finite, got {v}")
            if isinstance(v, list) and any(isinstance(x, float) and not math.isfinite(x) for x in v):
                raise ValueError(f"goreweight: schedule {k} must be finite, got {v}")
        self._d = d
        self._json = _args.dumps(d).encode("utf-8")
        self(0)  # the Go core validates the whole schedule

    def __call__(self, step: int) -> float:
        """The temperature at a global step >= 0 (``inf`` during the warm-up)."""
        step = _args.integer("step", step)
        if step < 0:
            raise ValueError(f"goreweight: step must be >= 0, got {step}")
        s = _lib.slots
        _lib.call("grw_schedule_at", self._json, step, s.d_p)
        return float(s.d.value)

    @property
    def kind(self) -> str:
        """The schedule kind: constant, linear, cosine, exponential or step."""
        return str(self._d["kind"])

    @property
    def warmup(self) -> int:
        """Number of uniform warm-up steps."""
        return int(self._d.get("warmup", 0))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the core's Schedule (a fresh copy)."""
        return json.loads(self._json)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and other._d == self._d

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._d.items() if k != "kind")
        return f"goreweight.schedules.{self.kind}({args})"

    def __reduce__(self) -> Any:
        return (from_dict, (self.to_dict(),))


def _seq(name: str, v: Any) -> Sequence[Any]:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        raise TypeError(f"goreweight: {name} must be a sequence, got {type(v).__name__}")
    return list(v)


def _warm(d: dict[str, Any], warmup: int) -> dict[str, Any]:
    w = _args.integer("warmup", warmup)
    if w < 0:
        raise ValueError(f"goreweight: warmup must be >= 0, got {warmup}")
    if w:
        d["warmup"] = w
    return d


def _positive(name: str, v: Any) -> float:
    f = _args.real(name, v)
    if not (f > 0 and math.isfinite(f)):
        raise ValueError(f"goreweight: {name} must be a finite number > 0, got {v!r}")
    return f


def _steps(steps: Any) -> int:
    s = _args.integer("steps", steps)
    if s < 1:
        raise ValueError(f"goreweight: steps must be >= 1, got {steps!r}")
    return s


def constant(r: float, *, warmup: int = 0) -> Schedule:
    """r at every step (after ``warmup`` uniform steps)."""
    return Schedule(_warm({"kind": "constant", "r": _positive("r", r)}, warmup))


def linear(r_start: float, r_end: float, steps: int, *, warmup: int = 0) -> Schedule:
    """From ``r_start`` to ``r_end`` linearly over ``steps`` steps, then ``r_end``."""
    return Schedule(_warm({"kind": "linear", "r_start": _positive("r_start", r_start),
                           "r_end": _positive("r_end", r_end), "steps": _steps(steps)}, warmup))


def cosine(r_start: float, r_end: float, steps: int, *, warmup: int = 0) -> Schedule:
    """From ``r_start`` to ``r_end`` along a half cosine over ``steps`` steps, then ``r_end``."""
    return Schedule(_warm({"kind": "cosine", "r_start": _positive("r_start", r_start),
                           "r_end": _positive("r_end", r_end), "steps": _steps(steps)}, warmup))


def exponential(r_start: float, r_end: float, steps: int, *, warmup: int = 0) -> Schedule:
    """From ``r_start`` to ``r_end`` geometrically over ``steps`` steps
    (``r_start · (r_end/r_start)^(t/steps)``), then ``r_end``."""
    return Schedule(_warm({"kind": "exponential", "r_start": _positive("r_start", r_start),
                           "r_end": _positive("r_end", r_end), "steps": _steps(steps)}, warmup))


def step(boundaries: Sequence[int], values: Sequence[float], *, warmup: int = 0) -> Schedule:
    """Piecewise constant: ``values[k]`` once ``k`` of the strictly increasing
    ``boundaries`` (steps after the warm-up, >= 1) have been reached;
    ``len(values) == len(boundaries) + 1``."""
    b = [_args.integer(f"boundaries[{i}]", x) for i, x in enumerate(_seq("boundaries", boundaries))]
    v = [_positive(f"values[{i}]", x) for i, x in enumerate(_seq("values", values))]
    if len(v) != len(b) + 1:
        raise ValueError(f"goreweight: step needs one more value than boundaries, got {len(v)} values and {len(b)} boundaries")
    d: dict[str, Any] = {"kind": "step", "values": v}
    if b:
        d["boundaries"] = b
    return Schedule(_warm(d, warmup))


def uniform_burn_in(r: float, steps: int = 1000) -> Schedule:
    """The authors' small-scale variant: ``steps`` uniform steps, then a fixed
    ``r``; the same as ``constant(r, warmup=steps)``."""
    return constant(r, warmup=_args.integer("steps", steps))


def high_then_fixed(r: float, r_high: float = 100.0, steps: int = 2000) -> Schedule:
    """The authors' large-scale variant: ``r_high`` for ``steps`` steps, then a
    fixed ``r``; the same as ``step([steps], [r_high, r])``."""
    return step([steps], [r_high, r])


def from_dict(spec: Mapping[str, Any]) -> Schedule:
    """A schedule from its dict (JSON) form, as returned by ``to_dict``."""
    return Schedule(spec)
