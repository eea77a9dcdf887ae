"""The ``goreweight-train`` console command: runs the Go trainer binary that
``pip install`` built into the package (goreweight/bin/goreweight-train)."""

from __future__ import annotations

import json
import os
import sys


def binary_path() -> str:
    """The path of the bundled trainer binary."""
    name = "goreweight-train.exe" if sys.platform == "win32" else "goreweight-train"
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", name)


def main() -> None:
    """Replace this process by the trainer, passing the arguments on."""
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
    os.execv(path, [path, *sys.argv[1:]])


def _missing_blas() -> str:
    """Why the binary's BLAS cannot be loaded, or "" when it can (or was not
    linked). The binary finds libscipy_openblas through its rpath,
    ../../scipy_openblas32/lib, the scipy-openblas32 package pip installs
    next to goreweight; without that package the loader's own message would
    only name the file."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        with open(os.path.join(here, "_lib", "build.json"), encoding="utf-8") as f:
            blas = json.load(f).get("blas")
    except (OSError, ValueError):
        return ""
    if blas != "scipy" or sys.platform == "win32":
        return ""
    lib = os.path.join(os.path.dirname(here), "scipy_openblas32", "lib")
    name = "libscipy_openblas.dylib" if sys.platform == "darwin" else "libscipy_openblas.so"
    if os.path.exists(os.path.join(lib, name)):
        return ""
    return (f"the trainer was built against the scipy-openblas32 package, and {os.path.join(lib, name)} "
            "is missing (installed with --no-deps, or into a different directory than goreweight?). "
            "Install it next to goreweight: pip install scipy-openblas32")


if __name__ == "__main__":
    main()
