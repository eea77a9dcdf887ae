"""Train a small byte-level GPT with goreweight in PyTorch Lightning (one process or DDP).

    pip install ".[lightning]"
    python examples/lightning_example.py                        # one process
    python examples/lightning_example.py --devices 2            # DDP on 2 processes (gloo on CPU)
    python examples/lightning_example.py --hidden-loss          # losses without full logits
    python examples/lightning_example.py --resume               # continue from OUT/last.ckpt

The module is ``ReweightingModule`` (``goreweight.integrations.lightning``): ``training_step``
returns ``self.reweighted_loss(per_sample)``, which gathers the losses of all ranks, weights the
global micro-batch at ``r = schedule(global_step)`` and returns this rank's share times the world
size. The statistics are logged once per optimizer step (``reweight/...``, CSV logs in OUT), and
the reweighter is saved in every Lightning checkpoint. The data are fixed windows of a text file,
dealt to the ranks in turn, so N ranks of batch b see what one process of batch N*b sees.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.nn as nn

import lightning.pytorch as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from goreweight import Reweighter, per_sample_loss, per_sample_loss_from_hidden, schedules
from goreweight.integrations.lightning import ReweightingModule


class Windows(torch.utils.data.Dataset):
    """Window ``i`` is bytes ``[i*stride, i*stride + seq_len + 1)`` of the text, with its index."""

    def __init__(self, data: torch.Tensor, seq_len: int, stride: int) -> None:
        self.data, self.seq_len, self.stride = data, seq_len, stride
        self.n = (len(data) - seq_len - 1) // stride + 1

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        s = i * self.stride
        return i, self.data[s : s + self.seq_len + 1]


class TinyGPT(nn.Module):
    """Token + position embedding, one causal transformer layer, output head tied to the embedding."""

    def __init__(self, seq_len: int, d: int = 32, heads: int = 2) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(256, d), nn.Embedding(seq_len, d)
        self.block = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.ln = nn.LayerNorm(d)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq_len), persistent=False)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        return self.ln(self.block(x, src_mask=self.mask[:t, :t], is_causal=True))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.hidden(idx) @ self.tok.weight.T  # logits (B, T, 256)


class LitGPT(ReweightingModule):
    def __init__(self, args: argparse.Namespace) -> None:
        sched = schedules.linear(args.r_start, args.r_end, args.max_steps)
        super().__init__(reweighter=Reweighter(args.strategy, schedule=sched))
        self.args = args
        torch.manual_seed(args.seed)  # the same initial weights on every rank
        self.net = TinyGPT(args.seq_len)
        self._dump = None
        self._last = None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        rows, window = batch
        x, y = window[:, :-1], window[:, 1:]
        if self.args.hidden_loss:  # never builds the (B, T, 256) logits
            per_sample = per_sample_loss_from_hidden(self.net.hidden(x), self.net.tok.weight, y, shift=False)
        else:
            per_sample = per_sample_loss(self.net(x), y, shift=False)
        if self.args.out and per_sample.requires_grad:
            per_sample.retain_grad()  # only to report the weights this rank applied
            self._last = (rows, per_sample)
        return self.reweighted_loss(per_sample)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        st = self.reweighter.stats
        if self._last is not None:
            rows, ps = self._last
            # d loss / d l_i = world * w_i / accum (Lightning divides by accumulate_grad_batches)
            scale = self.args.accum / self.trainer.world_size
            rec = {"step": int(st["step"]), "rows": rows.tolist(), "losses": ps.detach().tolist(),
                   "weights": (ps.grad * scale).tolist(), "stats": st}
            if self._dump is None:
                os.makedirs(self.args.out, exist_ok=True)
                self._dump = open(os.path.join(self.args.out, f"rank{self.global_rank}.jsonl"), "a")
            self._dump.write(json.dumps(rec) + "\n")
            self._dump.flush()
            self._last = None
        if self.global_rank == 0 and (batch_idx + 1) % self.args.accum == 0:
            print(f"step {int(st['step']):4d}  r {st['r']:7.3f}  loss(mean) {st['loss_mean']:.4f}  "
                  f"loss(weighted) {st['loss_weighted']:.4f}  max w*M {st['max_wm']:.3f}", flush=True)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        # Built here, after DDP has started, so the rank is known. The sampler is explicit and
        # unshuffled: rank r gets windows r, r + N, r + 2N, ..., so that N ranks of batch b see
        # exactly the windows of one process with batch N*b (Lightning's own distributed sampler
        # would shuffle them).
        with open(self.args.data, "rb") as f:
            data = torch.tensor(list(f.read()), dtype=torch.long)
        ds = Windows(data, self.args.seq_len, stride=self.args.seq_len)
        world = self.trainer.world_size
        sampler = torch.utils.data.DistributedSampler(ds, num_replicas=world, rank=self.global_rank, shuffle=False)
        return torch.utils.data.DataLoader(ds, batch_size=self.args.batch_size, sampler=sampler, drop_last=True)

    def configure_optimizers(self):
        if self.args.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.args.lr)
        return torch.optim.AdamW(self.parameters(), lr=self.args.lr, weight_decay=0.1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=argparse.__file__, help="text file, read as bytes (default: %(default)s)")
    p.add_argument("--out", default="lightning_run", help="checkpoints, CSV logs and the per-rank dumps")
    p.add_argument("--devices", type=int, default=1, help="processes; > 1 runs DDP")
    p.add_argument("--max-steps", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8, help="sequences per rank per micro-batch")
    p.add_argument("--accum", type=int, default=2, help="micro-batches per optimizer step")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--strategy", default="linupper")
    p.add_argument("--r-start", type=float, default=10.0)
    p.add_argument("--r-end", type=float, default=1.0)
    p.add_argument("--hidden-loss", action="store_true", help="per_sample_loss_from_hidden instead of logits")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    p.add_argument("--save-every", type=int, default=10, help="checkpoint every N optimizer steps")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    model = LitGPT(args)
    trainer = L.Trainer(
        accelerator="cpu", devices=args.devices, strategy="ddp" if args.devices > 1 else "auto",
        max_steps=args.max_steps, use_distributed_sampler=False, accumulate_grad_batches=args.accum, log_every_n_steps=1,
        logger=CSVLogger(args.out, name="logs"), enable_progress_bar=False, enable_model_summary=False,
        callbacks=[ModelCheckpoint(dirpath=args.out, save_last=True, every_n_train_steps=args.save_every, save_top_k=1)],
    )
    ckpt = os.path.join(args.out, "last.ckpt") if args.resume else None
    trainer.fit(model, ckpt_path=ckpt)
    if trainer.global_rank == 0:
        torch.save(model.net.state_dict(), os.path.join(args.out, "final.pt"))
        print(f"done: {trainer.global_step} steps, {trainer.world_size} process(es)", flush=True)


if __name__ == "__main__":
    main()
