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
from collections.abc import Iterable, Mapping
from typing import Any

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
        d: dict[str, Any] = {str(k): _args.json_value(f"schedule {k}", v) for k, v in spec.items()}
        self._d = d
        self._json = _args.dumps(d).encode("utf-8")
        self(0)  # the Go core validates the whole schedule

    def __call__(self, step: int) -> float:
        """The temperature at a global step >= 0 (``inf`` during the warm-up).

        Example::

            goreweight.schedules.linear(100, 1, 10).__call__(5)  # 50.5
        """
        step = _args.int64("step", step)
        s = _lib.slots
        _lib.call("grw_schedule_at", self._json, step, s.d_p)
        return float(s.d.value)

    @property
    def kind(self) -> str:
        """The schedule kind (``"constant"``, ``"linear"``, ...).

        Example::

            goreweight.schedules.constant(1.0).kind  # "constant"
        """
        return str(self._d.get("kind", ""))

    @property
    def warmup(self) -> int:
        """Number of uniform warm-up steps.

        Example::

            goreweight.schedules.constant(1.0, warmup=10).warmup  # 10
        """
        return int(self._d.get("warmup", 0))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the core's Schedule (a fresh copy).

        Example::

            goreweight.schedules.constant(2.0).to_dict()  # {"kind": "constant", "r": 2.0}
        """
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


def _seq(name: str, v: Any) -> list[Any]:
    if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, Iterable):
        raise TypeError(f"goreweight: {name} must be a sequence, got {type(v).__name__}")
    return list(v.tolist() if hasattr(v, "tolist") else v)


def _warm(d: dict[str, Any], warmup: Any) -> dict[str, Any]:
    w = _args.int64("warmup", warmup)
    if w:
        d["warmup"] = w
    return d


def _annealing(kind: str, r_start: Any, r_end: Any, steps: Any, warmup: Any) -> Schedule:
    return Schedule(_warm({"kind": kind, "r_start": _args.real("r_start", r_start),
                           "r_end": _args.real("r_end", r_end), "steps": _args.int64("steps", steps)}, warmup))


def constant(r: float, *, warmup: int = 0) -> Schedule:
    """r at every step (after ``warmup`` uniform steps).

    Example::

        goreweight.schedules.constant(1.0, warmup=1000)(999)  # inf (uniform)
    """
    return Schedule(_warm({"kind": "constant", "r": _args.real("r", r)}, warmup))


def linear(r_start: float, r_end: float, steps: int, *, warmup: int = 0) -> Schedule:
    """From ``r_start`` to ``r_end`` linearly over ``steps`` steps, then ``r_end``.

    Example::

        goreweight.schedules.linear(100, 1, 10_000)(10_000)  # 1.0
    """
    return _annealing("linear", r_start, r_end, steps, warmup)


def cosine(r_start: float, r_end: float, steps: int, *, warmup: int = 0) -> Schedule:
    """From ``r_start`` to ``r_end`` along a half cosine over ``steps`` steps, then ``r_end``.

    Example::

        goreweight.schedules.cosine(100, 1, 10_000)(0)  # 100.0
    """
    return _annealing("cosine", r_start, r_end, steps, warmup)


def exponential(r_start: float, r_end: float, steps: int, *, warmup: int = 0) -> Schedule:
    """From ``r_start`` to ``r_end`` geometrically over ``steps`` steps
    (``r_start · (r_end/r_start)^(t/steps)``), then ``r_end``.

    Example::

        goreweight.schedules.exponential(100, 1, 10)(5)  # 10.0
    """
    return _annealing("exponential", r_start, r_end, steps, warmup)


def step(boundaries: Iterable[int], values: Iterable[float], *, warmup: int = 0) -> Schedule:
    """Piecewise constant: ``values[k]`` once ``k`` of the strictly increasing
    ``boundaries`` (steps after the warm-up, >= 1) have been reached;
    ``len(values) == len(boundaries) + 1``.

    Example::

        goreweight.schedules.step([100], [10.0, 1.0])(100)  # 1.0
    """
    b = [_args.int64(f"boundaries[{i}]", x) for i, x in enumerate(_seq("boundaries", boundaries))]
    v = [_args.real(f"values[{i}]", x) for i, x in enumerate(_seq("values", values))]
    d: dict[str, Any] = {"kind": "step", "values": v}
    if b:
        d["boundaries"] = b
    return Schedule(_warm(d, warmup))


def uniform_burn_in(r: float, steps: int = 1000) -> Schedule:
    """The authors' small-scale variant: ``steps`` uniform steps, then a fixed
    ``r``; the same as ``constant(r, warmup=steps)``.

    Example::

        goreweight.schedules.uniform_burn_in(1.0, steps=1000) == goreweight.schedules.constant(1.0, warmup=1000)
    """
    return constant(r, warmup=_args.int64("steps", steps))


def high_then_fixed(r: float, r_high: float = 100.0, steps: int = 2000) -> Schedule:
    """The authors' large-scale variant: ``r_high`` for ``steps`` steps, then a
    fixed ``r``; the same as ``step([steps], [r_high, r])``.

    Example::

        goreweight.schedules.high_then_fixed(1.0)(1999)  # 100.0
    """
    return step([steps], [r_high, r])


def from_dict(spec: Mapping[str, Any]) -> Schedule:
    """A schedule from its dict (JSON) form, as returned by ``to_dict``.

    Example::

        goreweight.schedules.from_dict({"kind": "constant", "r": 2.0})(0)  # 2.0
    """
    return Schedule(spec)
