"""The stateful Reweighter: the Go core's Reweighter behind a handle."""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union, overload

import numpy as np
import torch

from . import _args, _exchange, _lib, _token, _weights, schedules
from ._exchange import Target
from ._weights import ArrowArrayLike, ArrowStreamLike

if TYPE_CHECKING:
    import pyarrow

__all__ = ["Reweighter"]

ScheduleLike = Union[schedules.Schedule, Mapping[str, Any], float, int]


def _schedule(s: Any) -> schedules.Schedule:
    if s is None:
        return schedules.constant(1.0)
    if isinstance(s, schedules.Schedule):
        return s
    if isinstance(s, Mapping):
        return schedules.from_dict(s)
    if isinstance(s, numbers.Real) and not isinstance(s, bool):
        return schedules.constant(float(s))
    raise TypeError(
        "goreweight: schedule must be a goreweight.schedules.Schedule, its dict form, or a number "
        f"(a constant r), got {type(s).__name__}"
    )


class Reweighter:
    """Dynamic loss-based reweighting for a training run.

    ``rw(per_sample)`` returns the reweighted loss of one (global) batch at
    the temperature the schedule gives for the current step, and advances
    the step. The weights are computed by the Go core's ``Reweighter``; the
    state (configuration and step) is plain data, so a run restored with
    :meth:`load_state_dict` continues exactly as an uninterrupted one.

    Parameters
    ----------
    strategy, delta, cap, nonfinite, q, domain_multipliers:
        As in :func:`goreweight.weights`.
    schedule:
        The temperature schedule: a :mod:`goreweight.schedules` schedule, its
        dict form, or a number for a constant r. Default: ``constant(1.0)``,
        the paper's r = 1 from the first step (use
        ``schedules.linear(100, 1, steps)`` or ``schedules.constant(r,
        warmup=1000)`` to start near uniform).
    group:
        The torch.distributed process group whose ranks together form the
        global batch (default: the world, when torch.distributed is
        initialised). Every rank must call ``rw`` on every step.

    Scope: the weights are computed per call, so with gradient accumulation
    each micro-batch is weighted on its own and the step advances per
    micro-batch; set :attr:`step` from the optimizer step if the schedule
    should follow optimizer steps instead, or weight the whole accumulated
    batch at once with :class:`goreweight.GlobalBatch` (docs/scope.md). A Reweighter may be shared by
    threads (calls are serialised in Go) but is meant for one training loop.

    Example::

        rw = goreweight.Reweighter("linupper", schedule=goreweight.schedules.linear(100, 1, 10_000))
        for batch in loader:
            per_sample = goreweight.per_sample_loss(model(batch.x), batch.y)
            rw(per_sample).backward()
            wandb.log(rw.stats)
    """

    def __init__(
        self,
        strategy: str = "linupper",
        schedule: Optional[ScheduleLike] = None,
        delta: float = 1.0,
        cap: Optional[float] = None,
        nonfinite: str = "zero",
        group: Any = None,
        *,
        q: Optional[float] = None,
        domain_multipliers: Optional[Iterable[float]] = None,
    ) -> None:
        self._t: Optional[Target] = None
        cfg = _args.options(strategy, delta, cap, nonfinite, q, domain_multipliers)
        cfg["schedule"] = _schedule(schedule).to_dict()
        self._t = Target(_lib.new_handle("grw_reweighter_new", _args.dumps(cfg)), True)
        self.group = group

    def __del__(self, _close: Any = _lib.close_handle) -> None:
        t = getattr(self, "_t", None)
        if t is not None:
            _close(t.h)

    # ------------------------------------------------------------ the step

    def __call__(self, per_sample: torch.Tensor, domains: Any = None, *, mask: Any = None, reference: Any = None) -> torch.Tensor:
        """The reweighted loss ``Σ w_i · l_i`` of a batch of per-sample losses
        (a 1-D tensor that may require grad), as in
        :func:`goreweight.reweighted_loss` (including the gather over the
        process group); then the step advances. On error the step does not
        advance. Token level (2-D losses, ``mask``) and ``reference`` as in
        :func:`goreweight.reweighted_loss`.

        Example::

            loss = rw(torch.tensor([1.0, 2.0, 3.0], requires_grad=True))
        """
        t = self._handle()
        if _token.needs_prepare(per_sample, mask, reference):
            wf, counted, world, bad, _ = _weights.prepared_global_weights(
                t, 0.0, per_sample, mask, reference, domains, self.group, False
            )
            return _weights.loss_of(wf, per_sample, counted, world, bad)
        wl, l, world, bad, _ = _weights.global_weights(t, 0.0, per_sample, domains, self.group, False)
        return _weights.combine(wl, l, world, bad)

    @overload
    def weights(self, losses: torch.Tensor, domains: Any = None, *, mask: Any = None, reference: Any = None) -> torch.Tensor: ...

    @overload
    def weights(self, losses: np.ndarray, domains: Any = None, *, mask: Any = None, reference: Any = None) -> np.ndarray: ...

    @overload
    def weights(self, losses: Union[ArrowArrayLike, ArrowStreamLike], domains: Any = None) -> "pyarrow.Array": ...

    def weights(self, losses: Any, domains: Any = None, *, mask: Any = None, reference: Any = None) -> Any:
        """The weights of one batch (no gather, no loss) at the current step's
        temperature, of the same kind and shape as the input (as
        :func:`goreweight.weights`, including 2-D losses, ``mask`` and
        ``reference``); then the step advances.

        Example::

            w = rw.weights(numpy.array([1.0, 2.0, 3.0]))  # a numpy array summing to 1
        """
        t = self._handle()
        if _token.needs_prepare(losses, mask, reference) and isinstance(losses, (torch.Tensor, np.ndarray)):
            return _weights._prepared_weights(t, 0.0, losses, mask, reference, domains, False)[0]
        if isinstance(losses, torch.Tensor):
            n = _exchange.check_losses_tensor(losses, "losses")
            dom = None if domains is None else _exchange.domains_array(domains, n)
            return _exchange.torch_weights(t, 0.0, losses, n, dom, False)[0]
        if isinstance(losses, np.ndarray):
            return _exchange.numpy_weights(t, 0.0, losses, domains, False)[0]
        if _exchange.is_arrow(losses):
            if mask is not None or reference is not None:
                raise TypeError("goreweight: mask and reference need torch or numpy losses, not Arrow arrays")
            return _exchange.arrow_weights(t, 0.0, losses, domains, False)[0]
        raise TypeError(
            "goreweight: losses must be a torch.Tensor, a numpy.ndarray or an Arrow array, got "
            f"{type(losses).__name__}"
        )

    # ------------------------------------------------------------ state

    def _handle(self) -> Target:
        t = self._t
        if t is None:
            raise ValueError("goreweight: this Reweighter is closed")
        return t

    @property
    def step(self) -> int:
        """The global step the next call uses (settable, >= 0, a 64-bit
        integer).

        Example::

            rw.step = trainer_state.global_step
        """
        s = _lib.slots
        _lib.call("grw_reweighter_step", self._handle().h, s.n_p)
        return int(s.n.value)

    @step.setter
    def step(self, value: int) -> None:
        v = _args.int64("step", value)
        _lib.call("grw_reweighter_set_step", self._handle().h, v)

    @property
    def r(self) -> float:
        """The temperature of the current step (``inf`` during the warm-up).

        Example::

            goreweight.Reweighter(schedule=2.0).r  # 2.0
        """
        s = _lib.slots
        _lib.call("grw_reweighter_r", self._handle().h, s.d_p)
        return float(s.d.value)

    @property
    def stats(self) -> dict[str, float]:
        """Statistics of the last successful call, over the global batch, as
        a flat ``dict[str, float]`` ready for ``wandb.log`` and
        ``SummaryWriter.add_scalars`` (empty before the first call and after
        a failed one; a fresh dict at every read). The keys carry no prefix
        (add one when logging, e.g. ``{f"reweight/{k}": v for k, v in
        rw.stats.items()}``): ``step``, ``r`` (inf in warm-up),
        ``uniform`` (0/1), ``m``, ``valid``, ``nonfinite``, ``max_wm``
        (max w · valid), ``min_wm``, ``ess`` (1/Σw²), ``ess_frac``,
        ``entropy``, ``loss_min``, ``loss_max``, ``loss_mean``,
        ``loss_weighted`` (Σ w·l), ``capped``, and with domains
        ``domain/<id>/{count,nonfinite,mean_loss,weight_sum,mean_weight,mean_wm}``.
        They are computed only when read.

        Example::

            rw(per_sample)
            wandb.log({f"reweight/{k}": v for k, v in rw.stats.items()}, step=step)
            writer.add_scalars("reweight", rw.stats, step)  # TensorBoard
        """
        p = _lib.call_string("grw_reweighter_stats", self._handle().h)
        return {str(k): float(v) for k, v in json.loads(p).items()}

    @property
    def config(self) -> dict[str, Any]:
        """The configuration in effect, defaults filled in (the core's Config
        JSON form, with the schedule as a dict).

        Example::

            goreweight.Reweighter("quadratic").config["strategy"]  # "quadratic"
        """
        return json.loads(_lib.call_string("grw_reweighter_config", self._handle().h))

    @property
    def schedule(self) -> schedules.Schedule:
        """The temperature schedule.

        Example::

            goreweight.Reweighter(schedule=2.0).schedule  # constant(r=2.0)
        """
        return schedules.from_dict(self.config["schedule"])

    def state_dict(self) -> dict[str, Any]:
        """The state (format version, configuration and step) as a plain dict
        of JSON values, for ``torch.save`` or any checkpoint format.

        Example::

            torch.save({"model": model.state_dict(), "reweighter": rw.state_dict()}, path)
        """
        return json.loads(_lib.call_string("grw_reweighter_state", self._handle().h))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace configuration and step by a :meth:`state_dict`; the next
        call continues exactly where the saved run left off. The Go core
        validates the state as strictly as the constructor.

        Example::

            rw.load_state_dict(torch.load(path)["reweighter"])
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"goreweight: state must be a dict from state_dict(), got {type(state).__name__}")
        js = _args.dumps(_args.json_value("state", state))
        _lib.call("grw_reweighter_load_state", self._handle().h, js.encode("utf-8"))

    def close(self) -> None:
        """Free the Go object now (otherwise when garbage collected).

        Example::

            rw.close(); rw(per_sample)  # ValueError: this Reweighter is closed
        """
        t, self._t = self._t, None
        if t is not None:
            _lib.close_handle(t.h)

    def __repr__(self) -> str:
        if self._t is None:
            return "goreweight.Reweighter(closed)"
        c = self.config
        sched = schedules.from_dict(c.pop("schedule"))
        args = ", ".join(f"{k}={v!r}" for k, v in c.items())
        return f"goreweight.Reweighter({args}, schedule={sched!r}, step={self.step})"
