"""torch tensors: CPU by raw pointers, CUDA through reused pinned buffers,
other accelerators through host memory."""

from __future__ import annotations

import threading
from typing import Any, Optional

import numpy as np
import torch

from .._lib import GoreweightError
from .domains import pointer
from .go import Target, go_raw

__all__ = ["check_tensor_device", "check_losses_tensor", "torch_weights"]

_f32 = torch.float32
_strided = torch.strided


def check_tensor_device(t: torch.Tensor, name: str) -> None:
    """GoreweightError naming the argument and device when t holds no data
    (the meta device).

    Example::

        check_tensor_device(torch.empty(3, device="meta"), "losses")  # raises
    """
    if t.device.type == "meta":
        raise GoreweightError(
            f"goreweight: {name} is on the meta device, which holds no data: goreweight needs the "
            "loss values (move the model and batch to a real device first)"
        )


def check_losses_tensor(t: torch.Tensor, name: str) -> int:
    """Checks that t is a 1-D dense real floating tensor with data and returns
    its length (which may be 0: Go reports an empty batch). TypeError or
    ValueError naming the argument.

    Example::

        check_losses_tensor(torch.rand(8), "losses")  # 8
    """
    if t.dtype is not _f32 and not t.is_floating_point():
        raise TypeError(f"goreweight: {name} must be a floating-point tensor, got {t.dtype}")
    if t.layout is not _strided:
        raise TypeError(f"goreweight: {name} must be a dense (strided) tensor, got layout {t.layout}")
    if t.ndim != 1:
        raise ValueError(f"goreweight: {name} must be 1-D (one loss per sample), got shape {tuple(t.shape)}")
    if t.device.type == "meta":
        check_tensor_device(t, name)
    return t.shape[0]


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


def torch_weights(
    t: Target, r: float, x: torch.Tensor, n: int, dom: Optional[np.ndarray], want_stats: bool
) -> tuple[torch.Tensor, int, Optional[int]]:
    """Weights of a 1-D floating tensor x of length n (checked by
    :func:`check_losses_tensor`), on x's device. Returns (weights, number of
    non-finite losses, stats pointer or None).

    Example::

        w, bad, _ = torch_weights(target, 1.0, x, x.numel(), None, False)
    """
    dp = pointer(dom)
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
