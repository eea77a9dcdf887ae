"""Build hooks for `pip install .`: compile the Go parts into the package.

Metadata lives in pyproject.toml. This file adds one step to build_py: with
the local Go toolchain it builds

* goreweight/_lib/libgoreweight.so (+ libgoreweight.h), the C ABI in ./capi,
  with `go build -buildmode=c-shared`. It does not link libpython (Python
  loads it with ctypes), so one build serves every CPython >= 3.9 and the
  wheel is tagged py3-none-<platform>;
* goreweight/bin/goreweight-train, the trainer in
  ./goreweight/trainer/cmd/goreweight-train, when that directory exists. It
  is run by the `goreweight-train` console command.

Both are built with the same BLAS for the trainer's matrix products (the
library runs the trainer too, for `goreweight.train()`). By default that is
the scipy-openblas32 wheel from PyPI, a build requirement and a dependency of
the package (`-tags scipyopenblas`, its include and lib directories passed in
CGO_CFLAGS / CGO_LDFLAGS). The programs find libscipy_openblas.so at run time
through an rpath relative to themselves, $ORIGIN/../../scipy_openblas32/lib,
which is where pip installs that wheel next to goreweight in site-packages:
no environment variable, no 25 MB copy of OpenBLAS in our wheel, and the
OpenBLAS pip manages (and upgrades) is the one used.

Environment:

* GOREWEIGHT_BLAS picks the BLAS: `scipy` (default; the build fails if
  scipy_openblas32 cannot be imported), `system` (`-tags openblas`, a system
  libopenblas found by the C compiler and linker, e.g. Debian's
  libopenblas-dev; add CGO_CFLAGS/CGO_LDFLAGS for another location), or
  `gonum` (pure Go, about 10x slower matrix products; the default on
  Windows). `auto` is scipy where it imports, else gonum with a warning. GOREWEIGHT_OPENBLAS=1/0 is the old
  spelling of system/gonum.
* GOREWEIGHT_GO names the go binary (default: `go` on PATH).
* GOREWEIGHT_SKIP_TRAIN=1 skips the trainer.

The choice is written to goreweight/_lib/build.json ({"blas": ..., "tags": ...})
so tests and benchmarks can check what the installed programs report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

ROOT = os.path.dirname(os.path.abspath(__file__))
TRAINER = os.path.join("goreweight", "trainer", "cmd", "goreweight-train")


def _lib_name() -> str:
    if sys.platform == "darwin":
        return "libgoreweight.dylib"
    if sys.platform == "win32":
        return "libgoreweight.dll"
    return "libgoreweight.so"


def _go() -> str:
    go = os.environ.get("GOREWEIGHT_GO") or shutil.which("go")
    if not go:
        for cand in ("/usr/local/go/bin/go", os.path.expanduser("~/go/bin/go"), os.path.expanduser("~/sdk/go/bin/go")):
            if os.path.exists(cand):
                go = cand
                break
    if not go:
        sys.exit(
            "error: goreweight needs the Go toolchain (go >= 1.26) to build its library, and `go` "
            "was not found on PATH. Install Go from https://go.dev/dl/ (or set GOREWEIGHT_GO to the "
            "go binary) and run `pip install .` again."
        )
    return go


class Blas:
    """The BLAS a build links: the Go build tags and the cgo flags for it."""

    def __init__(self, name: str, tags: list[str], cflags: str = "", ldflags: str = "") -> None:
        self.name, self.tags, self.cflags, self.ldflags = name, tags, cflags, ldflags


def _rpath_origin() -> str:
    return "@loader_path" if sys.platform == "darwin" else "$ORIGIN"


def _quote(arg: str) -> str:
    """One field of CGO_CFLAGS / CGO_LDFLAGS, which Go splits with shell-like quoting."""
    return f"'{arg}'" if any(c.isspace() for c in arg) else arg


def _scipy_blas() -> Blas | None:
    """The scipy-openblas32 wheel in this (build) environment, or None."""
    try:
        import scipy_openblas32  # type: ignore[import-not-found]
    except ImportError:
        return None
    lib = scipy_openblas32.get_lib_dir()
    inc = scipy_openblas32.get_include_dir()
    # Link against the build environment's copy; at run time find the one pip
    # installs next to goreweight in site-packages (both programs are two
    # levels below site-packages: goreweight/_lib, goreweight/bin).
    rpath = _rpath_origin() + "/../../scipy_openblas32/lib"
    ldflags = f"{_quote('-L' + lib)} -Wl,-rpath,{rpath}"
    # A build without isolation (--no-build-isolation, a --system-site-packages
    # venv, --user) links the copy it will also run with, possibly in another
    # site directory than goreweight's: keep its absolute directory as a second,
    # fallback entry. An isolated build's copy is a temporary directory that pip
    # deletes, so it is not recorded.
    if "pip-build-env" not in lib and os.path.isdir(lib):
        ldflags += f" {_quote('-Wl,-rpath,' + os.path.abspath(lib))}"
    return Blas("scipy", ["scipyopenblas"], cflags=_quote(f"-I{inc}"), ldflags=ldflags)


def _blas() -> Blas:
    """The BLAS chosen by GOREWEIGHT_BLAS (see the module docstring)."""
    choice = os.environ.get("GOREWEIGHT_BLAS", "").strip().lower()
    if not choice:
        old = os.environ.get("GOREWEIGHT_OPENBLAS")
        if old is not None:
            choice = "system" if old not in ("", "0", "false", "no") else "gonum"
        else:
            # Windows: the wheel's import library and an rpath do not fit a
            # cgo build there; pure Go unless asked otherwise.
            choice = "gonum" if sys.platform == "win32" else "scipy"
    if choice not in ("auto", "scipy", "system", "gonum"):
        sys.exit(f"error: goreweight: GOREWEIGHT_BLAS={choice!r}: expected scipy, system, gonum or auto")
    if choice in ("scipy", "auto"):
        blas = _scipy_blas()
        if blas is not None:
            return blas
        if choice == "scipy":
            sys.exit(
                "error: goreweight: the scipy-openblas32 package (the BLAS for the trainer) cannot be imported "
                "in the build environment. It is a build requirement in pyproject.toml; with "
                "--no-build-isolation, `pip install scipy-openblas32` first. Or set GOREWEIGHT_BLAS=system "
                "(a system libopenblas) or GOREWEIGHT_BLAS=gonum (pure Go, about 10x slower)."
            )
        print("goreweight: WARNING: scipy-openblas32 not importable; building the trainer on pure-Go gonum "
              "(about 10x slower matrix products)", file=sys.stderr, flush=True)
        return Blas("gonum", [])
    if choice == "system":
        return Blas("system", ["openblas"])
    return Blas("gonum", [])


def _run(cmd: list[str], what: str, blas: Blas | None = None) -> None:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "1"
    if blas is not None:
        for key, val in (("CGO_CFLAGS", blas.cflags), ("CGO_LDFLAGS", blas.ldflags)):
            if val:
                # Go's own default for an unset CGO_CFLAGS is "-O2 -g"; keep it.
                env[key] = " ".join(x for x in (env.get(key, "-O2 -g"), val) if x)
    flags = "" if blas is None else " ".join(f"{k}={env[k]!r}" for k in ("CGO_CFLAGS", "CGO_LDFLAGS") if k in env)
    print(f"goreweight: {what}: {flags + ' ' if flags else ''}{' '.join(cmd)}", flush=True)
    try:
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    except subprocess.CalledProcessError as e:
        sys.exit(f"error: goreweight: {what} failed (exit status {e.returncode}); see the Go output above.")
    except OSError as e:
        sys.exit(f"error: goreweight: {what}: cannot run {cmd[0]!r} ({e}). goreweight needs the Go toolchain "
                 "(go >= 1.26): install it from https://go.dev/dl/ or set GOREWEIGHT_GO to the go binary.")


def build_go(pkg_dir: str) -> None:
    """Build the Go library (and the trainer, if present) into pkg_dir."""
    go = _go()
    lib_dir = os.path.join(pkg_dir, "_lib")
    os.makedirs(lib_dir, exist_ok=True)
    blas = _blas()
    tags = ["-tags", ",".join(blas.tags)] if blas.tags else []
    print(f"goreweight: BLAS for the trainer's matrix products: {blas.name} (GOREWEIGHT_BLAS=scipy|system|gonum)",
          flush=True)
    _run(
        [go, "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", *tags,
         "-o", os.path.join(lib_dir, _lib_name()), "./capi"],
        "building the C ABI library",
        blas,
    )
    with open(os.path.join(lib_dir, "build.json"), "w", encoding="utf-8") as f:
        json.dump({"blas": blas.name, "tags": blas.tags}, f)
        f.write("\n")
    if os.path.isdir(os.path.join(ROOT, TRAINER)):
        if os.environ.get("GOREWEIGHT_SKIP_TRAIN") not in (None, "", "0"):
            print("goreweight: note: GOREWEIGHT_SKIP_TRAIN is set; not building goreweight-train", flush=True)
            return
        bin_dir = os.path.join(pkg_dir, "bin")
        os.makedirs(bin_dir, exist_ok=True)
        exe = "goreweight-train.exe" if sys.platform == "win32" else "goreweight-train"
        cmd = [go, "build", "-trimpath", *tags, "-o", os.path.join(bin_dir, exe), "./" + TRAINER.replace(os.sep, "/")]
        try:
            _run(cmd, "building goreweight-train", blas)
        except SystemExit:
            print("goreweight: (set GOREWEIGHT_SKIP_TRAIN=1 to install without the trainer)", file=sys.stderr)
            raise
    else:
        print(f"goreweight: note: {TRAINER} does not exist in this checkout; "
              "the goreweight-train command will report that it is not built", flush=True)


class BuildPy(build_py):
    """build_py, then the Go library and trainer into the build tree."""

    def run(self) -> None:
        super().run()
        if not self.dry_run:
            build_go(os.path.join(self.build_lib, "goreweight"))


class BinaryDistribution(Distribution):
    """A distribution with a native library: built and installed as platlib."""

    def has_ext_modules(self) -> bool:
        return True


class BdistWheel(bdist_wheel):
    """Platform wheel (it holds a native library) for any Python 3: py3-none-<platform>."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildPy, "bdist_wheel": BdistWheel})
