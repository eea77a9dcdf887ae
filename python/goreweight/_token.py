"""Token-level losses, masks and reference (excess) losses, as an input
transform in front of the Go core.

Nothing here computes weights. A batch of 2-D (or masked, or
reference-shifted) losses is turned into the 1-D batch the core already
weights: the *scores* ``losses - reference`` of the *counted* entries,
compacted by boolean indexing (O(N), one copy). The weights the core
returns for them are scattered back into a zero tensor of the input's
shape, so masked entries get exactly 0, never enter the min/max and are not
counted as non-finite.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from ._exchange import check_tensor_device, domains_array

__all__ = ["Prepared", "prepare_torch", "prepare_numpy", "needs_prepare", "masked_loss"]


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
    if not losses.is_floating_point():
        raise TypeError(f"goreweight: {name} must be a floating-point tensor, got {losses.dtype}")
    if losses.layout is not torch.strided:
        raise TypeError(f"goreweight: {name} must be a dense (strided) tensor, got layout {losses.layout}")
    if losses.ndim not in (1, 2):
        raise ValueError(
            f"goreweight: {name} must be 1-D (one loss per sample) or 2-D (one per token), got shape {tuple(losses.shape)}"
        )
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
        dt = torch.float64 if torch.float64 in (l.dtype, reference.dtype) else torch.float32
        s = l.to(dt) - reference.detach().to(device=l.device, dtype=dt)
    else:
        s = l
    if mask is None and losses.ndim == 1:
        return Prepared(s, None, shape)
    if mask is None:
        counted = torch.isfinite(s)
    else:
        if not isinstance(mask, torch.Tensor):
            mask = torch.as_tensor(np.asarray(mask))
        if mask.dtype != torch.bool:
            raise TypeError(f"goreweight: mask must be a bool tensor (True = counted), got {mask.dtype}")
        _check_shape("mask", mask, shape, name)
        check_tensor_device(mask, "mask")
        counted = mask.to(l.device)
    return Prepared(torch.masked_select(s, counted), counted, shape)  # faster than s[counted]


def prepare_numpy(losses: np.ndarray, mask: Any, reference: Any) -> tuple[Prepared, Optional[np.ndarray]]:
    """As :func:`prepare_torch` for a numpy array; a masked array's mask is
    combined with ``mask`` (an entry counts when both say so). Returns the
    prepared batch and the input's numpy mask (or None)."""
    if losses.dtype.kind != "f":
        raise TypeError(f"goreweight: losses must be a floating-point array, got dtype {losses.dtype}")
    if losses.ndim not in (1, 2):
        raise ValueError(f"goreweight: losses must be 1-D or 2-D, got shape {losses.shape}")
    shape = tuple(losses.shape)
    ma_mask = np.ma.getmaskarray(losses).copy() if isinstance(losses, np.ma.MaskedArray) else None
    a = np.ma.getdata(losses)
    if reference is not None:
        ref = np.ma.getdata(np.asarray(reference)) if not isinstance(reference, torch.Tensor) else reference.detach().cpu().numpy()
        if ref.dtype.kind != "f":
            raise TypeError(f"goreweight: reference must be floating point, got dtype {ref.dtype}")
        _check_shape("reference", ref, shape, "losses")
        dt = np.float64 if np.float64 in (a.dtype, ref.dtype) else np.float32
        s = a.astype(dt) - ref.astype(dt)
    else:
        s = a
    if mask is None and ma_mask is None and losses.ndim == 1:
        return Prepared(s, None, shape), None
    if mask is None:
        counted = np.isfinite(s) if losses.ndim == 2 else np.ones(shape, dtype=bool)
    else:
        m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"goreweight: mask must be a bool array (True = counted), got dtype {m.dtype}")
        _check_shape("mask", m, shape, "losses")
        counted = m
    if ma_mask is not None:
        counted = counted & ~ma_mask
    return Prepared(np.ascontiguousarray(s[counted]), counted, shape), ma_mask


def masked_loss(w_full: torch.Tensor, losses: torch.Tensor, counted: torch.Tensor, world: int) -> torch.Tensor:
    """``world · Σ w_ij l_ij`` with the weights as constants; an entry not
    counted, or with a non-finite loss (weight 0), contributes exactly 0 to
    the loss and its gradient (``torch.where``, never ``0 · NaN``)."""
    l = losses if losses.dtype == torch.float32 else losses.float()
    keep = counted & torch.isfinite(l.detach())
    loss = (w_full * torch.where(keep, l, torch.zeros((), dtype=l.dtype, device=l.device))).sum()
    if world != 1:
        loss = loss * world
    return loss
