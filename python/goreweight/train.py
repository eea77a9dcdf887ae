"""``goreweight.train``: the Go-native GPT trainer, called in-process.

It runs the same trainer as the ``goreweight-train`` command (package
``goreweight/trainer/train`` of the Go module) through the shared library's
``grw_train`` entry point, so a notebook or script can run the paper's
comparison without a GPU and get the summary back as a dict::

    import goreweight
    summary = goreweight.train({"steps": 300, "compare": ["uniform", "linupper"], "seeds": [1, 2, 3]})
    for name, agg in summary["strategies"].items():
        print(name, agg["val_loss_mean"], agg["delta_mean"], agg["delta_ci95"])

The keys are those of the command's flags, with ``_`` (or ``-``):
``data``, ``tokenizer``, ``strategy``, ``compare``, ``schedule``,
``r_start``, ``r_end``, ``r_steps``, ``warmup_r``, ``cap``, ``steps``,
``batch``, ``seq``, ``layers``, ``heads``, ``width``, ``lr``, ``seed``,
``seeds``, ``preset``, ``out``, ``resume``, ``noise``, ``eval_every``,
``ckpt_every``, ``threads``, ``quiet``, ``accum`` (micro-batches per
optimiser step), ``scope`` (``"micro"``, ``"global"`` or ``"deferred"``: weights of each
micro-batch, of the whole accumulated step, or of the whole step
approximately without the extra forward), ``granularity``
(``"sequence"`` or ``"token"``), ``reference`` (a run directory whose model
scores the excess loss) and more (see docs/trainer.md); keys
left out take the command's defaults, so ``goreweight.train()`` runs the
default comparison (uniform vs linupper vs quadratic, seeds 1, 2, 3) on the
built-in corpus (under 10 minutes on two cores). ``seed`` without ``seeds``
trains that one seed.
"""

from __future__ import annotations

import ctypes
import json
from typing import Any, Callable, Mapping, Optional

from . import _lib

__all__ = ["train"]


def _entry() -> Callable[..., int]:
    """The library's ``grw_train``, bound with its C signature."""
    api = _lib.api()
    f = getattr(api, "grw_train", None)
    if f is None:
        try:
            f = api.dll.grw_train
        except AttributeError:
            raise _lib.GoreweightError(
                f"goreweight: the Go library at {_lib.library_path()} has no grw_train (it predates "
                "the trainer); reinstall the package with `pip install .` from an up-to-date checkout"
            ) from None
        f.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
        f.restype = ctypes.c_int
        setattr(api, "grw_train", f)
    return f


# C status codes of grw_train that train() maps itself until _lib maps every
# status to its class (see the error contract in capi/capi.go).
_EINTR = 5  # interrupted (SIGINT); a checkpoint was written
_EIO = 6  # a file could not be read or written, or is corrupt


def _train_error(status: int, msg: str) -> BaseException:
    """The exception for a failed grw_train call, chosen by its status code
    (never by the message text): _lib's mapping when it has one, else
    KeyboardInterrupt for an interruption, OSError-compatible
    GoreweightError for I/O, GoreweightError otherwise."""
    mapper = getattr(_lib, "error_for_status", None)
    if callable(mapper):
        err: BaseException = mapper(status, msg)
        return err
    if status == _EINTR:
        return KeyboardInterrupt(msg)
    return _lib.GoreweightError(msg)


def train(config: Optional[Mapping[str, Any]] = None, /, **options: Any) -> dict[str, Any]:
    """Train one small GPT per strategy in Go, with dynamic loss-based sample
    reweighting in the loop, and return the run's summary.

    Args:
        config: trainer settings, keyed like the ``goreweight-train`` flags
            (``"r_start"`` or ``"r-start"``); ``compare`` may be a list of
            strategy names or a comma-separated string. ``{"resume": DIR}``
            continues an interrupted run.
        **options: more settings, overriding ``config``.

    Returns:
        The summary (also written to ``OUT/summary.json``): ``out`` (the run
        directory), ``baseline``, ``domains``, ``seeds``, ``runs`` (one per
        strategy and seed: ``strategy``, ``seed``, ``val_loss`` averaged over
        domains, ``val`` per domain, ``val_se``, ``delta_vs_baseline`` (to
        the same seed's baseline), ``delta_se``, ``step_to_baseline``,
        ``train_loss``, ``max_wm``, ``tokens_per_s``, ``train_s``,
        ``wall_s``), ``strategies`` (per strategy name: ``n_seeds``,
        ``val_loss_mean``, ``val_loss_sd``, ``delta_mean``, ``delta_sd``,
        ``delta_ci95`` as ``[low, high]``, ``seeds_better``, ``max_wm`` and
        the same per domain under ``domains``), ``eval_noise``, ``files``,
        ``data``, ``params``, ``backend``, ``threads``, ``wall_s`` and the
        full ``config``. Values that are not finite numbers, and the sd and
        interval of a single seed, are ``None``.

    With ``tensorboard=True`` the run's metrics are converted into
    TensorBoard event files under ``OUT/tensorboard`` once the run has
    finished (:func:`goreweight.tensorboard.write_events`; it needs the
    ``tensorboard`` package). For an interrupted run, or live logging, use
    ``goreweight-train --tensorboard`` or call ``write_events(OUT)``.

    Progress is printed on the process's standard error (in Jupyter: the
    server's console) unless ``quiet=True``.

    Raises:
        GoreweightError: an invalid setting (the message names the key), data
            that cannot be read, or a run that fails (chosen by the library's
            status code, never by the message).
        KeyboardInterrupt: Ctrl-C (SIGINT) during the run (status
            GRW_EINTR); training stops after the current step and writes a
            checkpoint first, and the message names the directory to pass
            as ``resume``.
        RuntimeError: called in a process forked after the library was
            loaded.
    """
    cfg: dict[str, Any] = dict(config or {})
    cfg.update(options)
    tensorboard = cfg.pop("tensorboard", False)
    if not isinstance(tensorboard, bool):
        raise _lib.GoreweightError(f"goreweight: train option tensorboard must be True or False, not {tensorboard!r}")
    if tensorboard:
        from .tensorboard import _summary_writer
        _summary_writer()  # fail before training when the package is missing
    try:
        payload = json.dumps(cfg, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise _lib.GoreweightError(f"goreweight: train config is not JSON-serialisable: {e}") from None
    f = _entry()
    s = _lib.slots
    status = f(payload.encode("utf-8"), s.out_p, s.err_p)
    if status != 0:
        msg = _lib.take_string(s.err.value)
        s.err.value = None
        raise _train_error(status, msg or f"goreweight: grw_train failed with status {status}")
    out = s.out.value
    s.out.value = None
    result: dict[str, Any] = json.loads(_lib.take_string(out))
    if tensorboard:
        from .tensorboard import write_events
        write_events(result["out"])
    return result
