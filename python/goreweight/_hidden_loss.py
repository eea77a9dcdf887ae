"""Per-sample and per-token cross-entropy from the last hidden states, without full logits.

:func:`goreweight.per_sample_loss` needs the ``(batch, seq, vocab)`` logits: 1.6 GB in float32 for
batch 8, 1024 tokens and GPT-2's 50257-token vocabulary, plus as much again for their gradient.
The functions here take the hidden states that enter the output layer and the output layer's
weight instead, and compute the logits of a few hundred tokens at a time (a *chunk*), never the
whole tensor. Their backward (a ``torch.autograd.Function`` of its own) recomputes each chunk's
logits from the saved hidden states, so autograd keeps only the inputs and one float32 number
per token (the log-sum-exp) between forward and backward.

Semantics are those of ``per_sample_loss(torch.nn.functional.linear(hidden, W, bias), labels)``:
the same shift, ``ignore_index``, NaN for a sequence with no counted token (gradient 0), logits
rounded to the input dtype and statistics in float32 (float64 for float64 inputs). Under
``torch.autocast`` the inputs are cast to the autocast dtype first, as autocast casts the output
layer of a model.

The math here is a cross-entropy, not reweighting: it produces the losses that
:func:`goreweight.reweighted_loss` and :class:`goreweight.Reweighter` weight in the Go core.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any, Optional

import torch

__all__ = ["per_sample_loss_from_hidden", "per_token_loss_from_hidden", "DEFAULT_CHUNK_ELEMENTS"]

#: The default chunk holds about this many logits (64 MiB in float32): ``chunk_size=None`` means
#: ``max(1, DEFAULT_CHUNK_ELEMENTS // vocab)`` tokens per chunk (333 tokens for GPT-2's 50257).
DEFAULT_CHUNK_ELEMENTS = 1 << 24


def _autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The autocast dtype active for ``device_type``, or None when autocast is off there."""
    try:
        if not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError, RuntimeError):  # torch < 2.4: no per-device query
        if device_type == "cuda" and torch.is_autocast_enabled():
            return torch.get_autocast_gpu_dtype()
        if device_type == "cpu" and torch.is_autocast_cpu_enabled():
            return torch.get_autocast_cpu_dtype()
        return None


def _no_autocast(device_type: str) -> Any:
    """A context that turns autocast off on ``device_type`` (a no-op when it is off)."""
    if _autocast_dtype(device_type) is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, enabled=False)


def _stat_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 statistics for every floating dtype except float64, which keeps float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _rows(hidden: torch.Tensor, shift: bool) -> torch.Tensor:
    """The ``(N, H)`` hidden rows that predict a label (shifted like the labels)."""
    h = hidden[:, :-1, :] if shift else hidden
    return h.reshape(-1, h.shape[-1])


class _ChunkedCE(torch.autograd.Function):
    """Per-token cross-entropy of ``linear(h, weight, bias)`` against ``labels``, in chunks.

    ``forward(hidden, weight, bias, labels, ignore_index, shift, chunk)`` returns the ``(B, T')``
    per-token losses (0 where the label is ignored). Backward recomputes each chunk's logits.
    """

    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: Optional[torch.Tensor],
        labels: torch.Tensor,
        ignore_index: int,
        shift: bool,
        chunk: int,
    ) -> torch.Tensor:
        b = hidden.shape[0]
        lab = (labels[:, 1:] if shift else labels).reshape(-1)
        tp = max(labels.shape[1] - (1 if shift else 0), 0)
        sdt = _stat_dtype(hidden.dtype)
        with _no_autocast(hidden.device.type), torch.no_grad():
            h = _rows(hidden, shift)
            n = h.shape[0]
            counted = lab != ignore_index
            safe = torch.where(counted, lab, torch.zeros_like(lab))
            lse = torch.empty(n, dtype=sdt, device=hidden.device)
            loss = torch.empty(n, dtype=sdt, device=hidden.device)
            for s in range(0, n, chunk):
                e = min(s + chunk, n)
                z = torch.nn.functional.linear(h[s:e], weight, bias).to(sdt)
                lse_c = torch.logsumexp(z, dim=1)
                lse[s:e] = lse_c
                loss[s:e] = lse_c - z.gather(1, safe[s:e, None]).squeeze(1)
            loss = torch.where(counted, loss, torch.zeros_like(loss))
        ctx.save_for_backward(hidden, weight, bias, safe, counted, lse)
        ctx.shift, ctx.chunk = shift, chunk
        return loss.view(b, tp)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        hidden, weight, bias, safe, counted, lse = ctx.saved_tensors
        shift, chunk = ctx.shift, ctx.chunk
        need_h, need_w, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        sdt = lse.dtype
        dt = hidden.dtype
        with _no_autocast(hidden.device.type), torch.no_grad():
            h = _rows(hidden, shift)
            n = h.shape[0]
            g = grad_out.reshape(-1).to(sdt) * counted.to(sdt)
            gh = torch.empty_like(h) if need_h else None
            # weight and bias gradients accumulate over chunks in the statistics dtype
            gw = torch.zeros(weight.shape, dtype=sdt, device=weight.device) if need_w else None
            gb = torch.zeros(weight.shape[0], dtype=sdt, device=weight.device) if need_b else None
            for s in range(0, n, chunk):
                e = min(s + chunk, n)
                z = torch.nn.functional.linear(h[s:e], weight, bias).to(sdt)
                # d loss / d logits = softmax - onehot, scaled by the incoming gradient
                p = z.sub_(lse[s:e, None]).exp_()  # z is a fresh tensor: in place saves a chunk
                p.scatter_add_(1, safe[s:e, None], torch.full((e - s, 1), -1.0, dtype=sdt, device=p.device))
                p.mul_(g[s:e, None])
                d = p.to(dt)  # the logits' gradient, rounded as autograd would round it
                if gh is not None:
                    gh[s:e] = d @ weight
                if gw is not None:
                    if d.dtype == sdt:
                        gw.addmm_(d.t(), h[s:e])  # in place: no weight-sized temporary per chunk
                    else:
                        gw += (d.t() @ h[s:e]).to(sdt)
                if gb is not None:
                    gb += d.to(sdt).sum(dim=0)
            grad_hidden = None
            if gh is not None:
                if shift:
                    grad_hidden = torch.zeros_like(hidden)
                    grad_hidden[:, :-1, :] = gh.view(hidden.shape[0], -1, hidden.shape[2])
                else:
                    grad_hidden = gh.view(hidden.shape)
        return (
            grad_hidden,
            None if gw is None else gw.to(weight.dtype),
            None if gb is None else gb.to(bias.dtype),
            None,
            None,
            None,
            None,
        )


def _check(
    hidden: Any,
    lm_head_weight: Any,
    labels: Any,
    bias: Any,
    ignore_index: Any,
    shift: Any,
    chunk_size: Any,
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], int]:
    """Check the arguments; returns (hidden, weight, bias, chunk) cast for autocast if active."""
    for name, t in (("hidden", hidden), ("lm_head_weight", lm_head_weight), ("labels", labels)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"goreweight: {name} must be a torch.Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TypeError(f"goreweight: bias must be a torch.Tensor or None, got {type(bias).__name__}")
    if hidden.ndim != 3:
        raise ValueError(f"goreweight: hidden must have shape (batch, seq, hidden), got {tuple(hidden.shape)}")
    if not hidden.is_floating_point():
        raise TypeError(f"goreweight: hidden must be floating point, got {hidden.dtype}")
    if lm_head_weight.ndim != 2 or lm_head_weight.shape[1] != hidden.shape[2]:
        raise ValueError(
            f"goreweight: lm_head_weight must have shape (vocab, hidden) with hidden = {hidden.shape[2]} "
            f"(hidden's last dimension), got {tuple(lm_head_weight.shape)}"
        )
    if not lm_head_weight.is_floating_point():
        raise TypeError(f"goreweight: lm_head_weight must be floating point, got {lm_head_weight.dtype}")
    v = lm_head_weight.shape[0]
    if v == 0:
        raise ValueError("goreweight: lm_head_weight has a vocabulary of 0 tokens")
    if bias is not None:
        if bias.ndim != 1 or bias.shape[0] != v:
            raise ValueError(f"goreweight: bias must have shape (vocab,) = ({v},), got {tuple(bias.shape)}")
        if not bias.is_floating_point():
            raise TypeError(f"goreweight: bias must be floating point, got {bias.dtype}")
    if labels.ndim != 2 or tuple(labels.shape) != tuple(hidden.shape[:2]):
        raise ValueError(
            f"goreweight: labels must have shape (batch, seq) = {tuple(hidden.shape[:2])}, got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"goreweight: labels must hold integer token ids, got {labels.dtype}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"goreweight: ignore_index must be an integer, got {type(ignore_index).__name__}")
    if not isinstance(shift, bool):
        raise TypeError(f"goreweight: shift must be a bool, got {type(shift).__name__}")
    if chunk_size is None:
        chunk = max(1, DEFAULT_CHUNK_ELEMENTS // v)
    else:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
            raise TypeError(f"goreweight: chunk_size must be an integer or None, got {type(chunk_size).__name__}")
        if chunk_size < 1:
            raise ValueError(f"goreweight: chunk_size must be >= 1 (tokens per chunk), got {chunk_size}")
        chunk = int(chunk_size)
    for name, t in (("lm_head_weight", lm_head_weight), ("labels", labels), ("bias", bias)):
        if t is not None and t.device != hidden.device:
            raise ValueError(f"goreweight: {name} is on {t.device} but hidden is on {hidden.device}")
    ac = _autocast_dtype(hidden.device.type)
    if ac is not None:  # what autocast does to the output layer: both operands in its dtype
        hidden, lm_head_weight = hidden.to(ac), lm_head_weight.to(ac)
        bias = None if bias is None else bias.to(ac)
    for name, t in (("lm_head_weight", lm_head_weight), ("bias", bias)):
        if t is not None and t.dtype != hidden.dtype:
            raise TypeError(f"goreweight: {name} has dtype {t.dtype} but hidden has {hidden.dtype}; cast one of them")
    lab = labels[:, 1:] if shift else labels
    bad = (lab != ignore_index) & ((lab < 0) | (lab >= v))
    if bool(bad.any()):
        first = lab[bad][0].item()
        raise ValueError(
            f"goreweight: labels must be token ids in [0, {v}) (lm_head_weight's vocabulary) or "
            f"ignore_index={ignore_index}; got {first}"
        )
    return hidden, lm_head_weight, bias, chunk


def per_token_loss_from_hidden(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: Optional[torch.Tensor] = None,
    ignore_index: int = -100,
    shift: bool = True,
    chunk_size: Optional[int] = None,
) -> torch.Tensor:
    """Per-token cross-entropy of ``linear(hidden, lm_head_weight, bias)``, never holding full logits.

    Parameters
    ----------
    hidden:
        ``(batch, seq, hidden)`` last hidden states (what enters the output layer), any floating
        dtype, any device.
    lm_head_weight:
        ``(vocab, hidden)`` output-layer weight (``model.get_output_embeddings().weight``), same
        dtype and device as ``hidden`` (under ``torch.autocast`` both are cast to its dtype).
    labels:
        ``(batch, seq)`` integer token ids in ``[0, vocab)``, or ``ignore_index``.
    bias:
        Optional ``(vocab,)`` output-layer bias.
    shift:
        Causal LM (default): the hidden state at position t predicts label t+1.
    chunk_size:
        Tokens whose logits are computed at once. ``None``: about 2^24 logits per chunk
        (``DEFAULT_CHUNK_ELEMENTS // vocab`` tokens). The result does not depend on it beyond
        rounding; smaller chunks use less memory, larger ones fewer kernel launches.

    Returns
    -------
    ``(batch, seq')`` losses (``seq' = seq - 1`` with ``shift``) in float32 (float64 for float64
    inputs). **Ignored positions hold exactly 0** and get no gradient; the mask of counted tokens
    is ``(labels[:, 1:] if shift else labels) != ignore_index``. The gradient flows to ``hidden``,
    ``lm_head_weight`` and ``bias``; backward recomputes the logits chunk by chunk.
    """
    hidden, lm_head_weight, bias, chunk = _check(hidden, lm_head_weight, labels, bias, ignore_index, shift, chunk_size)
    return _ChunkedCE.apply(hidden, lm_head_weight, bias, labels.long(), int(ignore_index), shift, chunk)


def per_sample_loss_from_hidden(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: Optional[torch.Tensor] = None,
    ignore_index: int = -100,
    shift: bool = True,
    chunk_size: Optional[int] = None,
) -> torch.Tensor:
    """Per-sequence mean token cross-entropy from the last hidden states, never holding full logits.

    Equal to ``goreweight.per_sample_loss(torch.nn.functional.linear(hidden, lm_head_weight,
    bias), labels, ignore_index, shift)`` (values and gradients, up to float rounding), but the
    ``(batch, seq, vocab)`` logits and their gradient are never materialised: they are computed
    ``chunk_size`` tokens at a time, in forward and again in backward. The arguments are those of
    :func:`per_token_loss_from_hidden`.

    Returns
    -------
    A ``(batch,)`` tensor in float32 (float64 for float64 inputs): the mean cross-entropy of each
    sequence over its counted tokens. A sequence with no counted token gets NaN (its gradient is
    0), which :func:`goreweight.reweighted_loss` treats by its ``nonfinite`` policy.
    """
    tok = per_token_loss_from_hidden(
        hidden, lm_head_weight, labels, bias=bias, ignore_index=ignore_index, shift=shift, chunk_size=chunk_size
    )
    lab = labels[:, 1:] if shift else labels
    count = (lab != ignore_index).sum(dim=1)
    mean = tok.sum(dim=1) / count.clamp(min=1).to(tok.dtype)
    return torch.where(count > 0, mean, torch.full_like(mean, float("nan")))
