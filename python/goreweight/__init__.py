"""goreweight: dynamic loss-based sample reweighting for language-model
pretraining (Sow et al., ICLR 2025, arXiv 2502.06733), computed by a Go core.

The main entry points::

    import goreweight
    per_sample = goreweight.per_sample_loss(logits, labels)   # (batch,) float32
    loss = goreweight.reweighted_loss(per_sample)             # scalar, weights detached
    loss.backward()

    rw = goreweight.Reweighter("linupper", schedule=goreweight.schedules.linear(100, 1, 10_000))
    loss = rw(per_sample)        # uses r(step), then step += 1
    logger.log(rw.stats)         # flat dict of floats

    w = goreweight.weights(losses, strategy="linupper", r=1.0)   # torch, numpy or Arrow

    tok = goreweight.per_token_loss(logits, labels)           # (batch, seq-1), NaN where ignored
    loss = goreweight.reweighted_loss(tok, "topk", q=0.6)     # token level (Rho-1 selection)
    gb = goreweight.GlobalBatch(rw, first_pass_losses)        # global scope under accumulation
    acc = goreweight.DeferredGlobalBatch(rw)                  # approximate global scope, no first pass

See docs/scope.md for token level, reference losses and global scope.

Errors: bad arguments are TypeError or ValueError naming the argument; what
the Go core refuses is a :class:`GoreweightError` (a ValueError) or one of
its subclasses, chosen by the C ABI's status code (EmptyBatchError,
NonFiniteLossError, InternalError, GoreweightIOError), and an interrupted
trainer raises TrainingInterrupted (a KeyboardInterrupt).

The pure-PyTorch twin used by the tests and benchmarks is not imported by
``import goreweight``: ``from goreweight import torch_reference``.

The Go library is loaded on first use. A process forked after that cannot
call goreweight (it raises RuntimeError): DataLoader workers that call
goreweight need ``multiprocessing_context="spawn"``. See docs/python.md.
"""

from __future__ import annotations

from . import schedules
from ._lib import (
    EmptyBatchError,
    GoreweightError,
    GoreweightIOError,
    InternalError,
    NonFiniteLossError,
    TrainingInterrupted,
    library_path,
)
from ._hidden_loss import per_sample_loss_from_hidden, per_token_loss_from_hidden
from ._lib import strategies as _strategies
from ._lib import version as _version
from ._reweighter import Reweighter
from ._scope import GlobalBatch, global_batch_weights
from ._deferred import DeferredGlobalBatch
from ._weights import max_weight_bound, per_sample_loss, per_token_loss, reweighted_loss, weights

__version__ = "0.1.0"

__all__ = [
    "DeferredGlobalBatch",
    "EmptyBatchError",
    "GlobalBatch",
    "GoreweightError",
    "GoreweightIOError",
    "InternalError",
    "NonFiniteLossError",
    "TrainingInterrupted",
    "Reweighter",
    "global_batch_weights",
    "library_path",
    "library_version",
    "max_weight_bound",
    "per_sample_loss",
    "per_sample_loss_from_hidden",
    "per_token_loss",
    "per_token_loss_from_hidden",
    "reweighted_loss",
    "schedules",
    "strategies",
    "train",
    "weights",
    "__version__",
]


def strategies() -> list[str]:
    """The names of the strategies the Go core knows, sorted.

    Example::

        "linupper" in goreweight.strategies()  # True
    """
    return _strategies()


def library_version() -> str:
    """The version of the Go library in use, e.g. ``"0.1.0 (go1.26.0)"``.

    Example::

        print(goreweight.library_version())
    """
    return _version()
from .train import train  # noqa: E402  (the Go-native GPT trainer, docs/trainer.md)
