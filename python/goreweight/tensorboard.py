"""TensorBoard event files from goreweight-train's metrics.jsonl.

The Go trainer logs one JSON record per logged step to ``metrics.jsonl``
(``RUN/metrics.jsonl``, or ``RUN/seed-<n>/metrics.jsonl`` with several
seeds; every strategy of a seed in the same file). :func:`write_events`
converts every such file under a run directory into TensorBoard event
files, one TensorBoard run per (seed, strategy)::

    from goreweight.tensorboard import write_events
    write_events("runs/20250101-120000")   # -> runs/20250101-120000/tensorboard/
    # tensorboard --logdir runs/20250101-120000/tensorboard

The same conversion runs live with ``goreweight-train --tensorboard ...``
and after the fact with ``goreweight-train tensorboard RUN_DIR``.

The events are written by ``torch.utils.tensorboard.SummaryWriter`` (torch is
already a dependency; it needs the ``tensorboard`` package, which is what
views the logs anyway: ``pip install goreweight[tensorboard]``).

Scalars (tag: record field): ``train/loss`` (loss), ``train/loss_weighted``,
``train/lr``, ``train/grad_norm``, ``train/tokens``,
``train/domain_loss/<domain>``, ``reweight/r``, ``reweight/uniform`` (0 or
1), ``reweight/max_wm``, ``reweight/min_wm``, ``reweight/ess``,
``reweight/ess_frac``, ``reweight/entropy``, ``reweight/capped``,
``reweight/nonfinite``, ``reweight/domain_wm/<domain>``, ``val/loss``
(val_loss), ``val/<domain>`` (val), ``perf/tokens_per_s``,
``perf/elapsed_s``; the x axis is the record's ``step``. Values that are not
finite numbers (null in the JSON: the temperature during the uniform
warm-up, the training fields of step 0) are left out, never written as inf
or NaN.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ._lib import GoreweightError, GoreweightIOError

__all__ = ["write_events", "scalars", "METRICS_NAME", "TENSORBOARD_DIR"]

#: The trainer's metrics file name.
METRICS_NAME = "metrics.jsonl"
#: The default log directory under a run directory.
TENSORBOARD_DIR = "tensorboard"

# (record field, tag) of the plain numeric fields.
_FIELDS: Tuple[Tuple[str, str], ...] = (
    ("loss", "train/loss"),
    ("loss_weighted", "train/loss_weighted"),
    ("lr", "train/lr"),
    ("grad_norm", "train/grad_norm"),
    ("tokens", "train/tokens"),
    ("r", "reweight/r"),
    ("uniform", "reweight/uniform"),
    ("max_wm", "reweight/max_wm"),
    ("min_wm", "reweight/min_wm"),
    ("ess", "reweight/ess"),
    ("ess_frac", "reweight/ess_frac"),
    ("entropy", "reweight/entropy"),
    ("capped", "reweight/capped"),
    ("nonfinite", "reweight/nonfinite"),
    ("range_lo", "reweight/range_lo"),  # --scope deferred only
    ("range_hi", "reweight/range_hi"),
    ("clipped_frac", "reweight/clipped_frac"),
    ("val_loss", "val/loss"),
    ("tokens_per_s", "perf/tokens_per_s"),
    ("elapsed_s", "perf/elapsed_s"),
)
# (record field, tag prefix) of the per-domain maps.
_MAPS: Tuple[Tuple[str, str], ...] = (
    ("domain_loss", "train/domain_loss/"),
    ("domain_wm", "reweight/domain_wm/"),
    ("val", "val/"),
)


def _finite(v: Any) -> Optional[float]:
    """v as a float when it is a finite number (bools count as 0/1), else None."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def scalars(record: Dict[str, Any]) -> Dict[str, float]:
    """The scalars of one metrics record, tag -> value, finite values only."""
    out: Dict[str, float] = {}
    for field, tag in _FIELDS:
        v = _finite(record.get(field))
        if v is not None:
            out[tag] = v
    for field, prefix in _MAPS:
        m = record.get(field)
        if isinstance(m, dict):
            for name in sorted(m):
                v = _finite(m[name])
                if v is not None:
                    out[prefix + str(name)] = v
    return out


def _metrics_files(run_dir: str, skip: str) -> Iterator[str]:
    """Every metrics.jsonl under run_dir (the log directory skip, hidden
    directories and checkpoints left out), in sorted order."""
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(".") and os.path.abspath(os.path.join(root, d)) != skip)
        if METRICS_NAME in files:
            yield os.path.join(root, METRICS_NAME)


def _read(path: str) -> List[Dict[str, Any]]:
    """The records of one metrics.jsonl."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise GoreweightIOError(f"goreweight: reading {path}: {e}") from e
    recs: List[Dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise GoreweightError(f"goreweight: {path} line {n}: not a JSON record ({e})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
            raise GoreweightError(f"goreweight: {path} line {n}: not a metrics record (no integer \"step\")")
        recs.append(rec)
    return recs


def _runs(run_dir: str, skip: str) -> Dict[str, Dict[int, Dict[str, Any]]]:
    """TensorBoard run name (the metrics file's directory relative to
    run_dir, then the strategy) -> step -> record; a step logged twice keeps
    its last record."""
    runs: Dict[str, Dict[int, Dict[str, Any]]] = {}
    for path in _metrics_files(run_dir, skip):
        rel = os.path.relpath(os.path.dirname(path), run_dir)
        for rec in _read(path):
            strategy = str(rec.get("strategy") or "run")
            name = strategy if rel == "." else os.path.join(rel, strategy)
            runs.setdefault(name, {})[rec["step"]] = rec
    return runs


def _summary_writer() -> Any:
    """torch.utils.tensorboard.SummaryWriter, or a clear error naming the
    missing package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError(
            "goreweight: writing TensorBoard events needs the tensorboard package "
            f"(pip install 'goreweight[tensorboard]' or pip install tensorboard): {e}") from e
    return SummaryWriter


def write_events(run_dir: str, logdir: Optional[str] = None) -> List[str]:
    """Convert every metrics.jsonl under a goreweight-train run directory
    into TensorBoard event files.

    Args:
        run_dir: the run directory (the trainer's ``--out``).
        logdir: where the events go; default ``run_dir/tensorboard``. Its
            previous content is replaced: each call writes the whole history
            into a fresh directory and swaps it in, so converting again after
            a resume gives each step once.

    Returns:
        The event files written, one per (seed, strategy), under logdir: for
        a single seed ``logdir/<strategy>/events...``, with several seeds
        ``logdir/seed-<n>/<strategy>/events...``.

    Raises:
        GoreweightError: run_dir is not a directory, holds no metrics.jsonl,
            or a line of one is not a metrics record (the message names the
            file and line).
        GoreweightIOError: a file could not be read or written.
        ImportError: the tensorboard package is not installed.
    """
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise GoreweightError(f"goreweight: {run_dir!r} is not a run directory")
    logdir = os.path.abspath(os.fspath(logdir) if logdir is not None else os.path.join(run_dir, TENSORBOARD_DIR))
    runs = _runs(run_dir, logdir)
    if not runs:
        raise GoreweightError(f"goreweight: no {METRICS_NAME} under {run_dir!r} (not a goreweight-train run directory?)")
    writer_cls = _summary_writer()
    parent = os.path.dirname(logdir)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(logdir) + ".new-", dir=parent)
    except OSError as e:
        raise GoreweightIOError(f"goreweight: creating {logdir}: {e}") from e
    try:
        for name in sorted(runs):
            w = writer_cls(log_dir=os.path.join(tmp, name))
            try:
                for step in sorted(runs[name]):
                    for tag, v in scalars(runs[name][step]).items():
                        w.add_scalar(tag, v, global_step=step)
            finally:
                w.close()
        _swap(tmp, logdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    written: List[str] = []
    for root, _, files in os.walk(logdir):
        written += [os.path.join(root, f) for f in files if f.startswith("events.out.tfevents.")]
    return sorted(written)


def _swap(new: str, logdir: str) -> None:
    """Replace logdir by the directory new: a rename when logdir does not
    exist, else two renames (the old one aside, then new into place) and the
    old one removed. A reader sees either the old or the new events, never
    a mixture."""
    try:
        if not os.path.exists(logdir):
            os.rename(new, logdir)
            return
        old = tempfile.mkdtemp(prefix="." + os.path.basename(logdir) + ".old-", dir=os.path.dirname(logdir))
        os.rmdir(old)
        os.rename(logdir, old)
        os.rename(new, logdir)
    except OSError as e:
        raise GoreweightIOError(f"goreweight: replacing {logdir}: {e}") from e
    shutil.rmtree(old, ignore_errors=True)


def metrics_state(run_dir: str) -> Tuple[Tuple[str, int, int], ...]:
    """(path, size, mtime_ns) of every metrics.jsonl under run_dir: the live
    logger converts again only when this changes."""
    skip = os.path.abspath(os.path.join(run_dir, TENSORBOARD_DIR))
    state = []
    for path in _metrics_files(run_dir, skip):
        try:
            st = os.stat(path)
        except OSError:
            continue
        state.append((path, st.st_size, st.st_mtime_ns))
    return tuple(state)
