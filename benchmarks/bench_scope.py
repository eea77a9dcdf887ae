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
padding masks, reference losses, the compacting path it replaced). With
--hf it times optimizer steps of goreweight.integrations.hf.ReweightingTrainer
on a small GPT-2 (transformers): scope="micro" against scope="global" (exact)
and scope="deferred" (approximate), each without and with a reference model
of the same size, alternating in one process (--rounds rounds of --reps
steps each). See docs/scope.md and
docs/integrations.md.
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
    ap.add_argument("--hf", action="store_true", help="time the Hugging Face ReweightingTrainer: micro/global/deferred scope, +/- reference")
    ap.add_argument("--rounds", type=int, default=2, help="--hf: alternating rounds over the six configurations")
    a = ap.parse_args()
    if a.hf:
        hf_bench(a)
        return
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


def hf_bench(a: argparse.Namespace) -> None:
    """ReweightingTrainer steps: scope micro/global/deferred x reference none/same-size, alternating."""
    import logging
    import tempfile

    import transformers
    import transformers.trainer_callback
    from transformers import GPT2Config, GPT2LMHeadModel, TrainerCallback, TrainingArguments

    from goreweight.integrations.hf import ReweightingTrainer

    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    v, d = 256, 64
    cfg = dict(vocab_size=v, n_positions=a.seq, n_embd=d, n_layer=2, n_head=4, resid_pdrop=0.0,
               embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)

    def gpt2(seed: int) -> GPT2LMHeadModel:
        torch.manual_seed(seed)
        return GPT2LMHeadModel(GPT2Config(**cfg))

    warm = 2
    steps = warm + a.reps
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, v, (steps * a.accum * a.micro, a.seq), generator=g)

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(ids)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": ids[i], "labels": ids[i]}

    class Clock(TrainerCallback):
        """Wall and process CPU time of each optimizer step (on_step_begin .. on_step_end)."""

        def __init__(self) -> None:
            self.t: list[tuple[float, float]] = []
            self.t0 = (0.0, 0.0)

        def on_step_begin(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            self.t0 = (time.perf_counter(), time.process_time())

        def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            self.t.append((time.perf_counter() - self.t0[0], time.process_time() - self.t0[1]))

    def med(x: list[float]) -> float:
        return sorted(x)[len(x) // 2]

    gran = "token" if a.granularity == "token" else "sequence"
    configs = [(sc, ref) for ref in (False, True) for sc in ("micro", "global", "deferred")]
    res: dict[tuple[str, bool], list[tuple[float, float]]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.rounds):
            for scope, ref in configs:
                clock = Clock()
                targs = TrainingArguments(
                    output_dir=tmp, per_device_train_batch_size=a.micro, gradient_accumulation_steps=a.accum,
                    max_steps=steps, learning_rate=1e-3, optim="sgd", logging_steps=10**6, save_strategy="no",
                    report_to="none", use_cpu=True, disable_tqdm=True, dataloader_num_workers=0,
                )
                tr = ReweightingTrainer(
                    model=gpt2(0), args=targs, train_dataset=Rows(), callbacks=[clock], scope=scope,
                    granularity=gran, reference_model=gpt2(1) if ref else None,
                )
                tr.remove_callback(transformers.trainer_callback.PrinterCallback)
                tr.train()
                res[(scope, ref)].extend(clock.t[warm:])
                wall, cpu = [t[0] for t in clock.t[warm:]], [t[1] for t in clock.t[warm:]]
                print(f"hf {gran} {scope:8s} reference={'same-size' if ref else 'none':9s}: "
                      f"wall median {med(wall) * 1e3:.1f} ms/step (min {min(wall) * 1e3:.1f}), "
                      f"CPU median {med(cpu) * 1e3:.1f} (min {min(cpu) * 1e3:.1f})", flush=True)
    bw = med([t[0] for t in res[("micro", False)]])
    bc = med([t[1] for t in res[("micro", False)]])
    print(f"all rounds ({a.rounds} x {a.reps} steps each), G={a.accum} micro-batches of {a.micro}x{a.seq}, "
          "medians relative to micro scope without reference:")
    for c in configs:
        w, cp = med([t[0] for t in res[c]]), med([t[1] for t in res[c]])
        print(f"  {c[0]:8s} reference={'same-size' if c[1] else 'none':9s}: wall {w * 1e3:.1f} ms ({w / bw - 1:+.0%}), "
              f"CPU {cp * 1e3:.1f} ms ({cp / bc - 1:+.0%})")


if __name__ == "__main__":
    main()
