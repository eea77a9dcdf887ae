"""Token-scale weights (issue 12): one masked (B, T) token batch of M = 2^17
.. 2^20 tokens, ``goreweight.weights(tok, mask=mask)`` through the core's
masked entry point, against the same call through the compacting path it
replaced on the CPU (``masked_select``, the 1-D core, ``masked_scatter_``)
and against the pure-PyTorch twin (``goreweight.torch_reference`` on the
same compaction, scattered back), side by side in one run.

    python benchmarks/bench_token.py                 # 10% masked, scattered and as padding
    python benchmarks/bench_token.py --reps 25 --threads 1 --reference

Every implementation is timed --reps times per round, the rounds
interleaved (--rounds, to expose drift); the table gives the median and
the minimum over all repeats and the ratios of the minima (twin / goreweight,
compacting / goreweight). --threads sets both torch's threads and Go's
GOMAXPROCS. The weights of the three implementations are checked to agree
(bit for bit between the two goreweight paths) before timing. See
docs/scope.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15, help="timed calls per implementation per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--masked", type=float, default=0.1, help="fraction of tokens masked")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads and GOMAXPROCS")
    ap.add_argument("--reference", action="store_true", help="also time scores from a reference loss")
    ap.add_argument("--sizes", default="17,18,19,20", help="log2 of M, comma-separated")
    a = ap.parse_args()
    os.environ["GOMAXPROCS"] = str(a.threads)  # read when the Go library loads, on the first call
    torch.set_num_threads(a.threads)

    import goreweight
    from goreweight import _exchange, _lib, _token, _weights, torch_reference

    target = _weights._weigher("linupper", 1.0, None, "zero", None, None)

    def compacting(tok: torch.Tensor, mask: torch.Tensor, ref: "torch.Tensor | None") -> torch.Tensor:
        # the CPU token path before the masked entry point (still CUDA's and DDP's)
        p = _token.prepare_torch(tok, mask, ref, "losses")
        w, _, _ = _exchange.torch_weights(target, 1.0, p.scores, p.n, None, False)
        return p.scatter_torch(w)

    def twin(tok: torch.Tensor, mask: torch.Tensor, ref: "torch.Tensor | None") -> torch.Tensor:
        s = tok if ref is None else tok - ref
        w = torch_reference.weights(torch.masked_select(s, mask), "linupper", 1.0)
        return torch.zeros_like(tok).masked_scatter_(mask, w)

    def core(tok: torch.Tensor, mask: torch.Tensor, ref: "torch.Tensor | None") -> torch.Tensor:
        return goreweight.weights(tok, "linupper", 1.0, mask=mask, reference=ref)

    impls: Dict[str, Callable[..., torch.Tensor]] = {"goreweight": core, "compacting": compacting, "torch_reference": twin}
    print(f"# {sys.executable}: torch {torch.__version__}, {a.threads} thread(s) (torch and GOMAXPROCS), "
          f"{a.masked:.0%} masked, linupper r=1, {a.reps} reps x {a.rounds} rounds; goreweight library {_lib.version()}")
    print(f"# load average {os.getloadavg()[0]:.2f} at start")
    rows: List[List[str]] = []
    for e in [int(x) for x in a.sizes.split(",")]:
        m = 1 << e
        g = torch.Generator().manual_seed(e)
        tok = torch.rand(m // 1024, 1024, generator=g) * 8
        refs = [None]
        if a.reference:
            refs.append(torch.rand(m // 1024, 1024, generator=g) * 2)
        for kind in ("scattered", "padding"):
            if kind == "scattered":
                mask = torch.rand(m // 1024, 1024, generator=g) >= a.masked
            else:  # each 1024-token sequence padded at its end, ~a.masked on average
                keep = 1024 - (torch.rand(m // 1024, generator=g) * 2 * a.masked * 1024).long()
                mask = torch.arange(1024)[None, :] < keep[:, None]
            for ref in refs:
                ws = {k: f(tok, mask, ref) for k, f in impls.items()}
                assert torch.equal(ws["goreweight"].view(torch.int32), ws["compacting"].view(torch.int32))
                torch.testing.assert_close(ws["goreweight"], ws["torch_reference"], rtol=1e-5, atol=1e-12)
                ts: Dict[str, List[float]] = {k: [] for k in impls}
                for _ in range(a.rounds):
                    for k, f in impls.items():
                        for _ in range(a.reps):
                            t0 = time.perf_counter()
                            f(tok, mask, ref)
                            ts[k].append(time.perf_counter() - t0)
                med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in ts.items()}
                mn = {k: min(v) * 1e3 for k, v in ts.items()}
                cfg = f"2^{e} {kind}" + (" +ref" if ref is not None else "")
                rows.append([cfg] + [f"{med[k]:.2f} / {mn[k]:.2f}" for k in impls] + [
                    f"{mn['torch_reference'] / mn['goreweight']:.1f}x",
                    f"{mn['compacting'] / mn['goreweight']:.1f}x",
                ])
                print("| " + " | ".join(rows[-1]) + " |", flush=True)
    print()
    print("| M tokens, mask | goreweight ms (median / min) | compacting path ms | torch_reference ms | twin / goreweight | compacting / goreweight |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
