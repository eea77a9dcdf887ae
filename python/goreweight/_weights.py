"""The stateless API: weights, reweighted_loss, per_sample_loss."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, Optional, Protocol, Union, overload

import numpy as np
import torch

from . import _args, _dist, _exchange, _lib, _token
from ._exchange import Target

if TYPE_CHECKING:
    import pyarrow

__all__ = ["weights", "reweighted_loss", "per_sample_loss", "per_token_loss", "max_weight_bound", "ArrowArrayLike", "ArrowStreamLike"]


class ArrowArrayLike(Protocol):
    """Anything with the Arrow PyCapsule array interface (pyarrow.Array, ...)."""

    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]: ...


class ArrowStreamLike(Protocol):
    """Anything with the Arrow PyCapsule stream interface (pyarrow.ChunkedArray,
    polars.Series, ...)."""

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any: ...


Multipliers = Optional[Iterable[float]]


class _Weigher(Target):
    """A cached Go Weigher for one configuration; the handle is closed when
    the last reference goes (so an evicted entry still in use by another
    thread stays valid until that call returns)."""

    __slots__ = ()

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(_lib.new_handle("grw_weigher_new", _args.dumps(options)), False)

    def __del__(self, _close: Any = _lib.close_handle) -> None:
        _close(getattr(self, "h", 0))


_CACHE_MAX = 64
_cache: dict[tuple[Any, ...], _Weigher] = {}
_cache_lock = threading.Lock()


def _weigher(strategy: Any, delta: Any, cap: Any, nonfinite: Any, q: Any, mult: Any) -> _Weigher:
    """The Weigher for a configuration, created (and every argument converted
    and validated by Go) on first use, then cached: a call with a known
    configuration parses no JSON and converts nothing twice. The multipliers
    are materialised once, first (an iterator is read exactly once)."""
    if mult is not None:
        mult = _args.multipliers(mult)
    try:
        key = (strategy, delta, delta.__class__, cap, cap.__class__, nonfinite, q, q.__class__, mult)
        w = _cache.get(key)
    except TypeError:  # unhashable arguments: convert them (this raises)
        key, w = None, None
    if w is not None:
        return w
    opts = _args.options(strategy, delta, cap, nonfinite, q, mult)
    w = _Weigher(opts)
    if key is not None:
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.pop(next(iter(_cache)))
            _cache[key] = w
    return w


@overload
def weights(
    losses: torch.Tensor,
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    domains: Any = None,
    *,
    q: Optional[float] = None,
    domain_multipliers: Multipliers = None,
    mask: Any = None,
    reference: Any = None,
    return_stats: Literal[False] = False,
) -> torch.Tensor: ...


@overload
def weights(
    losses: torch.Tensor,
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    domains: Any = None,
    *,
    q: Optional[float] = None,
    domain_multipliers: Multipliers = None,
    mask: Any = None,
    reference: Any = None,
    return_stats: Literal[True],
) -> tuple[torch.Tensor, dict[str, float]]: ...


@overload
def weights(
    losses: np.ndarray,
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    domains: Any = None,
    *,
    q: Optional[float] = None,
    domain_multipliers: Multipliers = None,
    mask: Any = None,
    reference: Any = None,
    return_stats: Literal[False] = False,
) -> np.ndarray: ...


@overload
def weights(
    losses: np.ndarray,
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    domains: Any = None,
    *,
    q: Optional[float] = None,
    domain_multipliers: Multipliers = None,
    mask: Any = None,
    reference: Any = None,
    return_stats: Literal[True],
) -> tuple[np.ndarray, dict[str, float]]: ...


@overload
def weights(
    losses: Union[ArrowArrayLike, ArrowStreamLike],
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    domains: Any = None,
    *,
    q: Optional[float] = None,
    domain_multipliers: Multipliers = None,
    return_stats: Literal[False] = False,
) -> "pyarrow.Array": ...


@overload
def weights(
    losses: Union[ArrowArrayLike, ArrowStreamLike],
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    domains: Any = None,
    *,
    q: Optional[float] = None,
    domain_multipliers: Multipliers = None,
    return_stats: Literal[True],
) -> tuple["pyarrow.Array", dict[str, float]]: ...


def weights(
    losses: Any,
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    domains: Any = None,
    *,
    q: Optional[float] = None,
    domain_multipliers: Multipliers = None,
    mask: Any = None,
    reference: Any = None,
    return_stats: bool = False,
) -> Any:
    """The weights of one batch of per-sample losses, computed by the Go core.

    Parameters
    ----------
    losses:
        1-D, non-empty per-sample losses (or 2-D per-token losses, see
        ``mask``): a ``torch.Tensor`` (any floating
        dtype, CPU or CUDA, any strides), a ``numpy.ndarray`` (floating), or an
        Arrow array (anything with ``__arrow_c_array__`` or
        ``__arrow_c_stream__``: pyarrow, polars, ...; float16/32/64, nulls
        count as non-finite). Computation is in float32 inputs and float64
        internally; float64 losses beyond the float32 range become infinite.
    strategy:
        ``"uniform"``, ``"linupper"``, ``"quadratic"``, ``"extremes"``,
        ``"dro-kl"``, ``"topk"``, ``"truncate"`` (see
        :func:`goreweight.strategies`).
    r:
        The temperature, > 0; ``math.inf`` gives uniform weights.
    delta:
        Half-width of the normalised loss range, > 0 (paper: 1).
    cap:
        ``None`` or a number >= 1: every weight is at most ``cap / M`` (M the
        number of finite losses), by the exact KL projection.
    nonfinite:
        ``"zero"``: NaN/Inf losses get weight 0 and are left out of the
        normalisation; ``"raise"``: they are an error.
    domains:
        ``None`` or one integer domain id >= 0 per loss (tensor, array, Arrow
        array or sequence); used by ``domain_multipliers`` and the stats.
    q:
        The fraction for ``"topk"`` (kept, in (0, 1]) and ``"truncate"``
        (dropped, in [0, 1)); required by those two, ignored by the others.
    domain_multipliers:
        Optional per-domain factors (finite, >= 0) applied to the weights
        before the final normalisation; every domain id needs one.
    mask:
        Token level (torch and numpy only): a bool tensor/array of the
        losses' shape, True = counted. The weights range over the counted
        entries only; the others get exactly 0, stay out of the min/max and
        are not counted as non-finite. Default: every entry of a 1-D input;
        the finite entries (of ``losses - reference``) of a 2-D input, e.g.
        the (batch, seq) losses of :func:`per_token_loss`, which are NaN at
        ignored positions. With ``topk``/``truncate`` over token losses this
        is Rho-1's token selection. See docs/scope.md.
    reference:
        Reference (excess) loss (torch and numpy only): losses of a
        reference model, same shape as ``losses``; the weights are those of
        the scores ``losses - reference`` (computed in float32, float64 when
        either is float64), as in RHO-LOSS.
    return_stats:
        Also return the batch's statistics (see :attr:`Reweighter.stats`).

    Returns
    -------
    float32 weights of the same kind as the input (a tensor on the same
    device, a numpy array, or a pyarrow array for any Arrow input), >= 0 and
    summing to 1; with ``return_stats=True`` a tuple ``(weights, stats)``.

    A ``numpy.ma`` masked array is weighted over its unmasked entries only
    (the masked ones are not in the batch and not counted in the stats); the
    result is a masked array with the same mask and weight 0 at masked
    entries.

    Raises
    ------
    TypeError, ValueError
        Bad arguments, naming the argument. :class:`GoreweightError` (a
        ValueError) for what the Go core refuses, e.g. an infeasible cap;
        its subclasses :class:`EmptyBatchError` (no losses) and
        :class:`NonFiniteLossError` (non-finite losses under
        ``nonfinite="raise"``, or none finite).

    Example
    -------
    >>> import numpy as np, goreweight
    >>> w = goreweight.weights(np.array([1.0, 2.0, 3.0]), strategy="linupper", r=1.0)
    >>> float(w.sum())  # doctest: +ELLIPSIS
    1.0...
    """
    w = _weigher(strategy, delta, cap, nonfinite, q, domain_multipliers)
    if r.__class__ is not float:
        r = _args.real("r", r)
    out: Any
    if _token.needs_prepare(losses, mask, reference) and isinstance(losses, (torch.Tensor, np.ndarray)):
        out, sp = _prepared_weights(w, r, losses, mask, reference, domains, return_stats)
    elif isinstance(losses, torch.Tensor):
        n = _exchange.check_losses_tensor(losses, "losses")
        dom = None if domains is None else _exchange.domains_array(domains, n)
        out, _, sp = _exchange.torch_weights(w, r, losses, n, dom, return_stats)
    elif isinstance(losses, np.ndarray):
        out, _, sp = _exchange.numpy_weights(w, r, losses, domains, return_stats)
    elif _exchange.is_arrow(losses):
        if mask is not None or reference is not None:
            raise TypeError("goreweight: mask and reference need torch or numpy losses, not Arrow arrays")
        out, _, sp = _exchange.arrow_weights(w, r, losses, domains, return_stats)
    else:
        raise TypeError(
            "goreweight: losses must be a torch.Tensor, a numpy.ndarray or an Arrow array, got "
            f"{type(losses).__name__} (wrap a list with numpy.asarray)"
        )
    if return_stats:
        return out, _exchange.stats_dict(sp)
    return out


def _prepared_weights(
    t: Target, r: float, losses: Any, mask: Any, reference: Any, domains: Any, want_stats: bool
) -> tuple[Any, Optional[int]]:
    """Weights of a 2-D, masked or reference-shifted torch tensor or numpy
    array (no gather), in the input's shape; returns (weights, stats pointer).
    CPU tensors and numpy arrays go to the core's masked entry point
    (dense buffers, no compaction); other devices compact on the device."""
    if _token.dense_applies(losses):
        if isinstance(losses, torch.Tensor):
            w, _, sp, _ = _token.dense_weights_torch(t, r, losses, mask, reference, domains, want_stats, "losses")
        else:
            w, _, sp = _token.dense_weights_numpy(t, r, losses, mask, reference, domains, want_stats)
        return w, sp
    if isinstance(losses, torch.Tensor):
        p = _token.prepare_torch(losses, mask, reference, "losses")
        dom = p.domains(domains)
        w1, _, sp = _exchange.torch_weights(t, r, p.scores, p.n, dom, want_stats)
        return p.scatter_torch(w1), sp
    pn, ma_mask = _token.prepare_numpy(losses, mask, reference)
    dom = pn.domains(domains)
    a1, _, sp = _exchange.numpy_weights(t, r, pn.scores, dom, want_stats)
    full = pn.scatter_numpy(a1)
    if ma_mask is not None:
        return np.ma.MaskedArray(full, mask=ma_mask), sp
    return full, sp


def prepared_global_weights(
    target: Target, r: float, per_sample: Any, mask: Any, reference: Any, domains: Any, group: Any, want_stats: bool
) -> tuple[torch.Tensor, Optional[torch.Tensor], int, int, Optional[int]]:
    """As :func:`global_weights` for 2-D, masked or reference-shifted losses:
    the counted scores of every rank form the global batch. Returns (this
    rank's weights in the input's shape, the counted mask or None for a 1-D
    input without a mask, world size, global non-finite count, stats
    pointer). A problem with one rank's input makes every rank raise.

    In one process, a CPU tensor goes to the core's masked entry point
    (dense buffers, no compaction). Its weights are 0 exactly where not
    counted, so for 2-D losses the counted mask returned is None
    (:func:`loss_of` then only masks non-finite losses); a 1-D input keeps
    its mask (None without one: every entry is counted)."""
    if isinstance(per_sample, torch.Tensor) and not _dist.active(group) and _token.dense_applies(per_sample):
        w, bad, sp, m = _token.dense_weights_torch(target, r, per_sample, mask, reference, domains, want_stats, "per_sample")
        return w, (m if per_sample.ndim == 1 else None), 1, bad, sp
    problem: Optional[BaseException] = None
    p: Optional[_token.Prepared] = None
    dom = None
    try:
        if not isinstance(per_sample, torch.Tensor):
            raise TypeError(f"goreweight: per_sample must be a torch.Tensor, got {type(per_sample).__name__}")
        p = _token.prepare_torch(per_sample, mask, reference, "per_sample")
        dom = p.domains(domains)
    except (TypeError, ValueError) as e:
        problem = e
    device = per_sample.device if isinstance(per_sample, torch.Tensor) and per_sample.device.type != "meta" else torch.device("cpu")
    scores = None if p is None else p.scores
    w, _, world, bad, sp = global_weights(target, r, scores, dom, group, want_stats, problem=problem, device=device)
    assert p is not None  # global_weights raised otherwise
    return p.scatter_torch(w), p.counted, world, bad, sp


def loss_of(w: torch.Tensor, per_sample: torch.Tensor, counted: Optional[torch.Tensor], world: int, bad: int) -> torch.Tensor:
    """The reweighted loss from :func:`prepared_global_weights`' results."""
    if counted is None and per_sample.ndim == 1:
        return combine(w, per_sample, world, bad)
    return _token.masked_loss(w, per_sample, counted, world)


def _local_problem(per_sample: Any) -> Optional[BaseException]:
    """The problem with one rank's per-sample losses, or None."""
    try:
        if not isinstance(per_sample, torch.Tensor):
            raise TypeError(f"goreweight: per_sample must be a torch.Tensor, got {type(per_sample).__name__}")
        _exchange.check_losses_tensor(per_sample, "per_sample")
    except (TypeError, ValueError) as e:
        return e
    return None


def global_weights(
    target: Target,
    r: float,
    per_sample: Any,
    domains: Any,
    group: Any,
    want_stats: bool,
    problem: Optional[BaseException] = None,
    device: Optional[torch.device] = None,
) -> tuple[torch.Tensor, torch.Tensor, int, int, Optional[int]]:
    """Computes the weights of the global batch (gathered over the group when
    torch.distributed is initialised) and returns (this rank's slice of the
    weights, local per-sample losses, world size, global non-finite count,
    stats pointer). ``problem``: an error found by the caller in this rank's
    input, raised on every rank (after the first exchange) under
    torch.distributed; ``device``: where the exchange runs when per_sample
    is unusable."""
    if _dist.active(group):
        if problem is None:
            problem = _local_problem(per_sample)
        dom_t = None
        if problem is None and domains is not None:
            try:
                d = _exchange.domains_array(domains, per_sample.numel())
                assert d is not None  # domains is not None
                dom_t = torch.from_numpy(d.astype(np.int64)).to(per_sample.device)
            except (TypeError, ValueError) as e:
                problem = e
        if isinstance(per_sample, torch.Tensor) and per_sample.device.type != "meta":
            device = per_sample.device
        elif device is None:
            device = torch.device("cpu")
        local = per_sample.detach().float() if problem is None else None
        glob, gdom, lo, hi, world = _dist.gather(local, dom_t, group, problem, device)
        dom = None if gdom is None else gdom.cpu().numpy().astype(np.int32)
        w, bad, sp = _exchange.torch_weights(target, r, glob, glob.numel(), dom, want_stats)
        return w[lo:hi], per_sample, world, bad, sp
    if problem is None:
        problem = _local_problem(per_sample)
    if problem is not None:
        raise problem
    n = per_sample.numel()
    dom = None if domains is None else _exchange.domains_array(domains, n)
    w, bad, sp = _exchange.torch_weights(target, r, per_sample, n, dom, want_stats)
    return w, per_sample, 1, bad, sp


def combine(w: torch.Tensor, per_sample: torch.Tensor, world: int, nonfinite: int) -> torch.Tensor:
    """world · Σ w_i l_i with the weights as constants. Non-finite losses
    (weight 0) are replaced by 0 first, so neither the loss nor its gradient
    becomes NaN (0 · NaN would be NaN in autograd)."""
    l = per_sample if per_sample.dtype == torch.float32 else per_sample.float()
    if nonfinite:
        l = l.masked_fill(~torch.isfinite(l.detach()), 0.0)
    loss = torch.dot(w, l)
    if world != 1:
        loss = loss * world
    return loss


def reweighted_loss(
    per_sample: torch.Tensor,
    strategy: str = "linupper",
    r: float = 1.0,
    delta: float = 1.0,
    cap: Optional[float] = None,
    nonfinite: str = "zero",
    group: Any = None,
    *,
    domains: Any = None,
    q: Optional[float] = None,
    domain_multipliers: Multipliers = None,
    mask: Any = None,
    reference: Any = None,
) -> torch.Tensor:
    """The reweighted training loss ``Σ w_i · l_i`` of per-sample losses, as a
    float32 scalar tensor; the weights are constants for autograd, so the
    gradient is ``Σ w_i · ∇l_i``.

    The arguments are those of :func:`weights`; ``per_sample`` must be a 1-D
    tensor (any floating dtype, any device) that may require grad.

    Non-finite losses get weight 0 under ``nonfinite="zero"`` and are masked
    out, so the loss and its gradient stay finite.

    Token level: ``per_sample`` may be 2-D (e.g. :func:`per_token_loss`),
    with ``mask`` as in :func:`weights` (default: the finite entries); the
    loss is ``Σ w_ij · l_ij`` over the counted entries (the others
    contribute exactly 0, also when their loss is NaN), the weights
    ranging over every counted token of the global batch. ``reference``
    (detached, same shape) shifts the scores to ``per_sample - reference``;
    the loss stays ``Σ w · per_sample``.

    Under torch.distributed (initialised, more than one process in
    ``group``, default the world), the weights are those of the *global*
    batch: every rank's losses are all-gathered in ``group``, every rank
    computes the same weights, takes the slice of its rank in the group and
    returns ``world_size · Σ_{i in rank} w_i · l_i``, so that the usual
    averaging of gradients over ranks (DDP, FSDP) gives ``Σ_i w_i ∇l_i`` over
    the global batch. Ranks may hold different numbers of samples. Every
    rank must call this function (it is a collective); invalid input on one
    rank makes every rank raise. With ``strategy="uniform"`` the result
    equals ``per_sample.mean()`` (single process) and the global mean loss
    (distributed), with the same gradients. A rank may hold zero samples as
    long as the global batch is not empty.

    Example
    -------
    >>> import torch, goreweight
    >>> per_sample = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> loss = goreweight.reweighted_loss(per_sample, strategy="uniform")
    >>> loss.backward(); per_sample.grad  # doctest: +ELLIPSIS
    tensor([0.3333, 0.3333, 0.3333])
    """
    w = _weigher(strategy, delta, cap, nonfinite, q, domain_multipliers)
    if r.__class__ is not float:
        r = _args.real("r", r)
    if _token.needs_prepare(per_sample, mask, reference):
        wf, counted, world, bad, _ = prepared_global_weights(w, r, per_sample, mask, reference, domains, group, False)
        return loss_of(wf, per_sample, counted, world, bad)
    wl, l, world, bad, _ = global_weights(w, r, per_sample, domains, group, False)
    return combine(wl, l, world, bad)


def _ce_inputs(logits: Any, labels: Any, ignore_index: Any, shift: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Checks the arguments of per_sample_loss / per_token_loss and applies
    the causal shift; TypeError or ValueError naming the argument."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"goreweight: logits must be a torch.Tensor, got {type(logits).__name__}")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"goreweight: labels must be a torch.Tensor, got {type(labels).__name__}")
    if logits.ndim != 3:
        raise ValueError(f"goreweight: logits must have shape (batch, seq, vocab), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"goreweight: logits must be floating point, got {logits.dtype}")
    _exchange.check_tensor_device(logits, "logits")
    _exchange.check_tensor_device(labels, "labels")
    if labels.device != logits.device:
        raise ValueError(f"goreweight: labels must be on the device of logits ({logits.device}), got {labels.device}")
    if labels.ndim != 2 or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"goreweight: labels must have shape (batch, seq) = {tuple(logits.shape[:2])}, got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"goreweight: labels must hold integer token ids, got {labels.dtype}")
    ignore_index = _args.int64("ignore_index", ignore_index)
    if not isinstance(shift, bool):
        raise TypeError(f"goreweight: shift must be a bool, got {type(shift).__name__}")
    if shift:
        logits = logits[:, :-1, :]
        labels = labels[:, 1:]
    return logits, labels, ignore_index


def per_sample_loss(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100, shift: bool = True
) -> torch.Tensor:
    """Per-sequence mean token cross-entropy, in float32.

    Parameters
    ----------
    logits:
        ``(batch, seq, vocab)`` logits of any floating dtype; they are upcast
        to float32 (bf16 logits give float32 losses).
    labels:
        ``(batch, seq)`` integer token ids; ``ignore_index`` marks tokens that
        do not count.
    shift:
        For causal language models: position t predicts label t+1, so the
        logits lose their last position and the labels their first.

    Returns
    -------
    A float32 tensor of shape ``(batch,)``: the mean cross-entropy of each
    sequence over its counted tokens. A sequence with no counted token gets
    NaN (never a silent 0/0 = 0), which :func:`weights` and
    :func:`reweighted_loss` treat by their ``nonfinite`` policy; its gradient
    is 0. Tensors on the meta device (no data) are refused with
    :class:`GoreweightError` naming the argument.

    Example
    -------
    >>> import torch, goreweight
    >>> logits, labels = torch.zeros(2, 5, 10), torch.zeros(2, 5, dtype=torch.long)
    >>> goreweight.per_sample_loss(logits, labels)  # ln(10) per sequence
    tensor([2.3026, 2.3026])
    """
    logits, labels, ignore_index = _ce_inputs(logits, labels, ignore_index, shift)
    b, t, v = logits.shape
    labels = labels.long()
    if t == 0:
        return torch.full((b,), float("nan"), dtype=torch.float32, device=logits.device)
    ce = torch.nn.functional.cross_entropy(
        logits.float().reshape(b * t, v), labels.reshape(b * t), ignore_index=ignore_index, reduction="none"
    ).view(b, t)
    counted = labels != ignore_index
    count = counted.sum(dim=1)
    total = (ce * counted).sum(dim=1)
    mean = total / count.clamp(min=1)
    return torch.where(count > 0, mean, torch.full_like(mean, float("nan")))


def per_token_loss(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100, shift: bool = True
) -> torch.Tensor:
    """Per-token cross-entropy, in float32, for token-level reweighting.

    The arguments are those of :func:`per_sample_loss`.

    Returns
    -------
    A float32 tensor of shape ``(batch, seq')`` (``seq' = seq - 1`` with
    ``shift``), even for bf16/fp16 logits. Positions whose label is
    ``ignore_index`` hold NaN: they are not losses, and the default mask of
    :func:`weights` and :func:`reweighted_loss` (the finite entries) leaves
    them out, with weight exactly 0 and without counting them as
    non-finite. Their gradient is 0. Pass ``mask=labels[:, 1:] !=
    ignore_index`` explicitly if a non-finite loss at a counted position
    must be reported (``nonfinite="raise"``) instead of dropped.

    Example
    -------
    >>> import torch, goreweight
    >>> logits, labels = torch.zeros(1, 3, 10), torch.tensor([[0, 1, -100]])
    >>> goreweight.per_token_loss(logits, labels)
    tensor([[2.3026,    nan]])
    """
    logits, labels, ignore_index = _ce_inputs(logits, labels, ignore_index, shift)
    b, t, v = logits.shape
    labels = labels.long()
    if t == 0:
        return torch.empty((b, 0), dtype=torch.float32, device=logits.device)
    ce = torch.nn.functional.cross_entropy(
        logits.float().reshape(b * t, v), labels.reshape(b * t), ignore_index=ignore_index, reduction="none"
    ).view(b, t)
    return torch.where(labels != ignore_index, ce, torch.full((), float("nan"), device=ce.device))


def max_weight_bound(m: int, d: float, r: float) -> float:
    """The largest weight any batch of ``m`` finite losses can get at
    temperature ``r`` with score range ``d`` (``delta`` for linupper,
    extremes and dro-kl, 1 for quadratic): ``e^(d/r) / (e^(d/r) + m - 1)``.
    Theorem 1 of the paper wants weights <= 2/m, which softmax guarantees
    only for ``r >= d / ln 2``; see ``cap`` otherwise.

    Example
    -------
    >>> import goreweight
    >>> round(goreweight.max_weight_bound(2, 1.0, 1.0), 4)  # e / (e + 1)
    0.7311
    """
    m = _args.int64("m", m)
    d = _args.real("d", d)
    r = _args.real("r", r)
    s = _lib.slots
    _lib.call("grw_max_weight_bound", m, d, r, s.d_p)
    return float(s.d.value)
