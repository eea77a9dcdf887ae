"""numpy arrays by raw pointers; masked arrays weight their unmasked
entries only."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .domains import domains_array, pointer
from .go import Target, go_raw

__all__ = ["numpy_weights"]

_np_f32 = np.dtype(np.float32)


def numpy_weights(t: Target, r: float, a: np.ndarray, dom: Any, want_stats: bool) -> tuple[np.ndarray, int, Optional[int]]:
    """Weights of a 1-D floating numpy array as a float32 array. Returns
    (weights, number of non-finite losses, stats pointer or None).

    A masked array (``numpy.ma``) is weighted over its unmasked entries only,
    as if the masked ones were not in the batch (they are neither data nor
    non-finite losses, so the stats do not count them); the result is a
    masked array with the same mask, whose masked entries hold weight 0.

    Example::

        w, bad, _ = numpy_weights(target, 1.0, numpy.array([1.0, 2.0]), None, False)
    """
    if a.dtype.kind != "f":
        raise TypeError(f"goreweight: losses must be a floating-point array, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"goreweight: losses must be 1-D (one loss per sample), got shape {a.shape}")
    n = a.shape[0]
    d = domains_array(dom, n)
    if isinstance(a, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(a)
        keep = ~mask
        inner, bad, sp = numpy_weights(t, r, np.ma.getdata(a)[keep], None if d is None else d[keep], want_stats)
        full = np.zeros(n, dtype=_np_f32)
        full[keep] = inner
        return np.ma.MaskedArray(full, mask=mask.copy()), bad, sp
    if a.dtype != _np_f32 or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a, dtype=_np_f32)
    w = np.empty(n, dtype=_np_f32)
    bad, sp = go_raw(t, r, a.ctypes.data, pointer(d), n, w.ctypes.data, want_stats)
    return w, bad, sp
