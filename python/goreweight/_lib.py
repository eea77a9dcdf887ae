"""Loading the Go library, calling it, and guarding it.

The shared library ``libgoreweight.so`` (built from ``capi/`` with
``go build -buildmode=c-shared``) is loaded lazily, on the first call that
needs it, through :mod:`ctypes`. It starts a Go runtime in this process; a
child forked after that point must not call into it (the child has none of
the runtime's threads and would hang), so a fork hook replaces every entry
point in the child by one that raises :class:`RuntimeError`.

``ctypes.CDLL`` releases the GIL for the duration of every call, so Go runs
in parallel with other Python threads; every handle is protected by a mutex
on the Go side.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
from typing import Any, Callable, Optional

__all__ = ["GoreweightError", "library_path", "load", "version"]

_OK, _EINVAL, _EINTERNAL = 0, 1, 2


class GoreweightError(ValueError):
    """An error reported by the Go core (an invalid option or input, or, with
    "internal error" in the message, a bug in goreweight). It is a
    :class:`ValueError`, so ``except ValueError`` catches every input
    problem, whether Python or Go found it."""


_c_void_p = ctypes.c_void_p
_c_u64 = ctypes.c_uint64
_c_i64 = ctypes.c_int64
_c_double = ctypes.c_double
_c_char_p = ctypes.c_char_p
_c_int = ctypes.c_int

# name: (argtypes) ; every function returns int status and takes char **err last.
_PROTOTYPES: dict[str, list[Any]] = {
    "grw_version": [_c_void_p, _c_void_p],
    "grw_strategies": [_c_void_p, _c_void_p],
    "grw_max_weight_bound": [_c_i64, _c_double, _c_double, _c_void_p, _c_void_p],
    "grw_close": [_c_u64, _c_void_p],
    "grw_weigher_new": [_c_char_p, _c_void_p, _c_void_p],
    "grw_weigher_options": [_c_u64, _c_void_p, _c_void_p],
    "grw_weigher_weights": [_c_u64, _c_double, _c_void_p, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p],
    "grw_weigher_weights_arrow": [_c_u64, _c_double, _c_void_p, _c_void_p, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p],
    "grw_reweighter_new": [_c_char_p, _c_void_p, _c_void_p],
    "grw_reweighter_restore": [_c_char_p, _c_void_p, _c_void_p],
    "grw_reweighter_weights": [_c_u64, _c_void_p, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p],
    "grw_reweighter_weights_arrow": [_c_u64, _c_void_p, _c_void_p, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p],
    "grw_reweighter_stats": [_c_u64, _c_void_p, _c_void_p],
    "grw_reweighter_step": [_c_u64, _c_void_p, _c_void_p],
    "grw_reweighter_set_step": [_c_u64, _c_i64, _c_void_p],
    "grw_reweighter_r": [_c_u64, _c_void_p, _c_void_p],
    "grw_reweighter_state": [_c_u64, _c_void_p, _c_void_p],
    "grw_reweighter_load_state": [_c_u64, _c_char_p, _c_void_p],
    "grw_reweighter_config": [_c_u64, _c_void_p, _c_void_p],
    "grw_schedule_at": [_c_char_p, _c_i64, _c_void_p, _c_void_p],
}


def _lib_filename() -> str:
    if sys.platform == "darwin":
        return "libgoreweight.dylib"
    if sys.platform == "win32":
        return "libgoreweight.dll"
    return "libgoreweight.so"


def library_path() -> str:
    """The path of the Go library this process uses (or would load): the
    environment variable ``GOREWEIGHT_LIB`` if set (for development, a
    library built elsewhere), else the copy bundled in the package."""
    env = os.environ.get("GOREWEIGHT_LIB")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib", _lib_filename())


class _API:
    """The library's entry points, bound as attributes (``grw_*``) and
    ``free``; replaced in a forked child by :class:`_ForkedAPI`."""

    def __init__(self, dll: ctypes.CDLL) -> None:
        self.dll = dll
        for name, argtypes in _PROTOTYPES.items():
            f = getattr(dll, name)
            f.argtypes = argtypes
            f.restype = _c_int
            setattr(self, name, f)
        # The fast path: no argtypes, so ctypes converts nothing; the caller
        # passes two prebuilt references (slots.args_ref, slots.err_ref).
        packed = dll.grw_weights_packed
        packed.restype = _c_int
        self.grw_weights_packed = packed
        free = dll.grw_free
        free.argtypes = [_c_void_p]
        free.restype = None
        self.free = free


def _forked(*_args: Any, **_kw: Any) -> Any:
    raise RuntimeError(
        "goreweight: this process was forked after the Go runtime started in its parent, "
        "and a forked child cannot call into Go (it would hang). Create the worker with the "
        "'spawn' start method instead, e.g. torch.utils.data.DataLoader(..., "
        "multiprocessing_context='spawn') or multiprocessing.get_context('spawn')."
    )


class _ForkedAPI:
    """Stands in for the API in a child forked after the library was loaded:
    every entry point raises RuntimeError."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return _forked


_api: Optional[Any] = None
_load_lock = threading.Lock()
_forked_child = False


def _after_fork_in_child() -> None:
    global _api, _forked_child
    if _api is not None:
        _api = _ForkedAPI()
        _forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def load() -> Any:
    """Load the library (once) and return its entry points. Raises
    RuntimeError in a child forked after the library was loaded, and
    OSError with instructions when the library is missing."""
    global _api
    api = _api
    if api is not None:
        return api
    with _load_lock:
        if _api is not None:
            return _api
        path = library_path()
        if not os.path.exists(path):
            raise OSError(
                f"goreweight: the Go library is missing ({path}). It is built when the package is "
                "installed: run `pip install .` in the goreweight repository with the Go toolchain "
                "(>= 1.26) on PATH, or point GOREWEIGHT_LIB at a library built with "
                "`go build -buildmode=c-shared -o libgoreweight.so ./capi`."
            )
        dll = ctypes.CDLL(path)
        _api = _API(dll)
        return _api


def api() -> Any:
    """The loaded API (loading it if needed)."""
    a = _api
    return a if a is not None else load()


class WeightsArgs(ctypes.Structure):
    """struct grw_weights_args (capi/packed.go): the fast path's arguments."""

    _fields_ = [
        ("handle", ctypes.c_uint64),
        ("r", ctypes.c_double),
        ("losses", ctypes.c_void_p),
        ("domains", ctypes.c_void_p),
        ("n", ctypes.c_int64),
        ("weights_out", ctypes.c_void_p),
        ("want_stats", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
        ("nonfinite", ctypes.c_int64),
        ("stats_json", ctypes.c_void_p),
    ]


class _Slots(threading.local):
    """Per-thread out-parameters, so that threads never share an error slot:
    err (char*), out (char*), n (int64), d (double), h (uint64), and the
    packed arguments of the fast path (args, passed by the prebuilt
    references args_ref and err_ref)."""

    def __init__(self) -> None:
        self.args = WeightsArgs()
        self.args_ref = ctypes.byref(self.args)
        self.err = ctypes.c_void_p()
        self.out = ctypes.c_void_p()
        self.n = ctypes.c_int64()
        self.d = ctypes.c_double()
        self.h = ctypes.c_uint64()
        self.err_p = ctypes.addressof(self.err)
        self.out_p = ctypes.addressof(self.out)
        self.n_p = ctypes.addressof(self.n)
        self.d_p = ctypes.addressof(self.d)
        self.h_p = ctypes.addressof(self.h)
        self.err_ref = ctypes.byref(self.err)


slots = _Slots()


def take_string(p: Optional[int]) -> str:
    """Read and free a C string the library returned."""
    if not p:
        return ""
    try:
        return ctypes.string_at(p).decode("utf-8", "replace")
    finally:
        api().free(p)


def raise_status(status: int, s: _Slots) -> None:
    """Turn a failed call's status and message into a GoreweightError."""
    msg = take_string(s.err.value)
    s.err.value = None
    if not msg:
        msg = f"goreweight: call failed with status {status}"
    raise GoreweightError(msg)


def call_string(name: str, *args: Any) -> str:
    """Call an entry point whose last two parameters are (char **out, char **err)
    and return the string it produced."""
    a = api()
    s = slots
    st = getattr(a, name)(*args, s.out_p, s.err_p)
    if st != _OK:
        raise_status(st, s)
    v = s.out.value
    s.out.value = None
    return take_string(v)


def call(name: str, *args: Any) -> None:
    """Call an entry point whose last parameter is (char **err)."""
    s = slots
    st = getattr(api(), name)(*args, s.err_p)
    if st != _OK:
        raise_status(st, s)


def new_handle(name: str, arg: str) -> int:
    """Create an object from a JSON argument and return its handle."""
    a = api()
    s = slots
    st = getattr(a, name)(arg.encode("utf-8"), s.h_p, s.err_p)
    if st != _OK:
        raise_status(st, s)
    return int(s.h.value)


def close_handle(h: int) -> None:
    """Close a handle, ignoring every problem (used from finalisers)."""
    if _forked_child or _api is None or not h:
        return
    try:
        s = slots
        st = _api.grw_close(h, s.err_p)
        if st != _OK:
            take_string(s.err.value)
            s.err.value = None
    except Exception:  # interpreter shutdown, forked child
        pass


def version() -> str:
    """The version of the loaded Go library, e.g. "0.1.0 (go1.26.0)"."""
    return call_string("grw_version")


def strategies() -> list[str]:
    """The names of the strategies registered in the Go core, sorted."""
    return list(json.loads(call_string("grw_strategies")))
