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

from . import _blas

__all__ = [
    "EmptyBatchError",
    "GoreweightError",
    "GoreweightIOError",
    "InternalError",
    "NonFiniteLossError",
    "TrainingInterrupted",
    "error_for",
    "library_path",
    "load",
    "version",
]

# ---------------------------------------------------------------- errors
#
# The C ABI's status codes (capi/capi.go) and the exception class of each.
# error_for is the one place that maps a status to a class; nothing in this
# package looks at the text of a message.

STATUS_OK = 0
STATUS_INVALID = 1  # GRW_EINVAL: a bad argument
STATUS_INTERNAL = 2  # GRW_EINTERNAL: a recovered Go panic (a goreweight bug)
STATUS_EMPTY = 3  # GRW_EEMPTY: no losses to weight
STATUS_NONFINITE = 4  # GRW_ENONFINITE: non-finite losses under "raise", or none finite
STATUS_INTERRUPTED = 5  # GRW_EINTR: the trainer was interrupted (checkpoint written)
STATUS_IO = 6  # GRW_EIO: a file could not be read or written, or is corrupt


class GoreweightError(ValueError):
    """An error reported by the Go core: an invalid option or input.

    It is a :class:`ValueError`, so ``except ValueError`` catches every input
    problem, whether Python or Go found it. ``status`` is the C ABI's status
    code of the failed call (1 for a bad argument; 0 when Python raised it).

    Example::

        try:
            goreweight.weights(losses, cap=0.5)
        except goreweight.GoreweightError as e:
            print(e)  # goreweight: cap must be a finite number >= 1 ...
    """

    status: int = STATUS_INVALID

    def __init__(self, message: str = "", status: Optional[int] = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class InternalError(GoreweightError, RuntimeError):
    """A bug in goreweight: Go recovered from a panic (status GRW_EINTERNAL).
    Please report it with the message. Also a :class:`RuntimeError`."""

    status = STATUS_INTERNAL


class EmptyBatchError(GoreweightError):
    """The batch holds no losses to weight (status GRW_EEMPTY), e.g. an empty
    tensor, or an empty global batch under torch.distributed."""

    status = STATUS_EMPTY


class NonFiniteLossError(GoreweightError):
    """Non-finite (NaN or infinite) losses under ``nonfinite="raise"``, or no
    finite loss at all (status GRW_ENONFINITE)."""

    status = STATUS_NONFINITE


class GoreweightIOError(GoreweightError, OSError):
    """A file could not be read or written, or is corrupt (status GRW_EIO).
    Also an :class:`OSError`."""

    status = STATUS_IO


class TrainingInterrupted(KeyboardInterrupt):
    """The Go trainer stopped on SIGINT after writing a checkpoint (status
    GRW_EINTR); the message names the directory to resume from. A
    :class:`KeyboardInterrupt`, so Ctrl-C handling code sees it as one."""

    status = STATUS_INTERRUPTED


_CLASS_OF_STATUS: dict[int, type[BaseException]] = {
    STATUS_INVALID: GoreweightError,
    STATUS_INTERNAL: InternalError,
    STATUS_EMPTY: EmptyBatchError,
    STATUS_NONFINITE: NonFiniteLossError,
    STATUS_INTERRUPTED: TrainingInterrupted,
    STATUS_IO: GoreweightIOError,
}


def error_for(status: int, message: str) -> BaseException:
    """The exception for a failed call's status code and message. A status
    this package does not know (from a newer library) gives a
    :class:`GoreweightError` carrying that status.

    Example::

        raise error_for(3, "goreweight: empty batch")  # EmptyBatchError
    """
    if not message:
        message = f"goreweight: call failed with status {status}"
    cls = _CLASS_OF_STATUS.get(status)
    if cls is None:
        return GoreweightError(message, status)
    if issubclass(cls, GoreweightError):
        return cls(message, status)
    e = cls(message)
    setattr(e, "status", status)
    return e


# ---------------------------------------------------------------- prototypes

_c_void_p = ctypes.c_void_p
_c_u64 = ctypes.c_uint64
_c_i64 = ctypes.c_int64
_c_double = ctypes.c_double
_c_char_p = ctypes.c_char_p
_c_int = ctypes.c_int

# Every export of capi/: name -> (argtypes, restype, required). Every
# function but grw_free returns an int status and takes char **err last.
# argtypes None: no conversion by ctypes (grw_weights_packed, the fast path:
# the caller passes two prebuilt references, slots.args_ref and
# slots.err_ref). An export that is not required may be missing from an
# older library: calling it then raises GoreweightError saying so.
_PROTOTYPES: dict[str, tuple[Optional[list[Any]], Any, bool]] = {
    "grw_free": ([_c_void_p], None, True),
    "grw_version": ([_c_void_p, _c_void_p], _c_int, True),
    "grw_strategies": ([_c_void_p, _c_void_p], _c_int, True),
    "grw_max_weight_bound": ([_c_i64, _c_double, _c_double, _c_void_p, _c_void_p], _c_int, True),
    "grw_close": ([_c_u64, _c_void_p], _c_int, True),
    "grw_weights_packed": (None, _c_int, True),
    "grw_weigher_new": ([_c_char_p, _c_void_p, _c_void_p], _c_int, True),
    "grw_weigher_options": ([_c_u64, _c_void_p, _c_void_p], _c_int, True),
    "grw_weigher_weights": ([_c_u64, _c_double, _c_void_p, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p], _c_int, True),
    "grw_weigher_weights_arrow": ([_c_u64, _c_double, _c_void_p, _c_void_p, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p], _c_int, True),
    "grw_reweighter_new": ([_c_char_p, _c_void_p, _c_void_p], _c_int, True),
    "grw_reweighter_restore": ([_c_char_p, _c_void_p, _c_void_p], _c_int, True),
    "grw_reweighter_weights": ([_c_u64, _c_void_p, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p], _c_int, True),
    "grw_reweighter_weights_arrow": ([_c_u64, _c_void_p, _c_void_p, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p], _c_int, True),
    "grw_reweighter_stats": ([_c_u64, _c_void_p, _c_void_p], _c_int, True),
    "grw_reweighter_step": ([_c_u64, _c_void_p, _c_void_p], _c_int, True),
    "grw_reweighter_set_step": ([_c_u64, _c_i64, _c_void_p], _c_int, True),
    "grw_reweighter_r": ([_c_u64, _c_void_p, _c_void_p], _c_int, True),
    "grw_reweighter_state": ([_c_u64, _c_void_p, _c_void_p], _c_int, True),
    "grw_reweighter_load_state": ([_c_u64, _c_char_p, _c_void_p], _c_int, True),
    "grw_reweighter_config": ([_c_u64, _c_void_p, _c_void_p], _c_int, True),
    "grw_schedule_at": ([_c_char_p, _c_i64, _c_void_p, _c_void_p], _c_int, True),
    # masked (token-level) batches (capi/masked.go); absent from older libraries
    "grw_weights_masked": (None, _c_int, False),
    "grw_weigher_weights_masked": ([_c_u64, _c_double, _c_void_p, _c_void_p, _c_void_p, ctypes.c_int32, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p], _c_int, False),
    "grw_reweighter_weights_masked": ([_c_u64, _c_void_p, _c_void_p, _c_void_p, ctypes.c_int32, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p, _c_void_p], _c_int, False),
    # the approximate global scope (capi/deferred.go); absent from libraries built before it
    "grw_deferred_new": ([_c_char_p, _c_void_p, _c_void_p], _c_int, False),
    "grw_deferred_restore": ([_c_char_p, _c_void_p, _c_void_p], _c_int, False),
    "grw_deferred_micro": ([_c_u64, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p], _c_int, False),
    "grw_deferred_sums": ([_c_u64, _c_void_p, _c_i64, _c_void_p], _c_int, False),
    "grw_deferred_finish": ([_c_u64, _c_void_p, _c_i64, _c_void_p, _c_void_p, _c_void_p], _c_int, False),
    "grw_deferred_discard": ([_c_u64, _c_void_p], _c_int, False),
    "grw_deferred_range": ([_c_u64, _c_void_p, _c_void_p, _c_void_p, _c_void_p], _c_int, False),
    "grw_deferred_set_range": ([_c_u64, _c_double, _c_double, _c_void_p], _c_int, False),
    "grw_deferred_step": ([_c_u64, _c_void_p, _c_void_p, _c_void_p], _c_int, False),
    "grw_deferred_set_step": ([_c_u64, _c_i64, _c_void_p], _c_int, False),
    "grw_deferred_r": ([_c_u64, _c_void_p, _c_void_p], _c_int, False),
    "grw_deferred_stats": ([_c_u64, _c_void_p, _c_void_p], _c_int, False),
    "grw_deferred_state": ([_c_u64, _c_void_p, _c_void_p], _c_int, False),
    "grw_deferred_load_state": ([_c_u64, _c_char_p, _c_void_p], _c_int, False),
    "grw_deferred_config": ([_c_u64, _c_void_p, _c_void_p], _c_int, False),
    # the Go trainer (capi/train.go); absent from libraries built before it
    "grw_train": ([_c_char_p, _c_void_p, _c_void_p], _c_int, False),
}

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _lib_filename() -> str:
    if sys.platform == "darwin":
        return "libgoreweight.dylib"
    if sys.platform == "win32":
        return "libgoreweight.dll"
    return "libgoreweight.so"


def library_path() -> str:
    """The path of the Go library this process uses (or would load): the
    environment variable ``GOREWEIGHT_LIB`` if set (for development, a
    library built elsewhere), else the copy bundled in the package.

    Example::

        print(goreweight.library_path())  # .../site-packages/goreweight/_lib/libgoreweight.so
    """
    env = os.environ.get("GOREWEIGHT_LIB")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib", _lib_filename())


class _Missing:
    """Stands in for an optional export the loaded library lacks: calling it
    raises GoreweightError naming the export and the library."""

    def __init__(self, name: str, path: str) -> None:
        self.name, self.path = name, path

    def __call__(self, *_args: Any) -> int:
        raise GoreweightError(
            f"goreweight: the Go library at {self.path} has no {self.name} (it predates that entry "
            "point); reinstall the package with `pip install .` from an up-to-date checkout",
            STATUS_OK,
        )


class _API:
    """The library's entry points (``grw_*``), bound from :data:`_PROTOTYPES`
    as attributes, plus ``free`` (= ``grw_free``); replaced in a forked child
    by :class:`_ForkedAPI`."""

    def __init__(self, dll: ctypes.CDLL, path: str = "") -> None:
        self.dll = dll
        for name, (argtypes, restype, required) in _PROTOTYPES.items():
            try:
                f = getattr(dll, name)
            except AttributeError:
                if required:
                    raise OSError(
                        f"goreweight: the Go library at {path} has no {name}; it does not match this "
                        "package: reinstall with `pip install .`"
                    ) from None
                setattr(self, name, _Missing(name, path))
                continue
            if argtypes is not None:
                f.argtypes = argtypes
            f.restype = restype
            setattr(self, name, f)
        self.free = getattr(self, "grw_free")


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
        if "GOREWEIGHT_LIB" not in os.environ:
            _blas.preload()  # the library's BLAS, when the rpath does not reach it
        dll = ctypes.CDLL(path)
        _api = _API(dll, path)
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


class MaskedArgs(ctypes.Structure):
    """struct grw_masked_args (capi/masked.go): a dense batch with a mask
    and a reference loss."""

    _fields_ = [
        ("handle", ctypes.c_uint64),
        ("r", ctypes.c_double),
        ("losses", ctypes.c_void_p),
        ("reference", ctypes.c_void_p),
        ("mask", ctypes.c_void_p),
        ("domains", ctypes.c_void_p),
        ("n", ctypes.c_int64),
        ("weights_out", ctypes.c_void_p),
        ("flags", ctypes.c_int32),
        ("want_stats", ctypes.c_int32),
        ("nonfinite", ctypes.c_int64),
        ("stats_json", ctypes.c_void_p),
    ]


# grw_masked_args.flags (GRW_MASK_SKIP_NONFINITE)
MASK_SKIP_NONFINITE = 1


class _Slots(threading.local):
    """Per-thread out-parameters, so that threads never share an error slot:
    err (char*), out (char*), n (int64), d (double), h (uint64), and the
    packed arguments of the fast path (args, passed by the prebuilt
    references args_ref and err_ref) and of masked batches (margs,
    margs_ref)."""

    def __init__(self) -> None:
        self.args = WeightsArgs()
        self.args_ref = ctypes.byref(self.args)
        self.margs = MaskedArgs()
        self.margs_ref = ctypes.byref(self.margs)
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
    """Raise the exception for a failed call (its status and the message in
    the thread's error slot, which is freed), as mapped by :func:`error_for`.

    Example (the pattern of every call)::

        st = api().grw_reweighter_step(h, slots.n_p, slots.err_p)
        if st:
            raise_status(st, slots)
    """
    msg = take_string(s.err.value)
    s.err.value = None
    raise error_for(status, msg)


def call_string(name: str, *args: Any) -> str:
    """Call an entry point whose last two parameters are (char **out, char **err)
    and return the string it produced."""
    a = api()
    s = slots
    st = getattr(a, name)(*args, s.out_p, s.err_p)
    if st != STATUS_OK:
        raise_status(st, s)
    v = s.out.value
    s.out.value = None
    return take_string(v)


def call(name: str, *args: Any) -> None:
    """Call an entry point whose last parameter is (char **err)."""
    s = slots
    st = getattr(api(), name)(*args, s.err_p)
    if st != STATUS_OK:
        raise_status(st, s)


def new_handle(name: str, arg: str) -> int:
    """Create an object from a JSON argument and return its handle."""
    a = api()
    s = slots
    st = getattr(a, name)(arg.encode("utf-8"), s.h_p, s.err_p)
    if st != STATUS_OK:
        raise_status(st, s)
    return int(s.h.value)


def close_handle(h: int) -> None:
    """Close a handle, ignoring every problem (used from finalisers)."""
    if _forked_child or _api is None or not h:
        return
    try:
        s = slots
        st = _api.grw_close(h, s.err_p)
        if st != STATUS_OK:
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
