"""Global scope under gradient accumulation: the weights of a whole
optimizer step's batch (every micro-batch, every rank), computed once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch

from . import _token, _weights
from ._reweighter import Reweighter

__all__ = ["GlobalBatch", "global_batch_weights"]


def _per_micro(name: str, x: Any, g: int) -> list[Any]:
    if x is None:
        return [None] * g
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence) or len(x) != g:
        raise ValueError(f"goreweight: {name} must be None or a sequence with one entry per micro-batch ({g})")
    return list(x)


class GlobalBatch:
    """The weights of one optimizer step's global batch: all ``G``
    micro-batches of gradient accumulation (and all ranks of the process
    group under torch.distributed), computed once by the Go core at the
    reweighter's current temperature; the reweighter's step then advances
    once. This is the exact global scope of docs/scope.md.

    Parameters
    ----------
    reweighter:
        The :class:`Reweighter` (its configuration, schedule, step and
        process group).
    micro_losses:
        The losses of every micro-batch of the step, from a first pass under
        ``torch.no_grad()``: each 1-D (per sample) or 2-D (per token, e.g.
        :func:`per_token_loss`); micro-batches may differ in size.
    masks, references, domains:
        ``None`` or one entry per micro-batch, as ``mask``, ``reference``
        and ``domains`` of :func:`goreweight.weights`.

    After construction, :attr:`weights` holds each micro-batch's weights
    (this rank's, in the shape of its losses; they sum to 1 over the whole
    global batch) and :meth:`loss` gives the loss to backpropagate per
    micro-batch, so that the accumulated gradients equal those of one
    step on the whole global batch. The reweighter's :attr:`Reweighter.stats`
    describe the global batch.

    Example::

        with torch.no_grad():
            first = [goreweight.per_sample_loss(model(x), y) for x, y in micro]
        gb = goreweight.GlobalBatch(rw, first)
        for k, (x, y) in enumerate(micro):
            gb.loss(k, goreweight.per_sample_loss(model(x), y)).backward()
        opt.step(); opt.zero_grad()
    """

    def __init__(
        self,
        reweighter: Reweighter,
        micro_losses: Sequence[torch.Tensor],
        *,
        masks: Optional[Sequence[Any]] = None,
        references: Optional[Sequence[Any]] = None,
        domains: Optional[Sequence[Any]] = None,
    ) -> None:
        if not isinstance(reweighter, Reweighter):
            raise TypeError(f"goreweight: reweighter must be a goreweight.Reweighter, got {type(reweighter).__name__}")
        if isinstance(micro_losses, torch.Tensor) or not isinstance(micro_losses, Sequence) or not micro_losses:
            raise ValueError("goreweight: micro_losses must be a non-empty sequence of loss tensors, one per micro-batch")
        g = len(micro_losses)
        ms = _per_micro("masks", masks, g)
        rs = _per_micro("references", references, g)
        ds = _per_micro("domains", domains, g)
        t = reweighter._handle()
        problem: Optional[BaseException] = None
        preps: list[_token.Prepared] = []
        doms: list[Optional[np.ndarray]] = []
        device = torch.device("cpu")
        try:
            for k, l in enumerate(micro_losses):
                if not isinstance(l, torch.Tensor):
                    raise TypeError(f"goreweight: micro_losses[{k}] must be a torch.Tensor, got {type(l).__name__}")
                device = l.device
                p = _token.prepare_torch(l, ms[k], rs[k], f"micro_losses[{k}]")
                preps.append(p)
                doms.append(p.domains(ds[k]))
            if any(d is None for d in doms) and any(d is not None for d in doms):
                raise ValueError("goreweight: domains must be given for every micro-batch or for none")
        except (TypeError, ValueError) as e:
            problem = e
        scores: Optional[torch.Tensor] = None
        dom: Optional[np.ndarray] = None
        if problem is None:
            scores = torch.cat([p.scores.float() for p in preps]) if g > 1 else preps[0].scores
            if doms[0] is not None:
                dom = np.concatenate([d for d in doms if d is not None]) if g > 1 else doms[0]
        w, _, world, bad, _ = _weights.global_weights(t, 0.0, scores, dom, reweighter.group, False, problem=problem, device=device)
        self.world = world
        self._bad = bad
        self._preps = preps
        self.weights: list[torch.Tensor] = [p.scatter_torch(wk) for p, wk in zip(preps, w.split([p.n for p in preps]))]

    def __len__(self) -> int:
        return len(self._preps)

    def loss(self, k: int, losses: torch.Tensor) -> torch.Tensor:
        """The loss of micro-batch ``k`` to backpropagate: ``world · Σ w_i ·
        l_i`` over its entries with the global weights as constants
        (entries not counted contribute exactly 0). ``losses`` are the
        micro-batch's losses recomputed with gradients, same shape as in the
        first pass. Under DDP the usual averaging over ranks, summed over
        the accumulated micro-batches, gives ``Σ_i w_i ∇l_i`` over the
        global batch.

        Example::

            gb.loss(k, goreweight.per_sample_loss(model(x), y)).backward()
        """
        if not isinstance(k, int) or not 0 <= k < len(self._preps):
            raise ValueError(f"goreweight: k must be a micro-batch index in [0, {len(self._preps)}), got {k!r}")
        if not isinstance(losses, torch.Tensor):
            raise TypeError(f"goreweight: losses must be a torch.Tensor, got {type(losses).__name__}")
        p = self._preps[k]
        if tuple(losses.shape) != p.shape:
            raise ValueError(
                f"goreweight: losses of micro-batch {k} must have the shape of its first pass {p.shape}, got {tuple(losses.shape)}"
            )
        w = self.weights[k].to(losses.device)
        return _weights.loss_of(w, losses, p.counted, self.world, self._bad)


def global_batch_weights(
    reweighter: Reweighter,
    micro_losses: Sequence[torch.Tensor],
    *,
    masks: Optional[Sequence[Any]] = None,
    references: Optional[Sequence[Any]] = None,
    domains: Optional[Sequence[Any]] = None,
) -> list[torch.Tensor]:
    """The weights of each micro-batch under global scope (one list entry
    per micro-batch, this rank's weights in the shape of its losses): the
    :attr:`GlobalBatch.weights` of ``GlobalBatch(reweighter, micro_losses,
    ...)``. Under DDP backpropagate ``world_size · (w_k * l_k).sum()`` (or
    use :meth:`GlobalBatch.loss`, which also zeroes non-finite entries).

    Example::

        ws = goreweight.global_batch_weights(rw, first_pass_losses)
    """
    return GlobalBatch(reweighter, micro_losses, masks=masks, references=references, domains=domains).weights
