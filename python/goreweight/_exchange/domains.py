"""Domain ids of any kind (tensor, numpy array, Arrow array, sequence) as
one contiguous int32 numpy array. Only types, shapes and the int32 range
are checked here; Go checks the ids themselves."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from .._lib import GoreweightError

__all__ = ["domains_array", "pointer"]

_I32 = np.iinfo(np.int32)


def domains_array(domains: Any, n: int) -> Optional[np.ndarray]:
    """Domain ids as a contiguous int32 numpy array of length n (a copy only
    where needed), or None; TypeError or ValueError naming ``domains``.

    Example::

        domains_array([0, 1, 1], 3)  # array([0, 1, 1], dtype=int32)
    """
    if domains is None:
        return None
    if isinstance(domains, torch.Tensor):
        if domains.device.type == "meta":
            raise GoreweightError("goreweight: domains is on the meta device, which holds no data (ids are needed)")
        if domains.is_floating_point() or domains.is_complex() or domains.dtype == torch.bool:
            raise TypeError(f"goreweight: domains must hold integer ids, got a tensor of {domains.dtype}")
        if domains.layout is not torch.strided:
            raise TypeError(f"goreweight: domains must be a dense (strided) tensor, got layout {domains.layout}")
        a = domains.detach().cpu().numpy()
    elif isinstance(domains, np.ma.MaskedArray):
        if np.ma.getmaskarray(domains).any():
            raise ValueError("goreweight: domains must not have masked entries (every loss needs its domain id)")
        a = np.ma.getdata(domains)
    elif isinstance(domains, np.ndarray):
        a = domains
    elif hasattr(domains, "__arrow_c_array__") or hasattr(domains, "__arrow_c_stream__"):
        import pyarrow as pa

        arr = pa.array(domains) if hasattr(domains, "__arrow_c_array__") else pa.chunked_array(domains)
        if arr.null_count:
            raise ValueError("goreweight: domains must not contain nulls")
        a = arr.to_numpy(zero_copy_only=False)
    elif isinstance(domains, (list, tuple, range)):
        a = np.asarray(domains)
        if a.size == 0:
            a = a.astype(np.int64)
    else:
        raise TypeError(
            "goreweight: domains must be None, a torch.Tensor, a numpy array, an Arrow array or a "
            f"sequence of ints, got {type(domains).__name__}"
        )
    if a.dtype.kind not in "iu":
        raise TypeError(f"goreweight: domains must hold integer ids, got dtype {a.dtype}")
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"goreweight: domains must be 1-D with one id per loss ({n}), got shape {tuple(a.shape)}")
    if a.dtype != np.int32:
        if a.size:
            hi, lo = int(a.max()), int(a.min())
            if hi > _I32.max or lo < _I32.min:
                bad = hi if hi > _I32.max else lo
                raise ValueError(f"goreweight: domains must be 32-bit ids (< 2**31), got {bad}")
        a = a.astype(np.int32)
    return np.ascontiguousarray(a)


def pointer(a: Optional[np.ndarray]) -> Optional[int]:
    """The address of a's data, or None.

    Example::

        pointer(None)  # None
    """
    return None if a is None else int(a.ctypes.data)
