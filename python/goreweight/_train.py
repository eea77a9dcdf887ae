"""The ``goreweight-train`` console command: runs the Go trainer binary that
``pip install`` built into the package (goreweight/bin/goreweight-train)."""

from __future__ import annotations

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
    os.execv(path, [path, *sys.argv[1:]])


if __name__ == "__main__":
    main()
