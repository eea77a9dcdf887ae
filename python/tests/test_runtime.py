"""The process around the Go runtime: fork guard, threads, memory, the C
program, faults."""

from __future__ import annotations

import ctypes
import os
import pathlib
import re
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
    # ctypes releases the GIL around a foreign call exactly when the function
    # comes from a CDLL (not a PyDLL) and does not carry FUNCFLAG_PYTHONAPI.
    # That is checked structurally, for every bound export, instead of timing
    # a ticker thread against a Go call (which depended on the scheduler).
    api = _lib.api()
    assert type(api.dll) is ctypes.CDLL and not isinstance(api.dll, ctypes.PyDLL)
    for name in _lib._PROTOTYPES:
        f = getattr(api, name)
        if isinstance(f, _lib._Missing):
            continue
        assert not f._flags_ & ctypes._FUNCFLAG_PYTHONAPI, f"{name} would hold the GIL"


@pytest.mark.parametrize(
    "status, cls, also",
    [
        (1, goreweight.GoreweightError, ValueError),
        (2, goreweight.InternalError, RuntimeError),
        (3, goreweight.EmptyBatchError, ValueError),
        (4, goreweight.NonFiniteLossError, ValueError),
        (5, goreweight.TrainingInterrupted, KeyboardInterrupt),
        (6, goreweight.GoreweightIOError, OSError),
        (99, goreweight.GoreweightError, ValueError),  # a code from a newer library
    ],
)
def test_each_status_code_has_its_class(status, cls, also):
    e = _lib.error_for(status, "goreweight: the message")
    assert type(e) is cls and isinstance(e, also) and e.status == status
    assert str(e) == "goreweight: the message"
    if status != 5:
        assert isinstance(e, goreweight.GoreweightError)
    assert "status 7" in str(_lib.error_for(7, ""))


def test_go_errors_carry_their_status_and_class():
    with pytest.raises(goreweight.GoreweightError) as e:
        goreweight.weights(np.array([1.0, np.nan]), nonfinite="raise")
    assert e.value.status in (1, 4)  # 4 (NonFiniteLossError) once the core reports it
    assert (e.value.status == 4) == isinstance(e.value, goreweight.NonFiniteLossError)
    with pytest.raises(goreweight.GoreweightError) as e:
        goreweight.weights(np.zeros(0))
    assert e.value.status in (1, 3)
    assert (e.value.status == 3) == isinstance(e.value, goreweight.EmptyBatchError)


def test_every_export_has_one_prototype():
    # The table in _lib.py is the one place a C signature is written: it must
    # name exactly the exports of capi/.
    exports = set()
    for f in (REPO / "capi").glob("*.go"):
        exports |= set(re.findall(r"^//export (\w+)", f.read_text(), re.M))
    if not exports:
        pytest.skip("capi/ sources not found")
    assert exports == set(_lib._PROTOTYPES)


def test_a_library_without_an_optional_export_fails_at_call_time():
    class Lacking:
        def __init__(self, dll: ctypes.CDLL) -> None:
            self._dll = dll

        def __getattr__(self, name: str):
            if name == "grw_train":
                raise AttributeError(name)
            return getattr(self._dll, name)

    api = _lib._API(Lacking(_lib.api().dll), "/old/libgoreweight.so")
    assert api.grw_version is not None
    with pytest.raises(goreweight.GoreweightError, match="/old/libgoreweight.so has no grw_train"):
        api.grw_train(b"{}", None, None)


def test_import_does_not_import_the_torch_twin():
    code = ("import sys, goreweight; assert 'goreweight.torch_reference' not in sys.modules; "
            "from goreweight import torch_reference; print(torch_reference.weights.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "weights"


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
    # memory fault is recovered into GRW_EINTERNAL with a message. It runs in
    # a fresh interpreter: the recovery needs Go's SIGSEGV handler, and a
    # library that installs its own after goreweight loaded (a PyTorch
    # Lightning Trainer.fit earlier in the same process does) makes the fault
    # a real crash, whatever goreweight does (docs/python.md, limitations).
    code = textwrap.dedent(
        """
        import torch, goreweight
        from goreweight import _lib
        api = _lib.api()
        s = _lib.slots
        h = _lib.new_handle("grw_weigher_new", "{}")
        try:
            out = torch.empty(4)
            st = api.grw_weigher_weights(h, 1.0, 16, None, 4, out.data_ptr(), None, None, s.err_p)
            msg = _lib.take_string(s.err.value)
            s.err.value = None
            assert st == 2 and "internal error" in msg, (st, msg)
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
        print("ok")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stdout, p.stderr[-2000:])


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
