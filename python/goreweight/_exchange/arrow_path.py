"""Arrow arrays (pyarrow, polars, ...) through the Arrow C Data Interface:
the array is moved to Go, which reads a float32 array without nulls in place
and converts float16/float64 or nulls (which count as non-finite); the
weights are written into a pyarrow buffer."""

from __future__ import annotations

import ctypes
from typing import Any, Optional

from .domains import domains_array, pointer
from .go import Target, go_arrow

__all__ = ["is_arrow", "arrow_weights"]

_capsule_ptr = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_ptr.restype = ctypes.c_void_p
_capsule_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]


def is_arrow(x: Any) -> bool:
    """Whether x offers the Arrow PyCapsule interface (an array or a stream).

    Example::

        is_arrow(pyarrow.array([1.0]))  # True
    """
    return hasattr(x, "__arrow_c_array__") or hasattr(x, "__arrow_c_stream__")


def arrow_weights(t: Target, r: float, obj: Any, dom: Any, want_stats: bool) -> tuple[Any, int, Optional[int]]:
    """Weights of an Arrow array as a pyarrow float32 array. Returns
    (weights, number of non-finite losses, stats pointer or None).

    Example::

        w, bad, _ = arrow_weights(target, 1.0, pyarrow.array([1.0, 2.0]), None, False)
    """
    import pyarrow as pa

    if not hasattr(obj, "__arrow_c_array__"):
        # A stream (e.g. a ChunkedArray or a polars Series): one array.
        ca = pa.chunked_array(obj)
        obj = ca.chunk(0) if ca.num_chunks == 1 else ca.combine_chunks()
        if isinstance(obj, pa.ChunkedArray):  # older pyarrow
            obj = pa.concat_arrays(obj.chunks)
    caps = obj.__arrow_c_array__()
    if not (isinstance(caps, tuple) and len(caps) == 2):
        raise TypeError("goreweight: losses.__arrow_c_array__() must return (schema capsule, array capsule)")
    schema_cap, array_cap = caps
    sp = _capsule_ptr(schema_cap, b"arrow_schema")
    ap = _capsule_ptr(array_cap, b"arrow_array")
    n = ctypes.c_int64.from_address(ap).value  # struct ArrowArray starts with int64_t length
    d = domains_array(dom, max(n, 0))
    buf = pa.allocate_buffer(4 * max(n, 0))
    bad, stp = go_arrow(t, r, sp, ap, pointer(d), n, buf.address, want_stats)
    return pa.Array.from_buffers(pa.float32(), n, [None, buf]), bad, stp
