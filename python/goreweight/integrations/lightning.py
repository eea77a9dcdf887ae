"""PyTorch Lightning integration: :class:`ReweightingMixin` for a ``LightningModule``.

Install with ``pip install "goreweight[lightning]"`` (``lightning`` >= 2.0; the older
``pytorch_lightning`` package works too). ``import goreweight`` never imports Lightning.

Usage::

    import lightning as L
    from goreweight import Reweighter, per_sample_loss, schedules
    from goreweight.integrations.lightning import ReweightingMixin

    class LM(ReweightingMixin, L.LightningModule):
        def __init__(self):
            super().__init__(reweighter=Reweighter("linupper", schedule=schedules.cosine(100, 1, 10_000)))
            self.net = ...

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.reweighted_loss(per_sample_loss(self.net(x), y, shift=False))

What :meth:`ReweightingMixin.reweighted_loss` does on every training micro-batch:

1. sets ``reweighter.step = self.trainer.global_step`` (optimizer steps done), so the temperature
   ``r`` is a pure function of the step, the same for every micro-batch of one accumulation and
   after a resume;
2. returns ``reweighter(per_sample, domains=...)``: under DDP (any strategy that initialises
   ``torch.distributed``) the losses of all ranks are gathered, the weights are computed over that
   *global micro-batch*, and this rank returns ``world_size * sum_{i on this rank} w_i * l_i``
   (its slice by global rank), which DDP's gradient averaging turns into ``sum_i w_i * grad l_i``;
3. keeps ``reweighter.stats`` (a flat dict of floats) to be logged.

Gradient accumulation: Lightning divides every ``training_step`` loss by
``accumulate_grad_batches`` (also in a short last accumulation at the end of an epoch), so one
optimizer step applies ``(1/G) * sum_g sum_i w_i^(g) * grad l_i^(g)`` with every micro-batch
weighted on its own: the same semantics as the Hugging Face integration.

Logging: the statistics of the micro-batches of one optimizer step are averaged and logged with
``self.log_dict`` in ``on_before_optimizer_step``, prefixed ``"reweight/"`` (``reweight/r``,
``reweight/max_wm``, ``reweight/ess_frac``, ...), once per optimizer step, to whatever loggers
the Trainer has (TensorBoard, W&B, CSV). The values are already global (every rank computed them
over the gathered batch), so no ``sync_dist`` is needed.

Checkpoints: ``on_save_checkpoint`` stores the reweighter (configuration and step) under the key
``"goreweight"`` of the Lightning checkpoint; ``on_load_checkpoint`` restores it, so
``trainer.fit(model, ckpt_path=...)`` continues the saved schedule. The saved configuration wins
over the one given to the module (with a warning when they differ). A checkpoint without the key
resumes with a warning; the temperature still follows ``global_step``.

If your module overrides ``on_before_optimizer_step``, ``on_save_checkpoint`` or
``on_load_checkpoint``, call ``super()`` in them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Optional

try:
    import lightning.pytorch as _pl
except ImportError:  # pragma: no cover - the standalone package
    try:
        import pytorch_lightning as _pl  # type: ignore[no-redef]
    except ImportError as _err:
        raise ImportError(
            "goreweight.integrations.lightning needs PyTorch Lightning: "
            'pip install "goreweight[lightning]" (or pip install lightning)'
        ) from _err

import torch

from goreweight import Reweighter

__all__ = ["CHECKPOINT_KEY", "ReweightingMixin", "ReweightingModule"]

#: Key of the reweighter's state in a Lightning checkpoint dict.
CHECKPOINT_KEY = "goreweight"
_STATE_FORMAT = "goreweight-lightning-state-1"


class ReweightingMixin:
    """Mixin for a ``LightningModule`` that trains on the reweighted loss.

    Put it first in the bases: ``class MyModule(ReweightingMixin, L.LightningModule)``, and pass
    its keyword arguments to ``super().__init__``. See the module docstring for what is computed,
    logged and checkpointed.

    Keyword arguments (all others go to the next class, normally ``LightningModule``):

    - ``reweighter``: the :class:`goreweight.Reweighter` (strategy, temperature schedule, delta,
      cap, non-finite policy, process group). Default: ``Reweighter()``.
    - ``stats_prefix``: prefix of the logged statistics (default ``"reweight/"``).
    - ``log_stats``: log them (default ``True``).
    """

    def __init__(
        self,
        *args: Any,
        reweighter: Optional[Reweighter] = None,
        stats_prefix: str = "reweight/",
        log_stats: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if reweighter is None:
            reweighter = Reweighter()
        if not isinstance(reweighter, Reweighter):
            raise TypeError(f"reweighter must be a goreweight.Reweighter, got {type(reweighter).__name__}")
        if not isinstance(stats_prefix, str):
            raise TypeError(f"stats_prefix must be a str, got {type(stats_prefix).__name__}")
        self.reweighter: Reweighter = reweighter
        self.stats_prefix: str = stats_prefix
        self.log_stats: bool = bool(log_stats)
        self._rw_sums: dict[str, float] = {}
        self._rw_counts: dict[str, int] = {}

    def reweighted_loss(self, per_sample: torch.Tensor, domains: Any = None) -> torch.Tensor:
        """The reweighted loss of one training micro-batch; return it from ``training_step``.

        ``per_sample`` is the ``(batch,)`` tensor of per-sequence losses of this rank's micro-batch
        (from :func:`goreweight.per_sample_loss` or
        :func:`goreweight.per_sample_loss_from_hidden`); ``domains`` optional per-sample domain
        ids. Every rank must call it on every micro-batch (it is a collective under DDP).
        """
        trainer = getattr(self, "_trainer", None)
        if trainer is not None:
            self.reweighter.step = int(trainer.global_step)
        loss = self.reweighter(per_sample, domains=domains)
        for k, v in self.reweighter.stats.items():
            self._rw_sums[k] = self._rw_sums.get(k, 0.0) + float(v)
            self._rw_counts[k] = self._rw_counts.get(k, 0) + 1
        return loss

    def pop_reweight_stats(self) -> dict[str, float]:
        """Mean of each statistic over the micro-batches since the last call, prefixed; then reset.

        A key only some micro-batches had (a per-domain key) is averaged over those.
        """
        out = {f"{self.stats_prefix}{k}": self._rw_sums[k] / n for k, n in self._rw_counts.items()}
        self._rw_sums, self._rw_counts = {}, {}
        return out

    def on_before_optimizer_step(self, optimizer: Any, *args: Any) -> None:
        """Logs the averaged statistics of the step's micro-batches (then Lightning's own hook)."""
        if self._rw_counts:
            stats = self.pop_reweight_stats()
            if self.log_stats:
                self.log_dict(stats, on_step=True, on_epoch=False, sync_dist=False)  # type: ignore[attr-defined]
        super().on_before_optimizer_step(optimizer, *args)  # type: ignore[misc]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Stores the reweighter's state (configuration and step) under ``checkpoint["goreweight"]``."""
        trainer = getattr(self, "_trainer", None)
        step = int(trainer.global_step) if trainer is not None else int(self.reweighter.step)
        self.reweighter.step = step
        checkpoint[CHECKPOINT_KEY] = {
            "format": _STATE_FORMAT,
            "global_step": step,
            "reweighter": self.reweighter.state_dict(),
        }
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restores the reweighter from ``checkpoint["goreweight"]`` (the saved configuration wins)."""
        doc = checkpoint.get(CHECKPOINT_KEY)
        if doc is None:
            warnings.warn(
                f"the checkpoint has no {CHECKPOINT_KEY!r} entry; the reweighter starts fresh (its "
                "temperature still follows the trainer's global step)",
                stacklevel=2,
            )
        else:
            if not isinstance(doc, Mapping) or doc.get("format") != _STATE_FORMAT or "reweighter" not in doc:
                raise ValueError(
                    f"checkpoint[{CHECKPOINT_KEY!r}] is not a goreweight Lightning state (format {_STATE_FORMAT!r})"
                )
            before = self.reweighter.config
            self.reweighter.load_state_dict(doc["reweighter"])
            after = self.reweighter.config
            if after != before:
                warnings.warn(
                    f"the reweighter configuration saved in the checkpoint replaces the one given to the "
                    f"module (given {before}, saved {after}): a resumed run continues the saved run",
                    stacklevel=2,
                )
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]


class ReweightingModule(ReweightingMixin, _pl.LightningModule):
    """``ReweightingMixin`` + ``LightningModule`` (of the ``lightning`` package when installed,
    else of ``pytorch_lightning``): subclass it and return :meth:`reweighted_loss` from
    ``training_step``."""
