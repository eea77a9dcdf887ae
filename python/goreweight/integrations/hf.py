"""Hugging Face ``transformers.Trainer`` integration: :class:`ReweightingTrainer`.

Install with ``pip install "goreweight[hf]"`` (transformers >= 4.57, tested with 4.57 and 5.x;
older versions scale a short last gradient accumulation differently). This module imports
``transformers`` when it is imported itself; ``import goreweight`` never does.

What the trainer does on every training micro-batch (``compute_loss``), with the defaults
(``scope="micro"``, ``granularity="sequence"``, no reference model):

1. runs the model *without* ``labels`` (so the model computes no loss of its own) and takes the
   causal-LM logits;
2. ``goreweight.per_sample_loss(logits, labels)``: the mean token cross-entropy of each sequence
   (float32, labels shifted by one, ``-100`` ignored);
3. sets the reweighter's step to ``self.state.global_step`` (the number of optimizer steps done),
   so the temperature ``r`` is a pure function of the Trainer's step, also after a resume;
4. returns ``reweighter(per_sample)``: the losses of all ranks are gathered, the weights are
   computed over that *global micro-batch*, and this rank returns
   ``world_size * sum_{i on this rank} w_i * l_i`` (weights constant for autograd).

Gradient accumulation and ``num_items_in_batch``: the weighted loss is already a per-micro-batch
mean over sequences, so token counting does not apply. ``num_items_in_batch`` is ignored, and the
trainer tells the Trainer so (``model_accepts_loss_kwargs = False``, ``loss_is_scaled_for_ga =
False``); the Trainer then divides each micro-batch loss by the number of micro-batches in the
accumulation (``current_gradient_accumulation_steps``), and DDP averages over ranks. One optimizer
step therefore applies ``(1/G) * sum_g sum_i w_i^(g) * grad l_i^(g)`` for ``G`` micro-batches,
each weighted on its own over all ranks. With ``strategy="uniform"`` and sequences that all have
the same number of label tokens (packed pretraining data), this is exactly the gradient of the
stock Trainer's token-mean loss; with padding, ``uniform`` gives every *sequence* the same weight
while the stock loss gives every *token* the same weight.

Without full logits (``hidden_loss=True``, opt-in): step 1 runs the model with its output layer
(``model.get_output_embeddings()``, a ``torch.nn.Linear``) swapped for a module that only records
its input, so the ``(batch, seq, vocab)`` logits are never computed; step 2 is then
``goreweight.per_sample_loss_from_hidden(hidden, head.weight, labels, bias=head.bias)``, which
computes them a chunk of tokens at a time in forward and again in backward. Loss and gradients
equal those of the default path up to float rounding. The forward still goes through the
(DDP-)wrapped model, so gradient synchronisation is unchanged. It requires that the logits be
exactly ``head(last hidden state)``: models that rescale or soft-cap them (``logit_scale``,
``final_logit_softcapping`` in their config) are refused.

Options (see :class:`ReweightingMixin` and docs/integrations.md):

- ``scope="global"``: the weights of the whole optimizer step's batch instead of each
  micro-batch's. The Trainer fetches the ``G`` micro-batches of a step at once
  (``get_batch_samples``); on the first of them this trainer runs a first pass over all ``G``
  under ``torch.no_grad()`` (through the same, possibly DDP-wrapped, model in train mode),
  computes the weights of the global batch once with :class:`goreweight.GlobalBatch` (gathered
  over all ranks; ``r`` advances once per optimizer step), and every micro-batch's forward and
  backward then uses its slice. Before each first-pass forward the CPU and CUDA random number
  generator states are saved and they are restored before that micro-batch's second forward,
  so dropout draws the same masks in both passes: the weights are always those of the losses
  that are backpropagated, and the run draws the random numbers a micro-scope run draws. The
  returned loss is ``G * world * sum_i w_i l_i`` over the micro-batch's share (the Trainer divides
  by ``G``), so the accumulated gradients are ``sum_i w_i grad l_i`` over the global batch:
  those of one step with ``G = 1`` on the ``G``-times larger batch. Cost: one extra forward
  without gradients per micro-batch.
- ``scope="deferred"``: the approximate global scope (:class:`goreweight.DeferredGlobalBatch`,
  docs/scope.md), without the first pass. Each micro-batch's ``compute_loss`` runs one forward
  and returns ``G * world * sum_i u_i l_i`` with the unnormalised weights ``u_i`` of losses
  normalised with a range known before the step (the previous step's global min/max; on the
  first step the first micro-batch's own); :meth:`ReweightingMixin.training_step`, after the
  backward of the step's last micro-batch (DDP has averaged the gradients), calls
  ``finish(model)``: ``Z = sum u`` over the step and all ranks, every ``.grad`` times ``1/Z``,
  then the Trainer clips and steps. The accumulated gradients are ``sum_i (u_i/Z) grad l_i``
  over the global batch: ``scope="global"``'s when the step's losses span the range used,
  otherwise an approximation (its error is measured in docs/scope.md). No extra forward. Not
  for ``topk``/``truncate``, a cap or domain multipliers (a ``ValueError`` at construction).
  The running range is saved with the checkpoints (``goreweight_state.json``) and restored on
  resume. The logged loss of the step is carried by its last micro-batch (the others log 0).
- ``granularity="token"``: :func:`goreweight.per_token_loss` (or, with ``hidden_loss``,
  :func:`goreweight.per_token_loss_from_hidden`) and ``mask = labels != ignore_index`` (shifted):
  one weight per counted token over all counted tokens of the (micro or global) batch, ignored
  tokens weight 0, loss ``sum_ij w_ij l_ij``.
- ``reference_model``: the weights are those of ``loss - reference_loss``, the reference
  losses computed by the reference model on the same batch under ``torch.no_grad()`` in eval
  mode (moved to the batch's device on first use); the loss stays ``sum w l``. Cost: one
  reference forward per micro-batch (in the first pass under ``scope="global"``).

Evaluation (``model.training`` false) uses the stock loss, so eval losses stay comparable with
runs that do not reweight, and does not advance the reweighter.

Statistics: ``reweighter.stats`` of every training micro-batch (under ``scope="global"``: of
every optimizer step's global batch; under ``scope="deferred"``: ``DeferredGlobalBatch.stats`` of
every step) are averaged until the Trainer next logs, then added to that
log record with the prefix ``"reweight/"`` (so TensorBoard, W&B and ``trainer.state.log_history``
get them next to ``loss``).

Checkpoints: each checkpoint folder gets ``goreweight_state.json`` (written atomically by the
process that saves; under ``scope="deferred"`` with the ``DeferredGlobalBatch`` state too);
``train(resume_from_checkpoint=...)`` loads it before training resumes.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

try:
    from transformers import Trainer
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
except ImportError as _err:  # pragma: no cover - exercised only without transformers
    raise ImportError(
        "goreweight.integrations.hf needs the Hugging Face transformers package: "
        'pip install "goreweight[hf]" (or pip install transformers accelerate)'
    ) from _err

import torch

from goreweight import DeferredGlobalBatch, GlobalBatch, GoreweightError, Reweighter, per_sample_loss, per_token_loss
from goreweight._hidden_loss import per_sample_loss_from_hidden, per_token_loss_from_hidden

__all__ = ["ReweightingMixin", "ReweightingTrainer", "STATE_FILE"]

#: Name of the reweighter state file written into every checkpoint folder.
STATE_FILE = "goreweight_state.json"
_STATE_FORMAT = "goreweight-hf-state-1"
_SCOPES = ("micro", "global", "deferred")
_GRANULARITIES = ("sequence", "token")


class _Step:
    """One optimizer step under scope="global": its micro-batches as fetched, the RNG state
    before each one's first-pass forward, the global weights, and the next micro-batch."""

    __slots__ = ("batches", "rng", "gb", "next")

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches
        self.rng: list[tuple[torch.Tensor, Optional[list[torch.Tensor]]]] = []
        self.gb: Optional[GlobalBatch] = None
        self.next = 0


def _rng_state() -> tuple[torch.Tensor, Optional[list[torch.Tensor]]]:
    """The CPU and (when in use) CUDA random number generator states."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[torch.Tensor, Optional[list[torch.Tensor]]]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


def _pop_labels(inputs: dict[str, Any]) -> torch.Tensor:
    labels = inputs.pop("labels", None)
    if labels is None:
        raise ValueError(
            "ReweightingTrainer needs 'labels' in every training batch (for a causal LM the "
            "input_ids, with -100 where no loss is wanted; DataCollatorForLanguageModeling("
            "tokenizer, mlm=False) adds them)"
        )
    return labels


class ReweightingMixin:
    """Mixin for ``transformers.Trainer`` (or a subclass of it) that trains on the reweighted loss.

    Put it first in the bases, e.g. ``class MyTrainer(ReweightingMixin, SomeTrainer)``;
    :class:`ReweightingTrainer` is ``ReweightingMixin`` + ``transformers.Trainer``. See the module
    docstring for exactly what is computed, how gradient accumulation is scaled and what is
    logged and checkpointed.

    Keyword arguments (all others go to the Trainer):

    - ``reweighter``: the :class:`goreweight.Reweighter` to use (its strategy, temperature
      schedule, delta, cap, non-finite policy and process group). Default: ``Reweighter()``.
    - ``scope``: ``"micro"`` (default): the weights of each micro-batch (all ranks) on its own;
      ``"global"``: the weights of the whole optimizer step's batch (all accumulated
      micro-batches, all ranks), from a first forward pass without gradients
      (:class:`goreweight.GlobalBatch`); ``r`` then advances once per optimizer step and the
      accumulated gradients equal those of one step on the whole batch. Costs one extra
      forward (without gradients) per micro-batch. ``"deferred"``: approximately the same
      weights without that forward (:class:`goreweight.DeferredGlobalBatch`: a loss range from
      the previous step, the softmax normaliser applied to the gradients after the step's last
      backward, before clipping); not for ``topk``/``truncate``, a cap or domain multipliers.
    - ``granularity``: ``"sequence"`` (default): one weight per sequence, from its mean token
      loss; ``"token"``: one weight per counted token (``labels != ignore_index``), over every
      counted token of the batch, from :func:`goreweight.per_token_loss`; the loss is
      ``sum_ij w_ij l_ij``.
    - ``reference_model``: ``None`` (default) or a ``torch.nn.Module`` (same tokenizer), run
      under ``torch.no_grad()`` in eval mode on the same batch and device; the weights are those
      of the excess loss ``loss - reference_loss`` (per sequence or per token), the training
      loss stays ``sum w * loss``. It is not trained, not given to the optimizer and not saved.
    - ``stats_prefix``: prefix of the logged statistics keys (default ``"reweight/"``).
    - ``domain_key``: name of an optional batch entry holding per-sample domain ids; it is removed
      from the batch before the model sees it and handed to the reweighter (per-domain
      statistics, domain multipliers), as an integer tensor of shape ``(batch,)``. The Trainer
      keeps this column although the model's ``forward`` does not take it (with
      ``remove_unused_columns`` it would drop it otherwise). ``None`` disables it.
    - ``ignore_index``: label value excluded from the loss (default ``-100``).
    - ``shift_labels``: whether labels are the inputs themselves (causal LM, default ``True``:
      logits at position ``t`` predict label ``t+1``) or already aligned with the logits.
    - ``hidden_loss``: compute the per-sample (or per-token) losses from the last hidden states
      and the output layer's weight with :func:`goreweight.per_sample_loss_from_hidden` (or
      :func:`goreweight.per_token_loss_from_hidden`), never holding the full logits (default
      ``False``). Needs a model whose ``get_output_embeddings()`` is a ``torch.nn.Linear``
      applied as is to the last hidden state; with a ``reference_model``, the same holds for it.
      Works with every ``scope`` and ``granularity``.
    - ``hidden_chunk_size``: tokens per chunk for ``hidden_loss`` (default ``None``: about 2^24
      logits per chunk).
    - ``range_momentum``: ``scope="deferred"`` only: the ``range_momentum`` of
      :class:`goreweight.DeferredGlobalBatch` (default 0: each step normalises with the
      previous step's range).
    """

    #: The loss returned by ``compute_loss`` is a per-micro-batch mean: the Trainer must divide it
    #: by the number of accumulated micro-batches (read by transformers versions that have it).
    loss_is_scaled_for_ga: Optional[bool] = False

    if TYPE_CHECKING:  # set by transformers.Trainer, the class this mixin is combined with
        args: Any
        state: Any
        model: Any

    def __init__(
        self,
        *args: Any,
        reweighter: Optional[Reweighter] = None,
        scope: str = "micro",
        granularity: str = "sequence",
        reference_model: Optional[torch.nn.Module] = None,
        stats_prefix: str = "reweight/",
        domain_key: Optional[str] = "domains",
        ignore_index: int = -100,
        shift_labels: bool = True,
        hidden_loss: bool = False,
        hidden_chunk_size: Optional[int] = None,
        range_momentum: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if reweighter is None:
            reweighter = Reweighter()
        if not isinstance(reweighter, Reweighter):
            raise TypeError(f"reweighter must be a goreweight.Reweighter, got {type(reweighter).__name__}")
        if not isinstance(scope, str) or scope not in _SCOPES:
            raise ValueError(f"scope must be 'micro' or 'global' (exact) or 'deferred' (approximate), got {scope!r}")
        if not isinstance(granularity, str) or granularity not in _GRANULARITIES:
            raise ValueError(f"granularity must be 'sequence' or 'token', got {granularity!r}")
        if reference_model is not None and not isinstance(reference_model, torch.nn.Module):
            raise TypeError(
                f"reference_model must be a torch.nn.Module or None, got {type(reference_model).__name__}"
            )
        if not isinstance(hidden_loss, bool):
            raise TypeError(f"hidden_loss must be a bool, got {type(hidden_loss).__name__}")
        if range_momentum != 0.0 and scope != "deferred":
            raise ValueError(f"range_momentum={range_momentum!r} is an option of scope='deferred' only (scope={scope!r})")
        acc = _deferred(reweighter, range_momentum) if scope == "deferred" else None
        super().__init__(*args, **kwargs)
        if getattr(self, "compute_loss_func", None) is not None:
            raise ValueError(
                "ReweightingTrainer computes the loss itself; do not pass compute_loss_func as well"
            )
        if scope == "deferred" and getattr(self, "is_deepspeed_enabled", False):
            raise ValueError(
                "scope='deferred' does not work with DeepSpeed: its engine steps the optimizer inside "
                "the backward of the last micro-batch, before the gradients can be scaled by 1/Z; use "
                "scope='global'"
            )
        if getattr(self.args, "label_smoothing_factor", 0.0):
            raise ValueError(
                "ReweightingTrainer does not support label smoothing "
                f"(label_smoothing_factor={self.args.label_smoothing_factor}); set it to 0"
            )
        self.reweighter: Reweighter = reweighter
        self.scope: str = scope
        self.granularity: str = granularity
        self.stats_prefix: str = stats_prefix
        self.domain_key: Optional[str] = domain_key
        self.ignore_index: int = ignore_index
        self.shift_labels: bool = shift_labels
        self.hidden_loss: bool = hidden_loss
        self.hidden_chunk_size: Optional[int] = hidden_chunk_size
        model = getattr(self, "model", None)
        if reference_model is not None and model is not None:
            own = {id(p) for p in _unwrap(model).parameters()}
            if _unwrap(reference_model) is _unwrap(model) or any(id(p) in own for p in reference_model.parameters()):
                raise ValueError(
                    "reference_model must be a separate model: it shares parameters with the model being "
                    "trained (pass a frozen copy, e.g. copy.deepcopy(model) or another checkpoint)"
                )
        if hidden_loss and model is not None:
            _output_layer(model)  # raises now, not at the first step, if it cannot work
        if hidden_loss and reference_model is not None:
            try:
                _output_layer(reference_model)
            except ValueError as e:
                raise ValueError(f"hidden_loss=True with reference_model: the reference model: {e}") from None
        #: The reference model (or None): eval mode, no gradients, not part of the checkpoint.
        self.reference_model: Optional[torch.nn.Module] = reference_model
        if reference_model is not None:
            reference_model.eval()
        # The weighted loss is a mean over the micro-batch's sequences, never normalised by
        # num_items_in_batch: with this flag off, every supported transformers version divides
        # it by the number of accumulated micro-batches, and does not count or gather tokens.
        self.model_accepts_loss_kwargs = False
        self._rw_sums: dict[str, float] = {}
        self._rw_counts: dict[str, int] = {}
        self._rw_pending: Optional[_Step] = None
        #: scope="deferred": the DeferredGlobalBatch (running range, open step), else None.
        self.deferred: Optional[DeferredGlobalBatch] = acc
        self.range_momentum: float = float(range_momentum)
        self._rw_left = 0  # scope="deferred": micro-batches of the step not yet through training_step
        self._rw_step_loss: Optional[torch.Tensor] = None  # their unscaled losses, for the log
        self._rw_warned_domains = False

    # ------------------------------------------------------------------ loss

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: Mapping[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Optional[Union[torch.Tensor, int]] = None,
    ) -> Union[torch.Tensor, tuple[torch.Tensor, Any]]:
        """Reweighted loss of one training micro-batch; the stock loss in evaluation.

        ``num_items_in_batch`` is ignored in training (see the module docstring).
        """
        inputs = dict(inputs)
        domains = inputs.pop(self.domain_key, None) if self.domain_key else None
        if not model.training:
            return super().compute_loss(  # type: ignore[misc]
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        labels = _pop_labels(inputs)
        if self.scope == "global":
            loss, outputs = self._global_micro_loss(model, inputs, labels)
            return (loss, outputs) if return_outputs else loss
        if self.scope == "deferred":
            loss, outputs = self._deferred_micro_loss(model, inputs, labels, domains)
            return (loss, outputs) if return_outputs else loss
        outputs, losses = self._losses(model, inputs, labels)
        reference = self._reference_losses(inputs, labels)
        self.reweighter.step = int(self.state.global_step)
        if self.granularity == "sequence" and reference is None:
            loss = self.reweighter(losses, domains=domains)  # exactly the original path
        else:
            loss = self.reweighter(losses, domains=domains, mask=self._token_mask(labels), reference=reference)
        self._accumulate_stats(self.reweighter.stats)
        return (loss, outputs) if return_outputs else loss

    def _token_mask(self, labels: torch.Tensor) -> Optional[torch.Tensor]:
        """The counted tokens of a (B, T) label batch at token granularity (None per sequence)."""
        if self.granularity != "token":
            return None
        return (labels[:, 1:] if self.shift_labels else labels) != self.ignore_index

    def _losses(self, model: torch.nn.Module, inputs: Mapping[str, Any], labels: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """The model's outputs and its ``(B,)`` per-sequence or ``(B, T')`` per-token losses."""
        if self.hidden_loss:
            return self._hidden_per_sample(model, inputs, labels)
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
        fn = per_token_loss if self.granularity == "token" else per_sample_loss
        return outputs, fn(logits, labels, ignore_index=self.ignore_index, shift=self.shift_labels)

    def _reference_losses(self, inputs: Mapping[str, Any], labels: torch.Tensor) -> Optional[torch.Tensor]:
        """The reference model's losses on the same batch (no gradients, eval mode), or None."""
        ref = self.reference_model
        if ref is None:
            return None
        p = next(ref.parameters(), None)
        if p is not None and p.device != labels.device:
            ref.to(labels.device)
        if ref.training:
            ref.eval()
        with torch.no_grad():
            return self._losses(ref, inputs, labels)[1]

    def _global_micro_loss(self, model: torch.nn.Module, inputs: Mapping[str, Any], labels: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """scope="global": on the step's first micro-batch the first pass over all of them, then
        this micro-batch's loss with its slice of the global weights."""
        st = self._rw_pending
        if st is None or st.next >= len(st.batches):
            raise RuntimeError(
                "scope='global' computes the weights of the micro-batches the Trainer fetched for one "
                "optimizer step (get_batch_samples); compute_loss was called for a training micro-batch "
                "outside that loop (call it only from Trainer.train, or use scope='micro')"
            )
        if st.next == 0:
            self._first_pass(model, st)
        k = st.next
        st.next += 1
        _set_rng_state(st.rng[k])  # the same dropout masks as in the first pass
        outputs, losses = self._losses(model, inputs, labels)
        assert st.gb is not None
        loss = st.gb.loss(k, losses)
        g = len(st.batches)
        if st.next == g:
            self._rw_pending = None
        # The weights sum to 1 over the whole step; the Trainer divides each micro-batch's loss
        # by the number of micro-batches it accumulates (g), which this undoes.
        return loss * g, outputs

    def _first_pass(self, model: torch.nn.Module, st: "_Step") -> None:
        """The losses of every micro-batch of the step without gradients (train mode; the RNG
        state before each is kept for the second pass), then the global weights, once."""
        first: list[torch.Tensor] = []
        masks: list[Optional[torch.Tensor]] = []
        refs: list[Optional[torch.Tensor]] = []
        doms: list[Any] = []
        with torch.no_grad():
            for raw in st.batches:
                inputs = dict(self._prepare_inputs(raw))  # type: ignore[attr-defined]
                doms.append(inputs.pop(self.domain_key, None) if self.domain_key else None)
                labels = _pop_labels(inputs)
                st.rng.append(_rng_state())
                first.append(self._losses(model, inputs, labels)[1])
                masks.append(self._token_mask(labels))
                refs.append(self._reference_losses(inputs, labels))
        has_dom = [d is not None for d in doms]
        if any(has_dom) and not all(has_dom):
            raise ValueError(
                f"the {self.domain_key!r} entry must be in every micro-batch of an optimizer step or in none"
            )
        self.reweighter.step = int(self.state.global_step)
        st.gb = GlobalBatch(
            self.reweighter, first,
            masks=masks if self.granularity == "token" else None,
            references=refs if self.reference_model is not None else None,
            domains=doms if all(has_dom) else None,
        )
        self._accumulate_stats(self.reweighter.stats)

    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, *args: Any, **kwargs: Any) -> tuple[list[Any], Any]:
        """The Trainer's ``get_batch_samples`` (the micro-batches of one optimizer step); under
        ``scope="global"`` they are also kept for the first pass. (Extra arguments, the device in
        recent transformers versions, are passed on as they come.)"""
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, *args, **kwargs)  # type: ignore[misc]
        if self.scope == "global":
            self._rw_pending = _Step(list(batches)) if batches else None
        elif self.scope == "deferred":
            self._begin_deferred_step(len(batches))
        return batches, num_items

    # ------------------------------------------------------- scope="deferred"

    def _begin_deferred_step(self, n: int) -> None:
        """A new optimizer step of ``n`` micro-batches (from ``get_batch_samples``)."""
        acc = self.deferred
        assert acc is not None
        if acc.open:  # a step abandoned half-way (an exception in the previous one)
            acc.discard()
        self._rw_left = n
        self._rw_step_loss = None

    def _deferred_micro_loss(
        self, model: torch.nn.Module, inputs: Mapping[str, Any], labels: torch.Tensor, domains: Any
    ) -> tuple[torch.Tensor, Any]:
        """scope="deferred": ``G * world * sum u l`` of this micro-batch (the Trainer divides by
        ``G``; :meth:`training_step` scales the gradients by ``1/Z`` after the step's last one)."""
        acc = self.deferred
        assert acc is not None
        if self._rw_left <= 0:
            raise RuntimeError(
                "scope='deferred' scales the gradients after the last micro-batch the Trainer fetched "
                "for one optimizer step (get_batch_samples); compute_loss was called for a training "
                "micro-batch outside that loop (call it only from Trainer.train, or use scope='micro')"
            )
        if domains is not None and not self._rw_warned_domains:
            self._rw_warned_domains = True
            warnings.warn(
                f"scope='deferred' has no per-domain statistics: the {self.domain_key!r} entry of the "
                "batches is ignored (use scope='global' or 'micro' for them)",
                stacklevel=2,
            )
        outputs, losses = self._losses(model, inputs, labels)
        reference = self._reference_losses(inputs, labels)
        if not acc.open:
            self.reweighter.step = int(self.state.global_step)  # read by acc when the step opens
        loss = acc.loss(losses, mask=self._token_mask(labels), reference=reference)
        # u is unnormalised (finish divides by Z); undo the Trainer's 1/G as scope="global" does.
        return loss * self.current_gradient_accumulation_steps, outputs  # type: ignore[attr-defined]

    def training_step(self, model: torch.nn.Module, inputs: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The Trainer's ``training_step`` (forward, backward); under ``scope="deferred"``, after
        the backward of the optimizer step's last micro-batch (DDP has averaged the gradients by
        then), :meth:`goreweight.DeferredGlobalBatch.finish`: every ``.grad`` times ``1/Z``, before
        the Trainer clips the gradients and steps the optimizer. The returned (logged) loss of the
        step's micro-batches is then 0 for all but the last, which carries the step's weighted
        loss ``1/Z * sum u l`` (the sum the Trainer logs is that of ``scope="global"``)."""
        loss = super().training_step(model, inputs, *args, **kwargs)  # type: ignore[misc]
        if self.scope != "deferred" or not model.training:
            return loss
        acc = self.deferred
        assert acc is not None
        self._rw_left -= 1
        self._rw_step_loss = loss if self._rw_step_loss is None else self._rw_step_loss + loss
        if self._rw_left > 0:
            return torch.zeros_like(loss)
        total, self._rw_step_loss = self._rw_step_loss, None
        scale = acc.finish(model)
        self._accumulate_stats(acc.stats)
        return total * scale

    def _hidden_per_sample(
        self, model: torch.nn.Module, inputs: Mapping[str, Any], labels: torch.Tensor
    ) -> tuple[Any, torch.Tensor]:
        """The model's forward with its output layer replaced by a recorder, then the chunked loss
        (per sequence, or per token at token granularity).

        The call goes through ``model`` (possibly DDP-wrapped), so DDP's forward bookkeeping runs as
        usual; the output layer's weight enters the graph in the loss instead of in the model. The
        returned outputs hold the hidden states where the logits would be.
        """
        inner = _unwrap(model)
        parent, name, head = _output_layer(inner)
        rec = _Recorder()
        setattr(parent, name, rec)
        try:
            outputs = model(**inputs)
        finally:
            setattr(parent, name, head)
        if rec.hidden is None:
            raise RuntimeError("hidden_loss=True: the model's forward never called its output layer")
        hidden = rec.hidden
        if hidden.shape[:2] != labels.shape:
            raise ValueError(
                f"hidden_loss=True: the output layer saw hidden states of shape {tuple(hidden.shape)}, "
                f"which do not line up with labels {tuple(labels.shape)} (does the model keep only some "
                "positions' logits?)"
            )
        fn = per_token_loss_from_hidden if self.granularity == "token" else per_sample_loss_from_hidden
        losses = fn(
            hidden, head.weight, labels, bias=head.bias, ignore_index=self.ignore_index,
            shift=self.shift_labels, chunk_size=self.hidden_chunk_size,
        )
        return outputs, losses

    def _set_signature_columns_if_needed(self) -> None:
        # The Trainer keeps only the batch entries the model's forward takes (and the labels);
        # the domain ids are for the reweighter, so they must survive that filter.
        super()._set_signature_columns_if_needed()  # type: ignore[misc]
        cols = getattr(self, "_signature_columns", None)
        if self.domain_key and cols is not None and self.domain_key not in cols:
            cols.append(self.domain_key)

    # --------------------------------------------------------------- logging

    def _accumulate_stats(self, stats: Mapping[str, float]) -> None:
        for k, v in stats.items():
            self._rw_sums[k] = self._rw_sums.get(k, 0.0) + float(v)
            self._rw_counts[k] = self._rw_counts.get(k, 0) + 1

    def pop_reweight_stats(self) -> dict[str, float]:
        """Mean of each statistic over the training micro-batches since the last call, prefixed.

        Called by :meth:`log` for every training log record; empty when no micro-batch ran since.
        A key that only some micro-batches had (a per-domain key) is averaged over those.
        """
        out = {f"{self.stats_prefix}{k}": self._rw_sums[k] / n for k, n in self._rw_counts.items()}
        self._rw_sums, self._rw_counts = {}, {}
        return out

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """The Trainer's ``log``, with the reweighting statistics added to training records."""
        if "loss" in logs and self._rw_counts:
            logs = {**logs, **self.pop_reweight_stats()}
        super().log(logs, *args, **kwargs)  # type: ignore[misc]

    # ----------------------------------------------------------- checkpoints

    def save_reweighter_state(self, folder: str) -> str:
        """Write ``goreweight_state.json`` into ``folder`` atomically and return its path."""
        os.makedirs(folder, exist_ok=True)
        self.reweighter.step = int(self.state.global_step)
        doc = {
            "format": _STATE_FORMAT,
            "global_step": int(self.state.global_step),
            "reweighter": self.reweighter.state_dict(),
        }
        if self.deferred is not None:
            doc["deferred"] = self.deferred.state_dict()  # the running range (between steps)
        path = os.path.join(folder, STATE_FILE)
        fd, tmp = tempfile.mkstemp(prefix=STATE_FILE + ".", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    def load_reweighter_state(self, folder: str) -> bool:
        """Restore the reweighter (configuration and step) from ``folder/goreweight_state.json``.

        The saved configuration wins over the one given to the trainer (with a warning when they
        differ), so that a resumed run continues exactly the saved one.

        Returns ``False`` (with a warning) when the folder has no such file, e.g. a checkpoint
        written by a stock Trainer: the temperature schedule still follows the global step, only
        the reweighter's own state starts fresh. A malformed file is an error.
        """
        path = os.path.join(folder, STATE_FILE)
        if not os.path.isfile(path):
            warnings.warn(
                f"{folder} has no {STATE_FILE}; the reweighter starts fresh (its temperature "
                "still follows the Trainer's global step)",
                stacklevel=2,
            )
            return False
        with open(path, encoding="utf-8") as f:
            try:
                doc = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON: {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != _STATE_FORMAT or "reweighter" not in doc:
            raise ValueError(f"{path} is not a goreweight Trainer state (format {_STATE_FORMAT!r})")
        before = self.reweighter.config
        self.reweighter.load_state_dict(doc["reweighter"])
        after = self.reweighter.config
        if after != before:
            warnings.warn(
                f"the reweighter configuration saved in {path} replaces the one given to the trainer "
                f"(given {before}, saved {after}): a resumed run continues the saved run",
                stacklevel=2,
            )
        if self.scope == "deferred":
            # rebuilt from the (possibly replaced) configuration, then its saved running range
            self.deferred = _deferred(self.reweighter, self.range_momentum)
            saved = doc.get("deferred")
            if saved is None:
                warnings.warn(
                    f"{path} has no deferred-scope state (saved by a run with another scope): "
                    "scope='deferred' starts with no loss range (the first step's first micro-batch's)",
                    stacklevel=2,
                )
            else:
                self.deferred.load_state_dict(saved)  # also sets the reweighter's step
        return True

    def _save_checkpoint(self, model: Any, trial: Any, *args: Any, **kwargs: Any) -> None:
        # Written before the Trainer's own files so that a checkpoint pushed to the Hub has it.
        if self.args.should_save:
            run_dir = self._get_output_dir(trial=trial)  # type: ignore[attr-defined]
            folder = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            self.save_reweighter_state(folder)
        super()._save_checkpoint(model, trial, *args, **kwargs)  # type: ignore[misc]

    def train(
        self,
        resume_from_checkpoint: Optional[Union[str, bool]] = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """``Trainer.train``; on resume also restores the reweighter from the checkpoint."""
        if resume_from_checkpoint is not None and resume_from_checkpoint is not False:
            if resume_from_checkpoint is True:
                resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
                if resume_from_checkpoint is None:
                    raise ValueError(f"No valid checkpoint found in output directory ({self.args.output_dir})")
            self.load_reweighter_state(str(resume_from_checkpoint))
        return super().train(resume_from_checkpoint, *args, **kwargs)  # type: ignore[misc]


def _deferred(reweighter: Reweighter, range_momentum: float) -> DeferredGlobalBatch:
    """The DeferredGlobalBatch of scope="deferred", or a ValueError naming what it refuses."""
    try:
        return DeferredGlobalBatch(reweighter, range_momentum=range_momentum)
    except GoreweightError as e:
        raise ValueError(
            f"scope='deferred' cannot use this reweighter ({reweighter.config}): {e} "
            "(scope='global' supports every strategy, the cap and domain multipliers)"
        ) from e


class _Recorder(torch.nn.Module):
    """Stands in for the output layer during one forward: records its input, computes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: Optional[torch.Tensor] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.hidden = x
        return x


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP / DataParallel / compile wrappers."""
    while True:
        inner = getattr(model, "module", None)
        if not isinstance(inner, torch.nn.Module):
            inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def _output_layer(model: torch.nn.Module) -> tuple[torch.nn.Module, str, torch.nn.Linear]:
    """(parent module, attribute name, layer) of the model's output embedding, or ValueError."""
    model = _unwrap(model)
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if head is None:
        raise ValueError(
            "hidden_loss=True needs a model that exposes its output layer (get_output_embeddings() "
            f"returned None for {type(model).__name__}); use the default hidden_loss=False"
        )
    if not isinstance(head, torch.nn.Linear):
        raise ValueError(
            f"hidden_loss=True needs the output layer to be a torch.nn.Linear, got {type(head).__name__}"
        )
    cfg = getattr(model, "config", None)
    for key in ("final_logit_softcapping", "logit_scale", "output_logits_scale"):
        val = getattr(cfg, key, None)
        if val is not None and val != 1:
            raise ValueError(
                f"hidden_loss=True cannot reproduce this model's logits: its config sets {key}={val!r} "
                "(the logits are not the output layer applied to the last hidden state)"
            )
    for path, mod in model.named_modules():
        if mod is head and path:
            parent_path, _, name = path.rpartition(".")
            return model.get_submodule(parent_path), name, head
    raise ValueError("hidden_loss=True: the output layer is not a submodule of the model")


class ReweightingTrainer(ReweightingMixin, Trainer):
    """``transformers.Trainer`` that trains on the reweighted per-sequence loss.

    Example::

        from goreweight import Reweighter, schedules
        from goreweight.integrations.hf import ReweightingTrainer

        rw = Reweighter("linupper", schedule=schedules.cosine(100.0, 1.0, steps=1000))
        trainer = ReweightingTrainer(model=model, args=args, train_dataset=ds, reweighter=rw)
        trainer.train()

    See :class:`ReweightingMixin` for the extra keyword arguments and the module docstring for
    the accumulation and DDP semantics.
    """

