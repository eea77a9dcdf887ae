"""The ``goreweight-train`` console command: runs the Go trainer binary that
``pip install`` built into the package (goreweight/bin/goreweight-train)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from . import _blas

#: Seconds between the live TensorBoard conversions of --tensorboard.
LIVE_INTERVAL_S = 10.0


def binary_path() -> str:
    """The path of the bundled trainer binary."""
    name = "goreweight-train.exe" if sys.platform == "win32" else "goreweight-train"
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", name)


def main() -> None:
    """Run the trainer with the arguments given: replace this process by
    it, or, with ``--tensorboard``, run it as a child and convert its
    metrics to TensorBoard events as it goes; ``goreweight-train
    tensorboard RUN_DIR [--logdir DIR]`` converts a finished run."""
    args = sys.argv[1:]
    if args and args[0] == "tensorboard":
        raise SystemExit(_posthoc(args[1:]))
    path = _checked_binary()
    if not (args and args[0] == "export"):
        try:
            tb, rest = _tensorboard_flag(args)
        except ValueError as e:
            sys.stderr.write(f"goreweight-train: {e}\n")
            raise SystemExit(2)
        if any(a in ("-h", "--help", "-help") for a in rest):
            sys.stderr.write(_HELP_NOTE)
        elif tb:
            raise SystemExit(_run_with_tensorboard(path, rest))
        args = rest
    os.execv(path, [path, *args])


_HELP_NOTE = (
    "goreweight-train (the Python console command) also takes:\n"
    "  --tensorboard\tconvert the metrics into TensorBoard event files under RUN/tensorboard while training\n"
    "  goreweight-train tensorboard RUN_DIR [--logdir DIR]\tconvert a run after the fact\n\n"
)


def _tensorboard_flag(args: List[str]) -> Tuple[bool, List[str]]:
    """Whether --tensorboard (or -tensorboard, --tensorboard=BOOL) is in
    args, and args without it; a bad BOOL is a ValueError."""
    on, rest = False, []
    for i, a in enumerate(args):
        if a == "--":
            rest += args[i:]
            break
        name, eq, value = a.partition("=")
        if name not in _TB_FLAGS:
            rest.append(a)
            continue
        if not eq:
            on = True
        elif value.lower() in ("1", "t", "true"):
            on = True
        elif value.lower() in ("0", "f", "false"):
            on = False
        else:
            raise ValueError(f"--tensorboard={value}: not a boolean (true or false)")
    return on, rest


def _checked_binary() -> str:
    """The trainer binary's path; exits with status 2 and a message when it
    or its BLAS is missing."""
    path = binary_path()
    if not os.path.exists(path):
        sys.stderr.write(
            "goreweight-train: the trainer binary was not built into this installation "
            f"({path} is missing). It is built by `pip install .` when the repository has "
            "goreweight/trainer/cmd/goreweight-train; reinstall from an up-to-date checkout with Go on PATH.\n"
        )
        raise SystemExit(2)
    missing = _missing_blas()
    if missing:
        sys.stderr.write(f"goreweight-train: {missing}\n")
        raise SystemExit(2)
    return path


_TB_FLAGS = ("--tensorboard", "-tensorboard")


def _flag_value(args: List[str], name: str) -> Optional[str]:
    """The last value of the Go flag --name (or -name) in args, in either
    the "--name value" or the "--name=value" form."""
    value = None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        for dash in ("--", "-"):
            if a == dash + name and i + 1 < len(args):
                value = args[i + 1]
                i += 1
                break
            if a.startswith(dash + name + "="):
                value = a[len(dash + name) + 1:]
                break
        i += 1
    return value


def _run_dir(args: List[str]) -> Tuple[str, List[str]]:
    """The run directory the trainer will write for args, and the arguments
    to run it with: --resume, else --out, else the --config file's
    "resume" or "out", else an explicit --out runs/<YYYYMMDD-HHMMSS> (the
    trainer's default, local time) added to the arguments."""
    for name in ("resume", "out"):
        v = _flag_value(args, name)
        if v:
            return v, args
    cfg = _flag_value(args, "config")
    if cfg:
        try:
            with open(cfg, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = None  # the trainer reports the bad file itself
        if isinstance(data, dict):
            for name in ("resume", "out"):
                v = data.get(name)
                if isinstance(v, str) and v:
                    return v, args
    out = os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    return out, [*args, "--out", out]


def _convert(run_dir: str, quiet: bool) -> None:
    """Write run_dir/tensorboard from the run's metrics; a failure is
    reported, never fatal to the training."""
    from .tensorboard import write_events
    try:
        write_events(run_dir)
    except Exception as e:  # noqa: BLE001 - logged, training goes on
        if not quiet:
            sys.stderr.write(f"goreweight-train: tensorboard: {e}\n")


def _run_with_tensorboard(path: str, args: List[str]) -> int:
    """Run the trainer as a child with args, converting its metrics into
    RUN/tensorboard every LIVE_INTERVAL_S seconds (the environment variable
    GOREWEIGHT_TENSORBOARD_INTERVAL overrides it), when they changed, and
    once at the end; SIGINT, SIGTERM and SIGHUP are forwarded, so Ctrl-C
    still stops after a step with a checkpoint. Returns the child's exit
    status (128 + N when a signal N killed it)."""
    from . import tensorboard as tbm
    try:
        tbm._summary_writer()
    except ImportError as e:
        sys.stderr.write(f"goreweight-train: --tensorboard: {e}\n")
        return 2
    interval = LIVE_INTERVAL_S
    env = os.environ.get("GOREWEIGHT_TENSORBOARD_INTERVAL")
    if env:
        try:
            interval = float(env)
        except ValueError:
            interval = math.nan
        if not (math.isfinite(interval) and interval > 0):
            sys.stderr.write(f"goreweight-train: GOREWEIGHT_TENSORBOARD_INTERVAL={env!r}: not a positive number of seconds\n")
            return 2
    run_dir, args = _run_dir(args)
    quiet = any(a in ("--quiet", "-quiet", "--quiet=true", "-quiet=true") for a in args)
    # The child gets its own process group, so a Ctrl-C at the terminal
    # reaches it once, through this process, not twice (a second signal
    # aborts the trainer without a checkpoint).
    kw: Dict[str, Any] = {}
    if os.name == "posix":
        if sys.version_info >= (3, 11):
            kw["process_group"] = 0
        else:
            kw["preexec_fn"] = os.setpgrp
    child = subprocess.Popen([path, *args], **kw)

    def forward(sig: int, _frame: object) -> None:
        try:
            child.send_signal(sig)
        except OSError:
            pass

    sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, forward) for s in sigs}
    try:
        state: Tuple[Tuple[str, int, int], ...] = ()
        while True:
            try:
                rc = child.wait(timeout=interval)
                break
            except subprocess.TimeoutExpired:
                pass
            now = tbm.metrics_state(run_dir) if os.path.isdir(run_dir) else ()
            if now and now != state:
                state = now
                _convert(run_dir, quiet)
        if os.path.isdir(run_dir) and tbm.metrics_state(run_dir):
            _convert(run_dir, quiet)
            if not quiet:
                sys.stderr.write(f"goreweight-train: TensorBoard events in {os.path.join(run_dir, tbm.TENSORBOARD_DIR)}\n")
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return rc if rc >= 0 else 128 - rc


def _posthoc(args: List[str]) -> int:
    """goreweight-train tensorboard RUN_DIR [--logdir DIR]."""
    import argparse

    p = argparse.ArgumentParser(
        prog="goreweight-train tensorboard",
        description="Convert the metrics.jsonl files of a goreweight-train run into TensorBoard event files "
                    "(one run per seed and strategy); replaces the previous conversion.")
    p.add_argument("run_dir", help="the run directory (the trainer's --out)")
    p.add_argument("--logdir", default=None, help="where the events go (default RUN_DIR/tensorboard)")
    ns = p.parse_args(args)
    from .tensorboard import write_events
    try:
        files = write_events(ns.run_dir, ns.logdir)
    except (ImportError, ValueError, OSError) as e:
        sys.stderr.write(f"goreweight-train tensorboard: {e}\n")
        return 2
    for f in files:
        print(f)
    return 0


def _missing_blas() -> str:
    """Why the binary's BLAS cannot be loaded, or "" when it can (or was not
    linked). The binary finds libscipy_openblas through its rpath,
    ../../scipy_openblas32/lib, the scipy-openblas32 package pip installs
    next to goreweight. When that package sits elsewhere on Python's path (a
    --system-site-packages venv, --user, --target), its directory is put on
    the loader's search path for the binary; when it is nowhere, the message
    says what to install (the loader's own would only name the file)."""
    if not _blas.built_with_scipy_openblas() or os.path.isdir(_blas.rpath_dir()) and _blas.lib_dir() == _blas.rpath_dir():
        return ""
    d = _blas.lib_dir()
    if d is None:
        return (f"the trainer was built against the scipy-openblas32 package, and libscipy_openblas is "
                f"neither in {_blas.rpath_dir()} nor in an importable scipy_openblas32 package "
                "(installed with --no-deps?). Install it next to goreweight: pip install scipy-openblas32")
    var = "DYLD_LIBRARY_PATH" if sys.platform == "darwin" else "LD_LIBRARY_PATH"
    os.environ[var] = d + (os.pathsep + os.environ[var] if os.environ.get(var) else "")
    return ""


if __name__ == "__main__":
    main()
