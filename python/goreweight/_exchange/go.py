"""The two calls that compute weights in Go: raw pointers (the packed fast
path) and the Arrow C Data Interface."""

from __future__ import annotations

import json
from typing import Optional, Union

from .. import _lib
from .._lib import slots

__all__ = ["Target", "go_raw", "go_arrow", "stats_dict", "struct_result"]


class Target:
    """Which Go object computes the weights: a Weigher (with r per call) or a
    Reweighter (its schedule gives r and the call advances its step).

    Example::

        t = Target(_lib.new_handle("grw_weigher_new", '{"strategy": "linupper"}'), False)
    """

    __slots__ = ("h", "reweighter")

    def __init__(self, h: int, reweighter: bool) -> None:
        self.h = h
        self.reweighter = reweighter


def stats_dict(p: Optional[int]) -> dict[str, float]:
    """Read, free and parse a flat stats JSON string from Go.

    Example::

        stats_dict(None)  # {}
    """
    s = _lib.take_string(p)
    return {str(k): float(v) for k, v in json.loads(s).items()} if s else {}


def go_raw(t: Target, r: float, lp: int, dp: Optional[int], n: int, op: int, want_stats: bool) -> tuple[int, Optional[int]]:
    """One raw-pointer call (grw_weights_packed): n float32 losses at lp,
    int32 domain ids at dp (or None), n float32 weights written at op.
    Returns (number of non-finite losses, stats string pointer or None).

    Example::

        bad, _ = go_raw(t, 1.0, x.ctypes.data, None, len(x), w.ctypes.data, False)
    """
    s = slots
    a = _lib._api or _lib.load()
    args = s.args
    args.handle = t.h
    args.r = r
    args.losses = lp
    args.domains = dp
    args.n = n
    args.weights_out = op
    args.want_stats = want_stats
    return struct_result(a.grw_weights_packed(s.args_ref, s.err_ref), args, want_stats)


def struct_result(st: int, args: Union[_lib.WeightsArgs, _lib.MaskedArgs], want_stats: bool) -> tuple[int, Optional[int]]:
    """What a call that takes an argument struct (grw_weights_packed,
    grw_weights_masked) returns, from its status st and the struct's out
    fields: raises the error of a nonzero status, else returns (nonfinite,
    the stats string pointer or None), taking the pointer out of the struct
    so that only the caller frees it.

    Example::

        bad, p = struct_result(a.grw_weights_packed(s.args_ref, s.err_ref), s.args, True)
    """
    if st:
        _lib.raise_status(st, slots)
    if want_stats:
        p = args.stats_json
        args.stats_json = None
        return args.nonfinite, p
    return args.nonfinite, None


def go_arrow(t: Target, r: float, sp: int, ap: int, dp: Optional[int], n: int, op: int, want_stats: bool) -> tuple[int, Optional[int]]:
    """One Arrow C Data Interface call (schema at sp, array at ap, which Go
    moves); see :func:`go_raw`.

    Example::

        bad, _ = go_arrow(t, 1.0, schema_ptr, array_ptr, None, n, buf.address, False)
    """
    s = slots
    a = _lib._api or _lib.load()
    so = s.out_p if want_stats else None
    if t.reweighter:
        st = a.grw_reweighter_weights_arrow(t.h, sp, ap, dp, n, op, s.n_p, so, s.err_p)
    else:
        st = a.grw_weigher_weights_arrow(t.h, r, sp, ap, dp, n, op, s.n_p, so, s.err_p)
    if st:
        _lib.raise_status(st, s)
    if want_stats:
        p = s.out.value
        s.out.value = None
        return int(s.n.value), p
    return int(s.n.value), None
