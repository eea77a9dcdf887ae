"""Where the BLAS that the Go library and trainer were linked against lives.

``pip install .`` links ``libgoreweight.so`` and ``goreweight-train`` against
the scipy-openblas32 wheel with an rpath of ``$ORIGIN/../../scipy_openblas32/lib``:
right when both packages sit in the same site-packages directory, which is
the usual case. It is not when they were installed into different ones (a
venv made with ``--system-site-packages`` whose base has scipy-openblas32,
``pip install --user`` next to a system package, ``--target``). This module
finds the package wherever Python imports it from, so that the library can be
preloaded (``preload``) and the trainer given the directory (``lib_dir``).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
_NAME = "libscipy_openblas.dylib" if sys.platform == "darwin" else "libscipy_openblas.so"
_preloaded: Optional[ctypes.CDLL] = None


def built_with_scipy_openblas() -> bool:
    """Whether this installation's Go parts were linked against scipy-openblas32
    (recorded by setup.py in _lib/build.json)."""
    try:
        with open(os.path.join(_HERE, "_lib", "build.json"), encoding="utf-8") as f:
            return bool(json.load(f).get("blas") == "scipy") and sys.platform != "win32"
    except (OSError, ValueError):
        return False


def rpath_dir() -> str:
    """The directory the rpath of the installed library and binary names."""
    return os.path.join(os.path.dirname(_HERE), "scipy_openblas32", "lib")


def lib_dir() -> Optional[str]:
    """The directory holding libscipy_openblas: the rpath's when the file is
    there, else the importable scipy_openblas32 package's, else None."""
    if os.path.exists(os.path.join(rpath_dir(), _NAME)):
        return rpath_dir()
    try:
        import scipy_openblas32  # the package pip installs with goreweight
    except ImportError:
        return None
    d = str(scipy_openblas32.get_lib_dir())
    return d if os.path.exists(os.path.join(d, _NAME)) else None


def preload() -> None:
    """Load libscipy_openblas globally before the Go library when the rpath
    would not find it: the dynamic loader then satisfies the library's
    dependency with the copy already loaded (matched by its soname)."""
    global _preloaded
    if _preloaded is not None or not built_with_scipy_openblas():
        return
    if os.path.exists(os.path.join(rpath_dir(), _NAME)):
        return  # the rpath finds it
    d = lib_dir()
    if d is None:
        raise OSError(
            f"goreweight: the Go library was built against the scipy-openblas32 package, and "
            f"{_NAME} is neither at {rpath_dir()} nor in an importable scipy_openblas32 package "
            "(installed with --no-deps?). Install it: pip install scipy-openblas32"
        )
    _preloaded = ctypes.CDLL(os.path.join(d, _NAME), mode=ctypes.RTLD_GLOBAL)
