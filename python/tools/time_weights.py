"""Per-call time of goreweight.weights (Go core through the C ABI) against
goreweight.torch_reference.weights (pure PyTorch), on CPU float32 tensors.

    python python/tools/time_weights.py [M ...]

A quick measurement for the docs, not a test: the best (minimum) of several
timed loops per size, which is the least disturbed by other load.
"""

from __future__ import annotations

import sys
import time

import pyarrow as pa
import torch

import goreweight
from goreweight import torch_reference


def per_call(f, n: int, reps: int = 7) -> float:
    f()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        out.append((time.perf_counter() - t0) / n)
    return min(out)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [128, 1024, 16384]
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"goreweight {goreweight.__version__}, library {goreweight.library_version()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'M':>7} {'goreweight':>12} {'numpy in':>10} {'arrow in':>10} {'torch_reference':>16} {'speed-up':>9}")
    g = torch.Generator().manual_seed(0)
    for m in sizes:
        x = torch.rand(m, generator=g) * 4 + 1
        a = x.numpy()
        pa_x = pa.array(a)
        n = max(20, min(20000, 2_000_000 // m))
        tg = per_call(lambda: goreweight.weights(x, "linupper", 1.0), n)
        tn = per_call(lambda: goreweight.weights(a, "linupper", 1.0), n)
        ta = per_call(lambda: goreweight.weights(pa_x, "linupper", 1.0), n)
        tr = per_call(lambda: torch_reference.weights(x, "linupper", 1.0), max(10, n // 20))
        print(f"{m:>7} {tg*1e6:>10.1f}us {tn*1e6:>8.1f}us {ta*1e6:>8.1f}us {tr*1e6:>14.1f}us {tr/tg:>8.1f}x")


if __name__ == "__main__":
    main()
