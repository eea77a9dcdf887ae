"""The masked (token-level) call into Go: a dense batch, a mask and a
reference loss by raw pointers (grw_weights_masked), no compaction."""

from __future__ import annotations

from typing import Optional

from .. import _lib
from .._lib import slots
from .go import Target, struct_result

__all__ = ["masked_available", "go_masked"]


def masked_available() -> bool:
    """Whether the loaded library has grw_weights_masked (a library built
    before it lacks the export; the token path then compacts in Python).

    Example::

        masked_available()  # True for the bundled library
    """
    a = _lib._api or _lib.load()
    return not isinstance(getattr(a, "grw_weights_masked", None), _lib._Missing)


def go_masked(
    t: Target,
    r: float,
    lp: int,
    rp: Optional[int],
    mp: Optional[int],
    flags: int,
    dp: Optional[int],
    n: int,
    op: int,
    want_stats: bool,
) -> tuple[int, Optional[int]]:
    """One masked call: n float32 losses at lp, n float32 reference losses
    at rp (or None), n mask bytes at mp (nonzero = counted; None: every
    entry), ``_lib.MASK_*`` flags, n int32 domain ids at dp (or None), n
    float32 weights written at op (0 where not counted). Returns (number of
    counted non-finite scores, stats string pointer or None).

    Example::

        bad, _ = go_masked(t, 1.0, x.ctypes.data, None, m.ctypes.data, 0, None, x.size, w.ctypes.data, False)
    """
    s = slots
    a = _lib._api or _lib.load()
    args = s.margs
    args.handle = t.h
    args.r = r
    args.losses = lp
    args.reference = rp
    args.mask = mp
    args.domains = dp
    args.n = n
    args.weights_out = op
    args.flags = flags
    args.want_stats = want_stats
    return struct_result(a.grw_weights_masked(s.margs_ref, s.err_ref), args, want_stats)
