"""Token-level losses, masks and reference (excess) losses, as an input
transform in front of the Go core.

Nothing here computes weights. Two ways to the core:

* the masked entry point (:func:`dense_weights_torch`,
  :func:`dense_weights_numpy`; CPU tensors and numpy arrays, one process):
  the dense losses, reference and mask go to Go by raw pointers, zero-copy
  for float32 losses and bool masks. Go compacts the counted scores
  ``losses - reference``, weights them and writes the weights into a dense
  output, 0 exactly at the entries not counted.
* compaction here (:func:`prepare_torch`, :func:`prepare_numpy`; CUDA,
  torch.distributed, global scope): the scores of the *counted* entries are
  compacted by boolean indexing (O(N), one copy, on the tensor's device),
  the core weights that 1-D batch, and the weights are scattered back into
  a zero tensor of the input's shape.

Both give the same weights, bit for bit (the core's masked entry point
runs its 1-D passes on the compacted batch): masked entries get exactly
0, never enter the min/max and are not counted as non-finite.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from . import _lib
from ._exchange import Target, check_tensor_device, domains_array, go_masked, masked_available
from ._exchange.domains import pointer

__all__ = [
    "Prepared",
    "prepare_torch",
    "prepare_numpy",
    "needs_prepare",
    "masked_loss",
    "dense_applies",
    "dense_weights_torch",
    "dense_weights_numpy",
]


class Prepared:
    """The compacted scores of one batch and how to put weights back.

    ``scores`` is 1-D (float32 or float64, detached); ``counted`` is None when
    every entry of a 1-D input is in the batch (no compaction), else a bool
    tensor/array of the input's shape; ``shape`` the input's shape."""

    __slots__ = ("scores", "counted", "shape", "n")

    def __init__(self, scores: Any, counted: Any, shape: tuple[int, ...]) -> None:
        self.scores = scores
        self.counted = counted
        self.shape = shape
        self.n = int(scores.shape[0])

    def scatter_torch(self, w: torch.Tensor) -> torch.Tensor:
        """The weights of the compacted entries, in the input's shape (zeros
        at the entries not counted)."""
        if self.counted is None:
            return w
        full = torch.zeros(self.shape, dtype=torch.float32, device=w.device)
        return full.masked_scatter_(self.counted.to(w.device), w)  # 2-3x faster than full[counted] = w

    def scatter_numpy(self, w: np.ndarray) -> np.ndarray:
        """As :meth:`scatter_torch`, for numpy."""
        if self.counted is None:
            return w
        full = np.zeros(self.shape, dtype=np.float32)
        full[self.counted] = w
        return full

    def domains(self, domains: Any) -> Optional[np.ndarray]:
        """The domain ids of the counted entries as an int32 array: one id
        per entry (the input's shape) or, for 2-D losses, one per row."""
        if domains is None:
            return None
        if self.counted is None:
            return domains_array(domains, self.n)
        if isinstance(domains, torch.Tensor):
            check_tensor_device(domains, "domains")
            d = domains.detach().cpu().numpy()
        else:
            d = np.asarray(domains)
        if len(self.shape) == 2 and d.shape == (self.shape[0],):
            d = np.broadcast_to(d[:, None], self.shape)
        if tuple(d.shape) != self.shape:
            raise ValueError(
                f"goreweight: domains must have the shape of the losses {self.shape} (or one id per row), "
                f"got {tuple(d.shape)}"
            )
        c = self.counted
        if isinstance(c, torch.Tensor):
            c = c.cpu().numpy()
        return domains_array(np.ascontiguousarray(d[c]), self.n)


def needs_prepare(losses: Any, mask: Any, reference: Any) -> bool:
    """Whether the input leaves the plain 1-D path."""
    return mask is not None or reference is not None or getattr(losses, "ndim", 1) != 1


def _check_shape(name: str, x: Any, shape: tuple[int, ...], what: str) -> None:
    if tuple(x.shape) != shape:
        raise ValueError(f"goreweight: {name} must have the shape of {what} {shape}, got {tuple(x.shape)}")


def prepare_torch(losses: torch.Tensor, mask: Any, reference: Any, name: str) -> Prepared:
    """Checks a 1-D or 2-D loss tensor, its mask and reference, and compacts
    the scores of the counted entries. TypeError or ValueError naming the
    argument.

    The default mask of a 2-D input is the finite scores; a 1-D input
    without a mask keeps every entry (non-finite ones are then the core's
    business, by its ``nonfinite`` policy)."""
    _check_losses_torch(losses, name)
    l, ref, m = _check_torch(losses, mask, reference, name)
    shape = tuple(losses.shape)
    if ref is not None:
        dt = torch.float64 if torch.float64 in (l.dtype, ref.dtype) else torch.float32
        s = l.to(dt) - ref.detach().to(device=l.device, dtype=dt)
    else:
        s = l
    if m is None and losses.ndim == 1:
        return Prepared(s, None, shape)
    counted = torch.isfinite(s) if m is None else m.to(l.device)
    return Prepared(torch.masked_select(s, counted), counted, shape)  # faster than s[counted]


def _check_torch(losses: torch.Tensor, mask: Any, reference: Any, name: str) -> tuple[torch.Tensor, Any, Any]:
    """The checks of :func:`prepare_torch` after the losses' dtype, layout
    and rank: returns (detached losses, reference tensor or None, bool mask
    tensor or None)."""
    check_tensor_device(losses, name)
    shape = tuple(losses.shape)
    l = losses.detach()
    if reference is not None:
        if not isinstance(reference, torch.Tensor):
            reference = torch.as_tensor(np.asarray(reference))
        if not reference.is_floating_point():
            raise TypeError(f"goreweight: reference must be floating point, got {reference.dtype}")
        _check_shape("reference", reference, shape, name)
        check_tensor_device(reference, "reference")
    if mask is not None:
        if not isinstance(mask, torch.Tensor):
            mask = torch.as_tensor(np.asarray(mask))
        if mask.dtype != torch.bool:
            raise TypeError(f"goreweight: mask must be a bool tensor (True = counted), got {mask.dtype}")
        _check_shape("mask", mask, shape, name)
        check_tensor_device(mask, "mask")
    return l, reference, mask


def _check_losses_torch(losses: torch.Tensor, name: str) -> None:
    """dtype, layout and rank of a 1-D or 2-D loss tensor."""
    if not losses.is_floating_point():
        raise TypeError(f"goreweight: {name} must be a floating-point tensor, got {losses.dtype}")
    if losses.layout is not torch.strided:
        raise TypeError(f"goreweight: {name} must be a dense (strided) tensor, got layout {losses.layout}")
    if losses.ndim not in (1, 2):
        raise ValueError(
            f"goreweight: {name} must be 1-D (one loss per sample) or 2-D (one per token), got shape {tuple(losses.shape)}"
        )


def prepare_numpy(losses: np.ndarray, mask: Any, reference: Any) -> tuple[Prepared, Optional[np.ndarray]]:
    """As :func:`prepare_torch` for a numpy array; a masked array's mask is
    combined with ``mask`` (an entry counts when both say so). Returns the
    prepared batch and the input's numpy mask (or None)."""
    a, ref, m, ma_mask = _check_numpy(losses, mask, reference)
    shape = tuple(losses.shape)
    if ref is not None:
        dt = np.float64 if np.float64 in (a.dtype, ref.dtype) else np.float32
        s = a.astype(dt) - ref.astype(dt)
    else:
        s = a
    if m is None and ma_mask is None and losses.ndim == 1:
        return Prepared(s, None, shape), None
    if m is None:
        counted = np.isfinite(s) if losses.ndim == 2 else np.ones(shape, dtype=bool)
    else:
        counted = m
    if ma_mask is not None:
        counted = counted & ~ma_mask
    return Prepared(np.ascontiguousarray(s[counted]), counted, shape), ma_mask


def _check_numpy(losses: np.ndarray, mask: Any, reference: Any) -> tuple[np.ndarray, Any, Any, Optional[np.ndarray]]:
    """The checks of :func:`prepare_numpy`: returns (the data, reference
    array or None, bool mask array or None, the masked array's mask or
    None)."""
    if losses.dtype.kind != "f":
        raise TypeError(f"goreweight: losses must be a floating-point array, got dtype {losses.dtype}")
    if losses.ndim not in (1, 2):
        raise ValueError(f"goreweight: losses must be 1-D or 2-D, got shape {losses.shape}")
    shape = tuple(losses.shape)
    ma_mask = np.ma.getmaskarray(losses).copy() if isinstance(losses, np.ma.MaskedArray) else None
    a = np.ma.getdata(losses)
    ref = None
    if reference is not None:
        ref = np.ma.getdata(np.asarray(reference)) if not isinstance(reference, torch.Tensor) else reference.detach().cpu().numpy()
        if ref.dtype.kind != "f":
            raise TypeError(f"goreweight: reference must be floating point, got dtype {ref.dtype}")
        _check_shape("reference", ref, shape, "losses")
    m = None
    if mask is not None:
        m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"goreweight: mask must be a bool array (True = counted), got dtype {m.dtype}")
        _check_shape("mask", m, shape, "losses")
    return a, ref, m, ma_mask


# ------------------------------------------------------- the masked entry point


def dense_applies(x: Any) -> bool:
    """Whether :func:`dense_weights_torch` / :func:`dense_weights_numpy`
    take this input (the caller has checked that torch.distributed is not
    active): a CPU tensor or a numpy array, with a library that has the
    masked entry point. CUDA (and other devices) compact on the device
    instead: one device-to-host copy of the compacted scores, not of the
    losses and the mask."""
    if isinstance(x, torch.Tensor):
        if x.device.type != "cpu":
            return False
    elif not isinstance(x, np.ndarray):
        return False
    return masked_available()


def _dense_domains(domains: Any, shape: tuple[int, ...], plain_1d: bool) -> Optional[np.ndarray]:
    """The domain ids of every entry as a contiguous int32 array of N =
    prod(shape): one id per entry (the input's shape) or, for 2-D losses,
    one per row (as :meth:`Prepared.domains`)."""
    if domains is None:
        return None
    n = int(np.prod(shape))
    if plain_1d:
        return domains_array(domains, n)
    if isinstance(domains, torch.Tensor):
        check_tensor_device(domains, "domains")
        d = domains.detach().cpu().numpy()
    else:
        d = np.asarray(domains)
    if len(shape) == 2 and d.shape == (shape[0],):
        d = np.broadcast_to(d[:, None], shape)
    if tuple(d.shape) != shape:
        raise ValueError(
            f"goreweight: domains must have the shape of the losses {shape} (or one id per row), got {tuple(d.shape)}"
        )
    return domains_array(np.ascontiguousarray(d).reshape(n), n)


def _f32_torch(x: torch.Tensor) -> torch.Tensor:
    if x.dtype is not torch.float32:
        x = x.float()
    return x if x.is_contiguous() else x.contiguous()


def dense_weights_torch(
    t: Target, r: float, losses: torch.Tensor, mask: Any, reference: Any, domains: Any, want_stats: bool, name: str
) -> tuple[torch.Tensor, int, Optional[int], Optional[torch.Tensor]]:
    """The weights of a 1-D or 2-D CPU loss tensor with its mask and
    reference, in the input's shape, through the core's masked entry point:
    the float32 losses, reference and bool mask are read in place (other
    dtypes are converted first, one copy). Returns (weights, counted
    non-finite scores, stats pointer, the mask as a CPU bool tensor or
    None). The checks and errors are those of :func:`prepare_torch`."""
    _check_losses_torch(losses, name)
    l, ref, m = _check_torch(losses, mask, reference, name)
    shape = tuple(losses.shape)
    n = l.numel()
    flags = 0
    rbuf: Optional[torch.Tensor] = None
    if ref is not None:
        ref = ref.detach()
        if ref.device.type != "cpu":
            ref = ref.cpu()
        if torch.float64 in (l.dtype, ref.dtype):
            # the scores in float64, as the compacting path computes them
            lbuf = _f32_torch(l.double() - ref.double())
        else:
            lbuf, rbuf = _f32_torch(l), _f32_torch(ref)
    else:
        lbuf = _f32_torch(l)
    mbuf: Optional[torch.Tensor] = None
    if m is not None:
        mbuf = m if m.device.type == "cpu" else m.cpu()
        if not mbuf.is_contiguous():
            mbuf = mbuf.contiguous()
    elif losses.ndim == 2:
        flags = _lib.MASK_SKIP_NONFINITE  # the default mask: the finite scores
    dom = _dense_domains(domains, shape, losses.ndim == 1 and m is None)
    w = torch.empty(shape, dtype=torch.float32)
    bad, sp = go_masked(
        t,
        r,
        lbuf.data_ptr(),
        None if rbuf is None else rbuf.data_ptr(),
        None if mbuf is None else mbuf.data_ptr(),
        flags,
        pointer(dom),
        n,
        w.data_ptr(),
        want_stats,
    )
    return w, bad, sp, mbuf


def dense_weights_numpy(
    t: Target, r: float, losses: np.ndarray, mask: Any, reference: Any, domains: Any, want_stats: bool
) -> tuple[Any, int, Optional[int]]:
    """As :func:`dense_weights_torch` for a numpy array (a masked array's
    mask is combined with ``mask``; the result is then a masked array with
    the input's mask). The checks and errors are those of
    :func:`prepare_numpy`."""
    a, ref, m, ma_mask = _check_numpy(losses, mask, reference)
    shape = tuple(losses.shape)
    n = a.size
    f32 = np.float32
    rbuf: Optional[np.ndarray] = None
    if ref is not None and np.float64 in (a.dtype, ref.dtype):
        lbuf = np.ascontiguousarray(a.astype(np.float64) - ref.astype(np.float64), dtype=f32)
    else:
        lbuf = np.ascontiguousarray(a, dtype=f32)
        if ref is not None:
            rbuf = np.ascontiguousarray(ref, dtype=f32)
    flags = 0
    if m is None and losses.ndim == 2:
        flags = _lib.MASK_SKIP_NONFINITE
    if ma_mask is not None:
        m = ~ma_mask if m is None else m & ~ma_mask
    mbuf = None if m is None else np.ascontiguousarray(m)
    dom = _dense_domains(domains, shape, losses.ndim == 1 and mbuf is None)
    w = np.empty(shape, dtype=f32)
    bad, sp = go_masked(
        t,
        r,
        lbuf.ctypes.data,
        None if rbuf is None else rbuf.ctypes.data,
        None if mbuf is None else mbuf.ctypes.data,
        flags,
        pointer(dom),
        n,
        w.ctypes.data,
        want_stats,
    )
    if ma_mask is not None:
        return np.ma.MaskedArray(w, mask=ma_mask), bad, sp
    return w, bad, sp


def masked_loss(w_full: torch.Tensor, losses: torch.Tensor, counted: Optional[torch.Tensor], world: int) -> torch.Tensor:
    """``world · Σ w_ij l_ij`` with the weights as constants; an entry not
    counted, or with a non-finite loss (weight 0), contributes exactly 0 to
    the loss and its gradient (``torch.where``, never ``0 · NaN``).
    ``counted`` None: the weights are 0 exactly where not counted (the
    masked entry point), so only the non-finite losses need masking."""
    l = losses if losses.dtype == torch.float32 else losses.float()
    keep = torch.isfinite(l.detach())
    if counted is not None:
        keep = counted & keep
    loss = (w_full * torch.where(keep, l, torch.zeros((), dtype=l.dtype, device=l.device))).sum()
    if world != 1:
        loss = loss * world
    return loss
