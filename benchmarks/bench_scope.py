"""Cost per optimizer step of exact global scope (goreweight.GlobalBatch: one
extra forward without gradients per micro-batch) against micro scope (a
Reweighter call per micro-batch), for a tiny causal transformer on the CPU.

    python benchmarks/bench_scope.py --granularity sample   # or token

Prints the median and minimum of --reps steps for each scope (two rounds,
interleaved, to expose noise). With --token-scale it instead times the
weights of one masked (B, T) token batch, M = 2^17 .. 2^20 tokens of which
~70% are counted, through goreweight.weights(mask=...) (the core's masked
entry point on the CPU) against the pure-PyTorch twin on the same compacted
entries; benchmarks/bench_token.py is the fuller comparison (10% masked,
padding masks, reference losses, the compacting path it replaced). See
docs/scope.md.
"""

from __future__ import annotations

import argparse
import time

import torch

import goreweight


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--granularity", choices=["sample", "token"], default="sample")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--micro", type=int, default=8, help="sequences per micro-batch")
    ap.add_argument("--accum", type=int, default=4, help="micro-batches per optimizer step (G)")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--token-scale", action="store_true", help="time token-level weights at M = 2^17..2^20")
    a = ap.parse_args()
    if a.token_scale:
        token_scale(a.reps)
        return
    torch.manual_seed(0)
    torch.set_num_threads(1)
    v, d = 256, 64
    layer = torch.nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True)
    emb, enc, head = torch.nn.Embedding(v, d), torch.nn.TransformerEncoder(layer, 2), torch.nn.Linear(d, v)
    params = [*emb.parameters(), *enc.parameters(), *head.parameters()]
    causal = torch.nn.Transformer.generate_square_subsequent_mask(a.seq)

    def fwd(ids: torch.Tensor) -> torch.Tensor:
        return head(enc(emb(ids), mask=causal, is_causal=True))

    opt = torch.optim.SGD(params, lr=1e-3)
    data = [torch.randint(0, v, (a.micro, a.seq)) for _ in range(a.accum)]
    loss_fn = goreweight.per_token_loss if a.granularity == "token" else goreweight.per_sample_loss

    def micro(rw: goreweight.Reweighter) -> None:
        for ids in data:
            (rw(loss_fn(fwd(ids), ids)) / a.accum).backward()
        opt.step()
        opt.zero_grad()

    def glob(rw: goreweight.Reweighter) -> None:
        with torch.no_grad():
            first = [loss_fn(fwd(ids), ids) for ids in data]
        gb = goreweight.GlobalBatch(rw, first)
        for k, ids in enumerate(data):
            gb.loss(k, loss_fn(fwd(ids), ids)).backward()
        opt.step()
        opt.zero_grad()

    for name, f in (("micro", micro), ("global", glob)) * 2:
        rw = goreweight.Reweighter("linupper", schedule=1.0)
        f(rw)
        f(rw)
        ts = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            f(rw)
            ts.append(time.perf_counter() - t0)
        ts.sort()
        print(f"{a.granularity} {name:6s}: median {ts[len(ts) // 2] * 1e3:.1f} ms/step, min {ts[0] * 1e3:.1f}", flush=True)


def token_scale(reps: int) -> None:
    from goreweight import torch_reference

    torch.set_num_threads(1)
    for e in (17, 18, 19, 20):
        m = 1 << e
        g = torch.Generator().manual_seed(e)
        tok = torch.rand(m // 1024, 1024, generator=g) * 8
        mask = torch.rand(m // 1024, 1024, generator=g) >= 0.3

        def core() -> None:
            goreweight.weights(tok, "linupper", 1.0, mask=mask)

        def twin() -> None:  # the same compaction and scatter, the weights in PyTorch
            w = torch_reference.weights(torch.masked_select(tok, mask), "linupper", 1.0)
            torch.zeros_like(tok).masked_scatter_(mask, w)

        for name, f in (("goreweight", core), ("torch_reference", twin)):
            f()
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
            ts.sort()
            print(f"M=2^{e} masked: {name:15s} median {ts[len(ts) // 2] * 1e3:.2f} ms, min {ts[0] * 1e3:.2f}", flush=True)


if __name__ == "__main__":
    main()
