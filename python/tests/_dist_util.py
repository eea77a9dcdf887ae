"""What the multi-process (gloo) tests share: a free port, and running a
worker on every rank with a hang guard, collecting each rank's saved result."""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import time
import traceback
from typing import Any, Callable, Iterator

import pytest
import torch
import torch.multiprocessing as mp


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def reporting_errors(out_dir: str, rank: int) -> Iterator[None]:
    """Wrap a worker's body: an exception is written to out_dir/rank<r>.err
    (its traceback, which run_ranks shows in the failure) and re-raised."""
    try:
        yield
    except BaseException:
        with open(os.path.join(out_dir, f"rank{rank}.err"), "w") as f:
            f.write(traceback.format_exc())
        raise


def run_ranks(worker: Callable[..., None], out: pathlib.Path, world: int, timeout_s: float) -> list[Any]:
    """Spawn worker(rank, port, out_dir) on `world` ranks and return what each
    saved as out/rank<r>.pt. A worker that raises writes out/rank<r>.err (its
    traceback), which fails the test; so does a run longer than timeout_s (a
    hang), after which every worker still alive is killed."""
    ctx = mp.start_processes(worker, args=(free_port(), str(out)), nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout_s
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"the distributed workers did not finish in {timeout_s}s (a hang)")
    except mp.ProcessRaisedException as e:
        errs = "\n".join(p.read_text() for p in out.glob("*.err"))
        pytest.fail(f"a distributed worker failed:\n{errs or e}")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]
