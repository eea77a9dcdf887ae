"""The stateless API: weights, reweighted_loss, per_sample_loss."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, Optional, Protocol, Union, overload

import numpy as np
import torch

from . import _args, _dist, _exchange, _lib
from ._exchange import Target

if TYPE_CHECKING:
    import pyarrow

__all__ = ["weights", "reweighted_loss", "per_sample_loss", "max_weight_bound", "ArrowArrayLike", "ArrowStreamLike"]


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
    return_stats: bool = False,
) -> Any:
    """The weights of one batch of per-sample losses, computed by the Go core.

    Parameters
    ----------
    losses:
        1-D, non-empty per-sample losses: a ``torch.Tensor`` (any floating
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
    if isinstance(losses, torch.Tensor):
        n = _exchange.check_losses_tensor(losses, "losses")
        dom = None if domains is None else _exchange.domains_array(domains, n)
        out, _, sp = _exchange.torch_weights(w, r, losses, n, dom, return_stats)
    elif isinstance(losses, np.ndarray):
        out, _, sp = _exchange.numpy_weights(w, r, losses, domains, return_stats)
    elif _exchange.is_arrow(losses):
        out, _, sp = _exchange.arrow_weights(w, r, losses, domains, return_stats)
    else:
        raise TypeError(
            "goreweight: losses must be a torch.Tensor, a numpy.ndarray or an Arrow array, got "
            f"{type(losses).__name__} (wrap a list with numpy.asarray)"
        )
    if return_stats:
        return out, _exchange.stats_dict(sp)
    return out


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
    target: Target, r: float, per_sample: Any, domains: Any, group: Any, want_stats: bool
) -> tuple[torch.Tensor, torch.Tensor, int, int, Optional[int]]:
    """Computes the weights of the global batch (gathered over the group when
    torch.distributed is initialised) and returns (local per-sample losses,
    this rank's slice of the weights, world size, global non-finite count,
    stats pointer)."""
    if _dist.active(group):
        problem = _local_problem(per_sample)
        dom_t = None
        if problem is None and domains is not None:
            try:
                d = _exchange.domains_array(domains, per_sample.numel())
                assert d is not None  # domains is not None
                dom_t = torch.from_numpy(d.astype(np.int64)).to(per_sample.device)
            except (TypeError, ValueError) as e:
                problem = e
        device = torch.device("cpu")
        if isinstance(per_sample, torch.Tensor) and per_sample.device.type != "meta":
            device = per_sample.device
        local = per_sample.detach().float() if problem is None else None
        glob, gdom, lo, hi, world = _dist.gather(local, dom_t, group, problem, device)
        dom = None if gdom is None else gdom.cpu().numpy().astype(np.int32)
        w, bad, sp = _exchange.torch_weights(target, r, glob, glob.numel(), dom, want_stats)
        return w[lo:hi], per_sample, world, bad, sp
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
) -> torch.Tensor:
    """The reweighted training loss ``Σ w_i · l_i`` of per-sample losses, as a
    float32 scalar tensor; the weights are constants for autograd, so the
    gradient is ``Σ w_i · ∇l_i``.

    The arguments are those of :func:`weights`; ``per_sample`` must be a 1-D
    tensor (any floating dtype, any device) that may require grad.

    Non-finite losses get weight 0 under ``nonfinite="zero"`` and are masked
    out, so the loss and its gradient stay finite.

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
    wl, l, world, bad, _ = global_weights(w, r, per_sample, domains, group, False)
    return combine(wl, l, world, bad)


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
