"""Build hooks for `pip install .`: compile the Go parts into the package.

Metadata lives in pyproject.toml. This file adds one step to build_py: with
the local Go toolchain it builds

* goreweight/_lib/libgoreweight.so (+ libgoreweight.h), the C ABI in ./capi,
  with `go build -buildmode=c-shared`. It does not link libpython (Python
  loads it with ctypes), so one build serves every CPython >= 3.9 and the
  wheel is tagged py3-none-<platform>;
* goreweight/bin/goreweight-train, the trainer in ./goreweight/trainer/cmd/goreweight-train,
  when that directory exists, with `-tags openblas` when the Debian package
  libopenblas-dev is installed. It is run by the `goreweight-train` console
  command.

Environment: GOREWEIGHT_GO names the go binary (default: `go` on PATH);
GOREWEIGHT_SKIP_TRAIN=1 skips the trainer; GOREWEIGHT_OPENBLAS=0/1 overrides
the OpenBLAS detection.
"""

from __future__ import annotations

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


def _openblas() -> bool:
    env = os.environ.get("GOREWEIGHT_OPENBLAS")
    if env is not None:
        return env not in ("", "0", "false", "no")
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", "libopenblas-dev"], capture_output=True, text=True, check=False
        )
    except OSError:
        return False
    return out.returncode == 0 and "install ok installed" in out.stdout


def _run(cmd: list[str], what: str) -> None:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "1"
    print(f"goreweight: {what}: {' '.join(cmd)}", flush=True)
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
    _run(
        [go, "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w",
         "-o", os.path.join(lib_dir, _lib_name()), "./capi"],
        "building the C ABI library",
    )
    if os.path.isdir(os.path.join(ROOT, TRAINER)):
        if os.environ.get("GOREWEIGHT_SKIP_TRAIN") not in (None, "", "0"):
            print("goreweight: note: GOREWEIGHT_SKIP_TRAIN is set; not building goreweight-train", flush=True)
            return
        bin_dir = os.path.join(pkg_dir, "bin")
        os.makedirs(bin_dir, exist_ok=True)
        exe = "goreweight-train.exe" if sys.platform == "win32" else "goreweight-train"
        cmd = [go, "build", "-trimpath"]
        if _openblas():
            cmd += ["-tags", "openblas"]
            print("goreweight: libopenblas-dev is installed: building the trainer with -tags openblas", flush=True)
        cmd += ["-o", os.path.join(bin_dir, exe), "./" + TRAINER.replace(os.sep, "/")]
        try:
            _run(cmd, "building goreweight-train")
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
