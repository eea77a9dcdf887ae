"""Train a tiny, randomly initialised GPT-2 with the Hugging Face Trainer and goreweight reweighting.

    pip install "goreweight[hf]"
    python examples/hf_trainer.py                                    # one process
    torchrun --nproc_per_node 2 examples/hf_trainer.py               # DDP (gloo on CPU, NCCL on GPUs)
    python examples/hf_trainer.py --data my_corpus.txt --max-steps 500 --grad-accum 4
    python examples/hf_trainer.py --resume                           # continue from the last checkpoint

Nothing is downloaded: the model is a fresh ``GPT2Config`` with a byte-level vocabulary (256), and
the text is cut into packed windows of ``--seq-len + 1`` bytes (labels = input ids; the model
shifts them). The reweighting statistics appear in the Trainer's logs as ``reweight/*`` and in
``trainer.state.log_history``; every checkpoint folder gets ``goreweight_state.json``.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments

from goreweight import Reweighter, schedules
from goreweight.integrations.hf import ReweightingTrainer


class ByteWindows(torch.utils.data.Dataset):
    """Non-overlapping windows of a file's bytes, as ``{"input_ids", "labels"}`` (no padding)."""

    def __init__(self, path: str, seq_len: int) -> None:
        with open(path, "rb") as f:
            data = torch.tensor(list(f.read()), dtype=torch.long)
        n = len(data) // seq_len
        if n == 0:
            raise SystemExit(f"{path}: {len(data)} bytes, fewer than --seq-len {seq_len}")
        self.windows = data[: n * seq_len].view(n, seq_len)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.windows[i], "labels": self.windows[i]}


def default_data() -> str:
    """A text every Python install has: the standard library's argparse source (~100 KB)."""
    path = argparse.__file__
    return path if path and path.endswith(".py") and os.path.isfile(path) else os.path.abspath(__file__)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=default_data(), help="text file, read as bytes (default: %(default)s)")
    p.add_argument("--out", default="runs/hf_trainer", help="Trainer output_dir (checkpoints)")
    p.add_argument("--max-steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=8, help="per device")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--strategy", default="linupper")
    p.add_argument("--r-start", type=float, default=100.0)
    p.add_argument("--r-end", type=float, default=1.0)
    p.add_argument("--save-steps", type=int, default=50)
    p.add_argument("--logging-steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="resume from the last checkpoint in --out")
    p.add_argument("--dump", help="directory: each rank writes rank<N>.json, its reweight/* log records")
    args = p.parse_args()

    config = GPT2Config(
        vocab_size=256, n_positions=args.seq_len, n_embd=64, n_layer=2, n_head=4,
        bos_token_id=0, eos_token_id=0,
    )
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel(config)
    targs = TrainingArguments(
        output_dir=args.out,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, args.max_steps // 20),
        weight_decay=0.1,
        logging_steps=args.logging_steps,
        save_steps=args.save_steps,
        save_total_limit=2,
        report_to="none",  # or "tensorboard" / "wandb": the reweight/* keys go there too
        use_cpu=not torch.cuda.is_available(),
        seed=args.seed,
    )
    # r anneals from ~uniform (100) to 1 over the run, as a pure function of the Trainer's step.
    rw = Reweighter(args.strategy, schedule=schedules.cosine(args.r_start, args.r_end, args.max_steps))
    trainer = ReweightingTrainer(
        model=model, args=targs, train_dataset=ByteWindows(args.data, args.seq_len), reweighter=rw
    )
    trainer.train(resume_from_checkpoint=True if args.resume else None)
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        recs = [r for r in trainer.state.log_history if "reweight/r" in r]
        with open(os.path.join(args.dump, f"rank{trainer.args.process_index}.json"), "w") as f:
            json.dump(recs, f)
    if trainer.is_world_process_zero():
        nan = float("nan")
        for rec in trainer.state.log_history:
            if "reweight/r" in rec:
                print(
                    f"step {rec['step']:4d}  loss {rec['loss']:.4f}  r {rec['reweight/r']:8.3f}  "
                    f"loss(mean) {rec.get('reweight/loss_mean', nan):.4f}  "
                    f"max w*M {rec.get('reweight/max_wm', nan):.3f}  ESS/M {rec.get('reweight/ess_frac', nan):.3f}"
                )


if __name__ == "__main__":
    main()
