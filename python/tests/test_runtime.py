"""The process around the Go runtime: fork guard, threads, memory, the C
program, faults."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch

import goreweight
from goreweight import _lib

REPO = pathlib.Path(__file__).resolve().parents[2]


def _wait(pid: int, timeout: float) -> int:
    """waitpid with a deadline; kills the child and fails on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"forked child {pid} did not finish in {timeout}s (a hang)")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_forked_child_gets_runtime_error_not_a_hang():
    goreweight.weights(torch.rand(8))  # the Go runtime is running in this process
    rw = goreweight.Reweighter()
    x, y = torch.rand(8), np.ones(3, np.float32)  # made before the fork: the child only calls goreweight
    pid = os.fork()
    if pid == 0:  # child: every entry point must raise RuntimeError quickly
        code = 0
        for f in (lambda: goreweight.weights(x),
                  lambda: goreweight.weights(y, strategy="quadratic"),
                  lambda: rw(x),
                  lambda: rw.step,
                  lambda: goreweight.schedules.constant(1.0)):
            try:
                f()
                code = 1
            except RuntimeError as e:
                if "spawn" not in str(e):
                    code = 2
            except BaseException:
                code = 3
        del rw  # the finaliser must not call into Go either
        os._exit(code)
    assert _wait(pid, 60) == 0
    # the parent is unaffected
    assert goreweight.weights(torch.ones(2)).tolist() == [0.5, 0.5]


def test_child_forked_before_loading_may_use_the_library():
    code = textwrap.dedent(
        """
        import os, sys, goreweight, numpy as np
        assert goreweight._lib._api is None  # not loaded yet
        pid = os.fork()
        if pid == 0:
            w = goreweight.weights(np.array([1.0, 1.0], np.float32))
            os._exit(0 if w.tolist() == [0.5, 0.5] else 1)
        _, st = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(st))
        """
    )
    p = subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_two_threads_at_once_give_correct_results():
    rng = np.random.default_rng(0)
    batches = [torch.from_numpy(rng.uniform(0, 5, m).astype(np.float32)) for m in (64, 1000, 20000, 7)]
    cfgs = [("linupper", 0.3, None), ("quadratic", 1.0, 2.0)]
    want = {(i, j): goreweight.weights(b, s, r, cap=c) for i, b in enumerate(batches) for j, (s, r, c) in enumerate(cfgs)}
    errors: list[str] = []
    start = threading.Barrier(2)

    def work(seed: int) -> None:
        start.wait()
        for k in range(300):
            i, j = (k + seed) % len(batches), (k * 7 + seed) % len(cfgs)
            s, r, c = cfgs[j]
            got = goreweight.weights(batches[i], s, r, cap=c)
            if not torch.equal(got, want[(i, j)]):
                errors.append(f"thread {seed}, batch {i}, config {j}")
                return
        try:
            goreweight.weights(torch.tensor([1.0, float("nan")]), nonfinite="raise")
            errors.append("no error")
        except goreweight.GoreweightError as e:
            if "index 1" not in str(e):
                errors.append(f"wrong error message in thread {seed}: {e}")

    threads = [threading.Thread(target=work, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a thread hung"
    assert not errors, errors


def test_go_calls_release_the_gil():
    # While one thread is inside Go on a large batch, another Python thread runs.
    x = torch.rand(2_000_000)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        time.sleep(0.01)
        for _ in range(3):
            t0 = time.perf_counter()
            goreweight.weights(x, "linupper", 0.5)
            t1 = time.perf_counter()
            if len([u for u in ticks if t0 < u < t1]) > 0:
                break
        else:
            pytest.fail("no Python thread ran while Go was computing: the GIL was held")
    finally:
        stop.set()
        t.join()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux) to read the resident set size")
def test_resident_memory_is_flat_over_100k_calls():
    x = torch.rand(256)
    a = np.random.default_rng(0).uniform(0, 3, 100).astype(np.float32)
    bad = torch.tensor([1.0, float("nan")])
    rw = goreweight.Reweighter()

    def mix(k: int) -> None:
        goreweight.weights(x, "linupper", 0.5)
        if k % 2 == 0:  # a leaked stats string would be ~500 bytes a call
            goreweight.weights(a, "quadratic", 1.0, return_stats=True)
        if k % 5 == 0:
            rw(x)
            _ = rw.stats
        if k % 20 == 0:
            try:
                goreweight.weights(bad, nonfinite="raise")
            except goreweight.GoreweightError:
                pass

    for k in range(20_000):  # warm up: caches, Go heap, allocator pools
        mix(k)
    before = _rss_bytes()
    for k in range(100_000):
        mix(k)
    grown = _rss_bytes() - before
    assert grown < 8 * 2**20, f"resident memory grew by {grown / 2**20:.1f} MiB over 10^5 calls"


def test_a_bad_pointer_is_an_error_not_a_crash():
    # Calling the library directly with an invalid (non-NULL) pointer: Go's
    # memory fault is recovered into GRW_EINTERNAL with a message.
    api = _lib.api()
    s = _lib.slots
    h = _lib.new_handle("grw_weigher_new", "{}")
    try:
        out = torch.empty(4)
        st = api.grw_weigher_weights(h, 1.0, 16, None, 4, out.data_ptr(), None, None, s.err_p)
        msg = _lib.take_string(s.err.value)
        s.err.value = None
        assert st == 2 and "internal error" in msg
        # NULL and negative lengths are ordinary errors
        st = api.grw_weigher_weights(h, 1.0, None, None, 4, out.data_ptr(), None, None, s.err_p)
        assert st == 1 and "losses is NULL" in _lib.take_string(s.err.value)
        st = api.grw_weigher_weights(h, 1.0, out.data_ptr(), None, -3, out.data_ptr(), None, None, s.err_p)
        assert st == 1 and ">= 1" in _lib.take_string(s.err.value)
        st = api.grw_weigher_weights(h, 1.0, out.data_ptr(), None, 4, out.data_ptr(), None, None, s.err_p)
        assert st == 1 and "overlaps" in _lib.take_string(s.err.value)
        st = api.grw_weigher_weights(h + 10**9, 1.0, out.data_ptr(), None, 4, out.data_ptr(), None, None, s.err_p)
        assert st == 1 and "unknown or closed" in _lib.take_string(s.err.value)
        st = api.grw_weigher_new(b'{"strategy": "linupper", "deltaa": 1}', s.h_p, s.err_p)
        assert st == 1 and "deltaa" in _lib.take_string(s.err.value)
        s.err.value = None
    finally:
        _lib.close_handle(h)
    assert goreweight.weights(torch.ones(2)).tolist() == [0.5, 0.5]


def test_the_c_example_program(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.fail("no C compiler (cc, gcc or clang) on PATH: the C ABI example cannot be checked")
    lib = pathlib.Path(goreweight.library_path())
    header = lib.parent / "libgoreweight.h"
    assert header.exists(), f"the installed package lacks the C header {header}"
    src = REPO / "capi" / "example" / "example.c"
    exe = tmp_path / "example"
    subprocess.run(
        [cc, "-o", str(exe), str(src), f"-I{lib.parent}", str(lib), f"-Wl,-rpath,{lib.parent}", "-lm"],
        check=True, timeout=120,
    )
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = dict(line.split(" ", 1) for line in p.stdout.strip().splitlines() if " " in line)
    assert out["version"].startswith(goreweight.__version__)
    w = [float(v) for v in out["linupper"].split()]
    np.testing.assert_allclose(w, goreweight.weights(np.array([1, 2, 3, 4, np.nan], np.float32)), atol=1e-6)
    assert out["nonfinite"] == "1" and out["arrow_equal"] == "1" and out["arrow_released"] == "1"
    assert out["packed_equal"] == "1" and out["packed_nonfinite"] == "1"
    assert out["bad_strategy_status"] == "1" and "unknown strategy" in out["bad_strategy_error"]
    assert out["closed_handle_status"] == "1" and "unknown or closed" in out["closed_handle_error"]
    assert out["step0"] == out["step1"] == "0.250000 0.250000 0.250000 0.250000"
    assert out["restored_step"] == "3" and out["stats_has_step"] == "1"
    assert float(out["schedule_r"]) == pytest.approx(50.5) and out["warmup_r_is_inf"] == "1"
    assert p.stdout.strip().endswith("ok")


def test_goreweight_train_console_command():
    exe = shutil.which("goreweight-train")
    assert exe, "the goreweight-train console command is not installed"
    binary = pathlib.Path(goreweight.__file__).parent / "bin" / "goreweight-train"
    p = subprocess.run([exe, "-h"], capture_output=True, text=True, timeout=120)
    if binary.exists():
        assert p.returncode == 0, p.stderr
        assert "Usage" in p.stdout + p.stderr
    else:
        assert not (REPO / "goreweight" / "cmd" / "goreweight-train").is_dir(), (
            f"the repository has the trainer but the installation lacks {binary} "
            "(installed with GOREWEIGHT_SKIP_TRAIN=1?)"
        )
        assert p.returncode == 2 and "not built" in p.stderr
