"""Helpers for the integration tests: a free TCP port, a subprocess that can never hang."""

from __future__ import annotations

import os
import signal
import socket
import subprocess


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for torchrun's --master_port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_bounded(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """Run cmd in its own process group; return its output (stdout + stderr).

    Fails with the output when it exits non-zero; kills the whole group (torchrun and its
    workers) and fails when it runs longer than timeout seconds.
    """
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=full_env, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        raise AssertionError(f"timed out after {timeout}s: {' '.join(cmd)}\n{out[-4000:]}") from None
    if p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {' '.join(cmd)}\n{out[-4000:]}")
    return out
