"""Moving losses to Go and weights back, for torch tensors (CPU and CUDA),
numpy arrays and Arrow arrays. Nothing here computes weights: every path
ends in one call of the Go library.

* torch (CPU), numpy: raw pointers. A float32 contiguous input is read in
  place; other floating dtypes and strides are converted first (one copy).
  The weights are written by Go straight into a freshly allocated output.
* torch (CUDA): exactly one device-to-host copy of the losses into a reused
  pinned buffer, the Go call, and one host-to-device copy of the weights from
  a second pinned buffer (asynchronous; the buffer is reused only after it
  completed).
* Arrow (anything with ``__arrow_c_array__`` or ``__arrow_c_stream__``):
  the Arrow C Data Interface. The array is moved to Go, which reads a float32
  array without nulls in place and converts float16/float64 or nulls (which
  count as non-finite); the weights are written into a pyarrow buffer.
"""

from __future__ import annotations

import ctypes
import json
import threading
from typing import Any, Optional

import numpy as np
import torch

from . import _lib
from ._lib import slots

_f32 = torch.float32
_strided = torch.strided
_np_f32 = np.dtype(np.float32)

_capsule_ptr = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_ptr.restype = ctypes.c_void_p
_capsule_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]


def stats_dict(p: Optional[int]) -> dict[str, float]:
    """Read, free and parse a flat stats JSON string from Go."""
    s = _lib.take_string(p)
    return {k: float(v) for k, v in json.loads(s).items()} if s else {}


class Target:
    """Which Go object computes the weights: a Weigher (with r per call) or a
    Reweighter (its schedule gives r and the call advances its step)."""

    __slots__ = ("h", "reweighter")

    def __init__(self, h: int, reweighter: bool) -> None:
        self.h = h
        self.reweighter = reweighter


def go_raw(t: Target, r: float, lp: int, dp: Optional[int], n: int, op: int, want_stats: bool) -> tuple[int, Optional[int]]:
    """One raw-pointer call (grw_weights_packed). Returns (number of
    non-finite losses, stats string pointer or None)."""
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
    st = a.grw_weights_packed(s.args_ref, s.err_ref)
    if st:
        _lib.raise_status(st, s)
    if want_stats:
        p = args.stats_json
        args.stats_json = None
        return args.nonfinite, p
    return args.nonfinite, None


def go_arrow(t: Target, r: float, sp: int, ap: int, dp: Optional[int], n: int, op: int, want_stats: bool) -> tuple[int, Optional[int]]:
    """One Arrow C Data Interface call; see go_raw."""
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
        return s.n.value, p
    return s.n.value, None


# ---------------------------------------------------------------- domains


def domains_array(domains: Any, n: int) -> Optional[np.ndarray]:
    """Domain ids as a contiguous int32 numpy array of length n (a copy only
    where needed), or None."""
    if domains is None:
        return None
    if isinstance(domains, torch.Tensor):
        if domains.is_floating_point() or domains.is_complex() or domains.dtype == torch.bool:
            raise TypeError(f"goreweight: domains must hold integer ids, got a tensor of {domains.dtype}")
        d = domains.detach()
        if d.is_cuda:
            d = d.cpu()
        a = d.numpy()
    elif isinstance(domains, np.ndarray):
        a = domains
    elif hasattr(domains, "__arrow_c_array__") or hasattr(domains, "__arrow_c_stream__"):
        import pyarrow as pa

        arr = pa.chunked_array(domains) if not hasattr(domains, "__arrow_c_array__") else pa.array(domains)
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
        if a.size and (int(a.max()) > np.iinfo(np.int32).max or int(a.min()) < 0):
            bad = int(a.max()) if int(a.max()) > np.iinfo(np.int32).max else int(a.min())
            raise ValueError(f"goreweight: domain ids must be in [0, 2**31), got {bad}")
        a = a.astype(np.int32)
    return np.ascontiguousarray(a)


def _ptr(a: Optional[np.ndarray]) -> Optional[int]:
    return None if a is None else a.ctypes.data


# ---------------------------------------------------------------- torch


def check_losses_tensor(t: torch.Tensor, name: str) -> int:
    """Checks a 1-D non-empty floating dense tensor and returns its length."""
    if t.ndim != 1:
        raise ValueError(f"goreweight: {name} must be 1-D (one loss per sample), got shape {tuple(t.shape)}")
    n = t.numel()
    if n == 0:
        raise ValueError(f"goreweight: {name} is empty: there are no losses to weight")
    if t.dtype is not _f32 and not t.is_floating_point():
        raise TypeError(f"goreweight: {name} must be a floating-point tensor, got {t.dtype}")
    if t.layout is not _strided:
        raise TypeError(f"goreweight: {name} must be a dense (strided) tensor, got layout {t.layout}")
    return n


class _Pinned:
    """A thread's reusable pinned buffers for one CUDA device."""

    __slots__ = ("cap", "inp", "out", "event")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.inp = torch.empty(cap, dtype=_f32, pin_memory=True)
        self.out = torch.empty(cap, dtype=_f32, pin_memory=True)
        self.event: Optional[Any] = None


class _PinnedPool(threading.local):
    def __init__(self) -> None:
        self.by_device: dict[Any, _Pinned] = {}


_pinned = _PinnedPool()


def _pinned_for(device: torch.device, n: int) -> _Pinned:
    p = _pinned.by_device.get(device)
    if p is None or p.cap < n:
        if p is not None and p.event is not None:
            p.event.synchronize()
        cap = 1 << max(10, (n - 1).bit_length())
        p = _Pinned(cap)
        _pinned.by_device[device] = p
    elif p.event is not None:
        p.event.synchronize()  # the last copy out of p.out has finished
        p.event = None
    return p


def torch_weights(t: Target, r: float, x: torch.Tensor, n: int, dom: Optional[np.ndarray], want_stats: bool) -> tuple[torch.Tensor, int, Optional[int]]:
    """Weights of a 1-D floating tensor x of length n, on x's device."""
    dp = _ptr(dom)
    if x.is_cuda:
        dev = x.device
        p = _pinned_for(dev, n)
        src = x.detach()
        if src.dtype != _f32:
            src = src.float()  # on the device, before the one copy to the host
        inp, outp = p.inp[:n], p.out[:n]
        inp.copy_(src)  # device to host, synchronous
        bad, sp = go_raw(t, r, inp.data_ptr(), dp, n, outp.data_ptr(), want_stats)
        with torch.cuda.device(dev):  # allocate, copy and record on dev's current stream
            w = torch.empty(n, dtype=_f32, device=dev)
            w.copy_(outp, non_blocking=True)  # host to device, asynchronous
            ev = torch.cuda.Event()
            ev.record(torch.cuda.current_stream(dev))
        p.event = ev  # the next call waits for it before Go writes into p.out again
        return w, bad, sp
    if not x.is_cpu:  # another accelerator (mps, xpu, ...): through host memory
        w, bad, sp = torch_weights(t, r, x.detach().to("cpu", _f32), n, dom, want_stats)
        return w.to(x.device), bad, sp
    if x.dtype is not _f32:
        x = x.detach().float()
    if not x.is_contiguous():
        x = x.contiguous()
    w = x.new_empty(n)  # float32 on the CPU, without x's autograd history
    bad, sp = go_raw(t, r, x.data_ptr(), dp, n, w.data_ptr(), want_stats)
    return w, bad, sp


# ---------------------------------------------------------------- numpy


def numpy_weights(t: Target, r: float, a: np.ndarray, dom: Any, want_stats: bool) -> tuple[np.ndarray, int, Optional[int]]:
    if a.ndim != 1:
        raise ValueError(f"goreweight: losses must be 1-D (one loss per sample), got shape {a.shape}")
    n = a.shape[0]
    if n == 0:
        raise ValueError("goreweight: losses is empty: there are no losses to weight")
    if a.dtype.kind != "f":
        raise TypeError(f"goreweight: losses must be a floating-point array, got dtype {a.dtype}")
    d = domains_array(dom, n)
    if a.dtype != _np_f32 or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a, dtype=_np_f32)
    w = np.empty(n, dtype=_np_f32)
    bad, sp = go_raw(t, r, a.ctypes.data, _ptr(d), n, w.ctypes.data, want_stats)
    return w, bad, sp


# ---------------------------------------------------------------- Arrow


def is_arrow(x: Any) -> bool:
    return hasattr(x, "__arrow_c_array__") or hasattr(x, "__arrow_c_stream__")


def arrow_weights(t: Target, r: float, obj: Any, dom: Any, want_stats: bool) -> tuple[Any, int, Optional[int]]:
    """Weights of an Arrow array (pyarrow, polars, ...) as a pyarrow float32 array."""
    import pyarrow as pa

    if not hasattr(obj, "__arrow_c_array__"):
        # A stream (e.g. a ChunkedArray or a polars Series): one array.
        ca = pa.chunked_array(obj)
        obj = ca.chunk(0) if ca.num_chunks == 1 else ca.combine_chunks()
        if isinstance(obj, pa.ChunkedArray):  # older pyarrow
            obj = pa.concat_arrays(obj.chunks)
    caps = obj.__arrow_c_array__()
    if not (isinstance(caps, tuple) and len(caps) == 2):
        raise TypeError("goreweight: __arrow_c_array__ must return (schema capsule, array capsule)")
    schema_cap, array_cap = caps
    sp = _capsule_ptr(schema_cap, b"arrow_schema")
    ap = _capsule_ptr(array_cap, b"arrow_array")
    n = ctypes.c_int64.from_address(ap).value  # struct ArrowArray starts with int64_t length
    if n <= 0:
        raise ValueError("goreweight: losses is empty: there are no losses to weight")
    d = domains_array(dom, n)
    buf = pa.allocate_buffer(4 * n)
    bad, stp = go_arrow(t, r, sp, ap, _ptr(d), n, buf.address, want_stats)
    return pa.Array.from_buffers(pa.float32(), n, [None, buf]), bad, stp
