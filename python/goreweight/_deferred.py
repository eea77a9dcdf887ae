"""Approximate global scope under gradient accumulation, without a first
pass: the Go core's ``Deferred`` behind a handle (docs/scope.md).

Each micro-batch is normalised with a loss range known before the step
and weighted by ``u_i = exp((s_i - s*)/r)`` (at most 1); the softmax
normaliser ``Z = Σ u_i`` over the whole step (all micro-batches, all
ranks) is applied at the end, by multiplying the accumulated gradients by
``1/Z``. Nothing here computes weights: the u, the sums, the scale and the
range update come from Go; Python moves tensors, all-gathers the sums
under torch.distributed and scales the gradients.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

import numpy as np
import torch

from . import _args, _dist, _lib, _token
from ._reweighter import Reweighter

__all__ = ["DeferredGlobalBatch"]

_NSUMS = 13  # GRW_DEFERRED_NSUMS: the Go side checks it on every call

Parameters = Union[torch.nn.Module, Iterable[torch.Tensor], None]


class DeferredGlobalBatch:
    """The approximate global scope: the weights of each optimizer step's
    whole batch (all ``G`` accumulated micro-batches, all ranks of the
    process group) **without** the first no-grad pass of
    :class:`GlobalBatch`, by deferring the softmax's normaliser.

    Per micro-batch, :meth:`loss` returns ``Σ u_i · l_i`` (times the world
    size under torch.distributed, as everywhere in goreweight) with the
    unnormalised weights ``u_i = exp((s_i - s*)/r)`` of losses normalised
    with a range known before the step: the previous step's true
    min/max over the global batch (or a moving average of it,
    ``range_momentum``), on the very first step the first micro-batch's
    own range (of every rank). :meth:`finish` then all-reduces ``Z = Σ
    u_i`` over the process group, multiplies the accumulated gradients by
    ``1/Z`` (so the step's weights ``u_i/Z`` sum to 1 over the global
    batch), updates the range from the step's true min/max and advances
    the step once. Cost: no extra forward; one tiny all-gather per step
    under torch.distributed. Error: exact when the step's losses span the
    range exactly; otherwise the weights of slightly differently
    normalised losses (measured in docs/scope.md).

    Parameters
    ----------
    reweighter:
        The :class:`Reweighter` whose configuration (strategy, delta,
        nonfinite, schedule) is used and whose :attr:`Reweighter.step` is
        the step counter: it is read at the start of every optimizer step
        and advanced by :meth:`finish`, so ``rw.step = global_step`` works
        as usual. Its strategy must have a deferred form: ``uniform``,
        ``linupper``, ``quadratic``, ``extremes``, ``dro-kl`` without cap
        or domain multipliers (``topk``/``truncate``, the cap and domain
        multipliers are a :class:`GoreweightError` naming the option; use
        :class:`GlobalBatch`).
    range_momentum:
        ``β`` in ``[0, 1)``: the next step's range is ``β·range + (1-β)·[min,
        max]`` of the step just finished. Default 0: the previous step's.
    group:
        The process group (default: the reweighter's).

    Every rank must run the same number of micro-batches per step and
    call :meth:`finish` once per step. A micro-batch's data error (a
    non-finite loss under ``nonfinite="raise"``) is raised at once in a
    single process; under torch.distributed the micro-batch gets weight 0
    and :meth:`finish` raises on every rank (so no rank waits forever),
    leaving the gradients unscaled: zero them.

    Example::

        acc = goreweight.DeferredGlobalBatch(rw)
        for step_batches in loader:                 # G micro-batches per optimizer step
            for x, y in step_batches:
                acc.loss(goreweight.per_sample_loss(model(x), y)).backward()
            acc.finish(model.parameters())          # grads *= 1/Z; rw.step += 1
            opt.step(); opt.zero_grad()
    """

    def __init__(self, reweighter: Reweighter, *, range_momentum: float = 0.0, group: Any = None) -> None:
        self._h: Optional[int] = None
        if not isinstance(reweighter, Reweighter):
            raise TypeError(f"goreweight: reweighter must be a goreweight.Reweighter, got {type(reweighter).__name__}")
        cfg = reweighter.config
        cfg["range_momentum"] = _args.real("range_momentum", range_momentum)
        self._h = _lib.new_handle("grw_deferred_new", _args.dumps(cfg))
        self._rw = reweighter
        self.group = reweighter.group if group is None else group
        self._problem: Optional[BaseException] = None
        self._device = torch.device("cpu")
        self._set_step(reweighter.step)

    def __del__(self, _close: Any = _lib.close_handle) -> None:
        h = getattr(self, "_h", None)
        if h is not None:
            _close(h)

    # ------------------------------------------------------------ per micro-batch

    def weights(self, losses: torch.Tensor, *, mask: Any = None, reference: Any = None) -> torch.Tensor:
        """The unnormalised weights ``u`` (detached, float32, the losses'
        shape, on their device; 0 for entries not counted or non-finite) of
        one micro-batch, added to the open step (the first call of a step
        opens it). ``losses``: 1-D (per sample) or 2-D (per token) as in
        :func:`goreweight.weights`, with ``mask`` and ``reference`` as
        there (default mask of 2-D losses: the finite entries). The
        weights of the step are ``u / Z`` with ``Z`` known at
        :meth:`finish`. Prefer :meth:`loss`, which also handles
        non-finite entries.

        Example::

            u = acc.weights(per_sample.detach())
        """
        h = self._handle()
        if not isinstance(losses, torch.Tensor):
            raise TypeError(f"goreweight: losses must be a torch.Tensor, got {type(losses).__name__}")
        dist = _dist.active(self.group)
        opening = not self.open
        if opening:
            self._problem = None
            if self._rw.step != self.step:
                self._set_step(self._rw.step)  # the reweighter is the step counter
        problem: Optional[BaseException] = None
        p: Optional[_token.Prepared] = None
        try:
            p = _token.prepare_torch(losses, mask, reference, "losses")
        except (TypeError, ValueError) as e:
            problem = e
        if losses.device.type != "meta":
            self._device = losses.device
        x = None
        if p is not None:
            x = p.scores.detach().to("cpu", torch.float32).contiguous()
        if opening and dist and self.range is None:
            self._first_range(x, problem)  # every rank normalises the first step alike
        if problem is not None:
            raise problem
        assert p is not None and x is not None
        n = int(x.numel())
        u = torch.empty(n, dtype=torch.float32)
        z = ctypes.c_double()
        try:
            _lib.call("grw_deferred_micro", h, x.data_ptr() if n else None, n, u.data_ptr() if n else None, ctypes.addressof(z))
        except _lib.GoreweightError as e:
            if not dist:
                raise
            self._problem = e  # raised by finish on every rank
            u.zero_()
        return p.scatter_torch(u.to(losses.device))

    def loss(self, losses: torch.Tensor, *, mask: Any = None, reference: Any = None) -> torch.Tensor:
        """The loss of one micro-batch to backpropagate: ``world · Σ u_i ·
        l_i`` over its counted entries, ``u`` from :meth:`weights` as
        constants (an entry not counted, or non-finite, contributes exactly
        0 to the loss and its gradient). After every micro-batch of the step
        (and DDP's averaging over ranks), :meth:`finish` turns the
        accumulated gradients into ``Σ_i (u_i/Z) ∇l_i`` over the global
        batch. Do not divide by the number of micro-batches.

        Example::

            acc.loss(goreweight.per_token_loss(model(ids), labels)).backward()
        """
        u = self.weights(losses, mask=mask, reference=reference)
        world = torch.distributed.get_world_size(self.group) if _dist.active(self.group) else 1
        l = losses if losses.dtype == torch.float32 else losses.float()
        keep = torch.isfinite(l.detach())  # u is 0 there, and masked entries have u = 0
        loss = (u * torch.where(keep, l, torch.zeros((), dtype=l.dtype, device=l.device))).sum()
        return loss * world if world != 1 else loss

    def _first_range(self, x: Optional[torch.Tensor], problem: Optional[BaseException]) -> None:
        """The first step's range under torch.distributed: the min/max over
        every rank's first micro-batch (one all-gather, first step only)."""
        d = torch.distributed
        lo, hi, has = 0.0, 0.0, 0.0
        if x is not None:
            f = x[torch.isfinite(x)]
            if f.numel():
                lo, hi, has = float(f.min()), float(f.max()), 1.0
        mine = torch.tensor([float(problem is not None), has, lo, hi], dtype=torch.float64, device=self._device)
        parts = [torch.empty_like(mine) for _ in range(d.get_world_size(self.group))]
        d.all_gather(parts, mine, group=self.group)
        rows = torch.stack(parts).cpu().tolist()
        bad = [k for k, row in enumerate(rows) if row[0]]
        if problem is not None:
            raise problem
        if bad:
            raise ValueError(f"goreweight: rank(s) {bad} of the process group passed invalid losses; see the error on those ranks")
        got = [row for row in rows if row[1]]
        if got:
            _lib.call("grw_deferred_set_range", self._handle(), min(r[2] for r in got), max(r[3] for r in got))

    # ------------------------------------------------------------ end of step

    def finish(self, parameters: Parameters = None) -> float:
        """End the optimizer step: all-reduce ``Z`` (and the step's loss
        range) over the process group, multiply every ``.grad`` of
        ``parameters`` (a module, an iterable of tensors, or None to only
        get the scale) by ``1/Z``, update the range, advance the step (and
        the reweighter's ``step``). Returns ``1/Z``. Call it after the last
        micro-batch's backward and before the optimizer step (and before
        gradient clipping; with a GradScaler before ``unscale_``/``step``,
        the two scalings commute).

        Errors: no micro-batch since the last finish (finish twice), a step
        without any finite loss (:class:`EmptyBatchError`,
        :class:`NonFiniteLossError`), a micro-batch's error from any rank.
        On error the step is discarded and the gradients are left as
        they are: zero them.

        Example::

            scale = acc.finish(model)
        """
        h = self._handle()
        st = ctypes.c_void_p()
        scale = ctypes.c_double()
        try:
            if _dist.active(self.group):
                self._finish_dist(h, scale, st)
            else:
                _lib.call("grw_deferred_finish", h, None, 0, ctypes.addressof(scale), ctypes.addressof(st))
        except BaseException:
            self.discard()
            raise
        _lib.take_string(st.value)  # the stats are read again by .stats
        s = float(scale.value)
        if parameters is not None:
            params = parameters.parameters() if isinstance(parameters, torch.nn.Module) else parameters
            with torch.no_grad():
                for prm in params:
                    if not isinstance(prm, torch.Tensor):
                        raise TypeError(f"goreweight: parameters must be tensors, got {type(prm).__name__}")
                    if prm.grad is not None:
                        prm.grad.mul_(s)
        self._rw.step = self.step
        return s

    def _finish_dist(self, h: int, scale: ctypes.c_double, st: ctypes.c_void_p) -> None:
        d = torch.distributed
        sums = np.empty(_NSUMS, dtype=np.float64)
        _lib.call("grw_deferred_sums", h, sums.ctypes.data, _NSUMS)
        mine = torch.from_numpy(np.append(sums, float(self._problem is not None))).to(self._device)
        parts = [torch.empty_like(mine) for _ in range(d.get_world_size(self.group))]
        d.all_gather(parts, mine, group=self.group)
        rows = torch.stack(parts).cpu().numpy()
        bad = [k for k in range(rows.shape[0]) if rows[k, _NSUMS]]
        if self._problem is not None:
            p, self._problem = self._problem, None
            raise p
        if bad:
            raise ValueError(f"goreweight: rank(s) {bad} of the process group had an invalid micro-batch in this step; see the error on those ranks")
        glob = np.ascontiguousarray(rows[:, :_NSUMS])
        _lib.call("grw_deferred_finish", h, glob.ctypes.data, rows.shape[0], ctypes.addressof(scale), ctypes.addressof(st))

    def discard(self) -> None:
        """Abandon the open step (if any): the step does not advance and the
        range stays as before it. Zero the step's gradients yourself.

        Example::

            acc.discard(); opt.zero_grad()
        """
        self._problem = None
        _lib.call("grw_deferred_discard", self._handle())

    # ------------------------------------------------------------ state

    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise ValueError("goreweight: this DeferredGlobalBatch is closed")
        return h

    def _set_step(self, step: int) -> None:
        _lib.call("grw_deferred_set_step", self._handle(), _args.int64("step", step))

    @property
    def step(self) -> int:
        """The global step of the open (or next) optimizer step.

        Example::

            acc.step  # == rw.step between steps
        """
        n = ctypes.c_int64()
        _lib.call("grw_deferred_step", self._handle(), ctypes.addressof(n), None)
        return int(n.value)

    @property
    def open(self) -> bool:
        """Whether a step is in progress (a micro-batch since the last
        :meth:`finish`).

        Example::

            assert not acc.open
        """
        n, o = ctypes.c_int64(), ctypes.c_int32()
        _lib.call("grw_deferred_step", self._handle(), ctypes.addressof(n), ctypes.addressof(o))
        return bool(o.value)

    @property
    def r(self) -> float:
        """The temperature of the current step (``inf`` during warm-up).

        Example::

            acc.r == rw.r  # True between steps
        """
        v = ctypes.c_double()
        _lib.call("grw_deferred_r", self._handle(), ctypes.addressof(v))
        return float(v.value)

    @property
    def range(self) -> Optional[tuple[float, float]]:
        """The loss range ``(lo, hi)`` the next (or open) step normalises
        with, or None before the first finite loss.

        Example::

            lo, hi = acc.range
        """
        lo, hi, k = ctypes.c_double(), ctypes.c_double(), ctypes.c_int32()
        _lib.call("grw_deferred_range", self._handle(), ctypes.addressof(lo), ctypes.addressof(hi), ctypes.addressof(k))
        return (float(lo.value), float(hi.value)) if k.value else None

    @range.setter
    def range(self, value: tuple[float, float]) -> None:
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError("goreweight: range must be a pair (lo, hi)")
        lo, hi = _args.real("range[0]", value[0]), _args.real("range[1]", value[1])
        _lib.call("grw_deferred_set_range", self._handle(), lo, hi)

    @property
    def stats(self) -> dict[str, float]:
        """Statistics of the last finished step over the global batch, as
        a flat dict of floats (empty before the first): the keys of
        :attr:`Reweighter.stats` for the weights ``u/Z`` (``capped`` is 0),
        plus ``range_lo``, ``range_hi`` (the range the step used: the
        closer to ``loss_min``, ``loss_max``, the step's own, the closer
        the weights to exact), ``clipped`` and ``clipped_frac`` (counted
        losses outside that range, whose normalised value was clipped to
        ±delta), ``z`` and ``scale`` (``1/z``).

        Example::

            wandb.log({f"reweight/{k}": v for k, v in acc.stats.items()})
        """
        p = _lib.call_string("grw_deferred_stats", self._handle())
        return {str(k): float(v) for k, v in json.loads(p).items()}

    def state_dict(self) -> dict[str, Any]:
        """The state (configuration, step, range, and an open step's sums)
        as a plain dict of JSON values. Save it between optimizer steps
        with the reweighter's; a state saved in the middle of a step
        restores that open step (discard it if the accumulated gradients
        were not saved with it).

        Example::

            torch.save({"rw": rw.state_dict(), "acc": acc.state_dict()}, path)
        """
        return json.loads(_lib.call_string("grw_deferred_state", self._handle()))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the state by a :meth:`state_dict` (validated strictly by
        the Go core) and set the reweighter's step to the saved one.

        Example::

            acc.load_state_dict(torch.load(path)["acc"])
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"goreweight: state must be a dict from state_dict(), got {type(state).__name__}")
        js = _args.dumps(_args.json_value("state", state))
        _lib.call("grw_deferred_load_state", self._handle(), js.encode("utf-8"))
        self._problem = None
        self._rw.step = self.step

    def close(self) -> None:
        """Free the Go object now (otherwise when garbage collected).

        Example::

            acc.close()
        """
        h, self._h = self._h, None
        if h is not None:
            _lib.close_handle(h)

    def __repr__(self) -> str:
        if self._h is None:
            return "goreweight.DeferredGlobalBatch(closed)"
        return f"goreweight.DeferredGlobalBatch(step={self.step}, range={self.range}, open={self.open})"

