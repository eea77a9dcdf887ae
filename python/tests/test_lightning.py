"""goreweight.integrations.lightning and examples/accelerate_loop.py against independent expectations.

- one process, accumulation 2: the gradients before every optimizer step equal a manual
  computation (weights from ``goreweight.torch_reference``, a cross-entropy written here) at
  r = schedule(global_step); the averaged statistics reach the logger once per optimizer step;
- a run resumed from a Lightning checkpoint restores the saved reweighter (config and step),
  continues the schedule and ends where the uninterrupted run ends;
- examples/lightning_example.py with DDP on 2 CPU processes (gloo) agrees with one process
  holding the whole batch, and both ranks compute the same global weights;
- examples/accelerate_loop.py (gradient accumulation) runs and matches the oracle.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

L = pytest.importorskip("lightning.pytorch", reason="lightning is not installed (pip install '.[lightning]')")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import Logger  # noqa: E402

from goreweight import Reweighter, per_sample_loss, schedules, torch_reference  # noqa: E402
from goreweight.integrations.lightning import CHECKPOINT_KEY, ReweightingModule  # noqa: E402

from _integ_util import run_bounded  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
V, T, B, D = 32, 12, 4, 16


class Tokens(torch.utils.data.Dataset):
    """Fixed random token rows with a skewed distribution (losses differ between rows)."""

    def __init__(self, n: int, seed: int = 1) -> None:
        g = torch.Generator().manual_seed(seed)
        probs = torch.softmax(torch.randn(V, generator=g) * 2, 0)
        self.ids = torch.multinomial(probs, n * T, replacement=True, generator=g).view(n, T)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.ids[i]


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Embedding(V, D), nn.Linear(D, D), nn.Tanh(), nn.Linear(D, V))


class LM(ReweightingModule):
    """Records the micro-batches, the step and r of every training call, and the gradients."""

    def __init__(self, reweighter: Reweighter, seed: int = 0) -> None:
        super().__init__(reweighter=reweighter)
        self.net = tiny_net(seed)
        self.calls: list[tuple[int, torch.Tensor, float]] = []
        self.grads: list[tuple[int, list[torch.Tensor]]] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.reweighted_loss(per_sample_loss(self.net(batch), batch))
        self.calls.append((self.trainer.global_step, batch.clone(), self.reweighter.stats["r"]))
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        self.grads.append((self.trainer.global_step, [p.grad.detach().clone() for p in self.parameters()]))
        super().on_before_optimizer_step(optimizer)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(Tokens(4 * B), batch_size=B, shuffle=False)


class Recorder(Logger):
    """Keeps every metrics record the Trainer logs."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> str:
        return "0"

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.records.append((step, dict(metrics)))


def trainer(tmp_path, max_steps: int, callbacks=(), logger=False, checkpoints=False) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu", devices=1, max_steps=max_steps, accumulate_grad_batches=2, logger=logger,
        enable_checkpointing=checkpoints, callbacks=list(callbacks), enable_progress_bar=False,
        enable_model_summary=False, log_every_n_steps=1, default_root_dir=str(tmp_path),
    )


def manual_grads(net: nn.Module, batches: list[torch.Tensor], r: float) -> list[torch.Tensor]:
    """(1/G) sum_g sum_i w_i l_i with oracle weights and a cross-entropy written out here."""
    total = 0.0
    for ids in batches:
        logits = net(ids)
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1), reduction="none")
        l = ce.view(ids.shape[0], -1).mean(1)
        w = torch_reference.weights(l.detach(), strategy="linupper", r=r)
        total = total + (w * l).sum() / len(batches)
    return list(torch.autograd.grad(total, list(net.parameters())))


def test_single_process_equals_oracle(tmp_path):
    sched = schedules.linear(3.0, 0.5, 4)
    model = LM(Reweighter("linupper", schedule=sched))
    snapshots = {}

    class Snap(L.Callback):  # the parameters each optimizer step starts from
        def on_train_batch_start(self, tr, pl_module, batch, batch_idx):
            snapshots.setdefault(tr.global_step, [p.detach().clone() for p in pl_module.net.parameters()])

    rec = Recorder()
    trainer(tmp_path, 3, logger=rec, callbacks=[Snap()]).fit(model)
    assert [s for s, _ in model.grads] == [0, 1, 2]
    for step, got in model.grads:
        net = tiny_net()
        with torch.no_grad():
            for p, q in zip(net.parameters(), snapshots[step]):
                p.copy_(q)
        batches = [ids for s, ids, _ in model.calls if s == step]
        assert len(batches) == 2
        want = manual_grads(net, batches, sched(step))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert [r for _, _, r in model.calls] == [sched(s) for s, _, _ in model.calls]
    # one averaged record per optimizer step, flat keys with the prefix
    logged = [m for _, m in rec.records if "reweight/r" in m]
    assert [m["reweight/r"] for m in logged] == pytest.approx([sched(0), sched(1), sched(2)])
    assert [m["reweight/step"] for m in logged] == [0.0, 1.0, 2.0]
    assert all(m["reweight/m"] == B for m in logged)
    assert logged[-1]["reweight/max_wm"] > 1.0  # really reweighted


def test_resume_continues_schedule(tmp_path):
    sched = schedules.cosine(6.0, 0.5, 4)

    def run(out: Path, max_steps: int, ckpt=None, rw=None):
        model = LM(rw or Reweighter("linupper", schedule=sched))
        # 4 micro-batches per epoch, accumulation 2: 2 optimizer steps per epoch
        cb = ModelCheckpoint(dirpath=str(out), every_n_train_steps=2, save_top_k=-1)
        trainer(out, max_steps, callbacks=[cb], checkpoints=True).fit(model, ckpt_path=ckpt)
        return model

    full = run(tmp_path / "full", 4)
    assert [s for s, _, _ in full.calls] == [0, 0, 1, 1, 2, 2, 3, 3]
    part = tmp_path / "part"
    run(part, 2)
    ckpts = sorted(part.glob("*.ckpt"))
    assert len(ckpts) == 1
    saved = torch.load(ckpts[0], weights_only=False)[CHECKPOINT_KEY]
    assert saved["global_step"] == 2 and saved["reweighter"]["step"] == 2
    # resumed with another configuration: the saved one wins, with a warning
    with pytest.warns(UserWarning, match="replaces the one given"):
        resumed = run(part, 4, ckpt=str(ckpts[0]), rw=Reweighter("uniform"))
    assert resumed.reweighter.config == full.reweighter.config
    assert [s for s, _, _ in resumed.calls] == [2, 2, 3, 3]
    assert [r for _, _, r in resumed.calls] == [sched(2), sched(2), sched(3), sched(3)]
    for (_, a, _), (_, b, _) in zip(resumed.calls, full.calls[4:]):
        assert torch.equal(a, b)
    for p, q in zip(resumed.parameters(), full.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_checkpoint_without_state_warns_and_bad_state_raises():
    m = LM(Reweighter("linupper"))
    with pytest.warns(UserWarning, match="no 'goreweight' entry"):
        m.on_load_checkpoint({})
    with pytest.raises(ValueError, match="not a goreweight Lightning state"):
        m.on_load_checkpoint({CHECKPOINT_KEY: {"format": "other"}})
    with pytest.raises(TypeError, match="goreweight.Reweighter"):
        LM(reweighter="linupper")


def test_fabric_saves_and_restores_the_reweighter(tmp_path):
    """The docs' Fabric pattern: the Reweighter goes into fabric.save/load as a stateful object."""
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator="cpu", devices=1)
    rw = Reweighter("quadratic", schedule=schedules.linear(3.0, 1.0, 10), delta=0.5)
    for _ in range(3):
        rw(torch.rand(5) + 1.0)
    fabric.save(tmp_path / "ck.pt", {"reweighter": rw})
    other = Reweighter("uniform")
    fabric.load(tmp_path / "ck.pt", {"reweighter": other})
    assert other.config == rw.config and other.step == 3


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lightning_example_ddp_two_ranks(tmp_path):
    """examples/lightning_example.py: 2 DDP ranks (gloo) of batch 4 == 1 process of batch 8."""
    ex = ROOT / "examples" / "lightning_example.py"
    common = ["--max-steps", "3", "--accum", "2", "--seq-len", "16", "--r-start", "2", "--r-end", "0.5",
              "--optimizer", "sgd", "--lr", "0.5", "--save-every", "3"]
    one = run_bounded([sys.executable, str(ex), *common, "--batch-size", "8", "--devices", "1",
                       "--out", str(tmp_path / "one")], 180)
    assert "done: 3 steps, 1 process(es)" in one
    two = run_bounded([sys.executable, str(ex), *common, "--batch-size", "4", "--devices", "2",
                       "--out", str(tmp_path / "two")], 240)
    assert "done: 3 steps, 2 process(es)" in two
    r0, r1 = _read(tmp_path / "two" / "rank0.jsonl"), _read(tmp_path / "two" / "rank1.jsonl")
    single = _read(tmp_path / "one" / "rank0.jsonl")
    sched = schedules.linear(2.0, 0.5, 3)
    assert len(r0) == len(r1) == len(single) == 6  # 3 steps x 2 micro-batches
    for a, b, s in zip(r0, r1, single):
        assert a["step"] == b["step"] == s["step"]
        assert a["stats"] == b["stats"]  # the same global weights on both ranks
        assert a["stats"]["m"] == 8 and a["stats"]["r"] == pytest.approx(sched(a["step"]))
        losses = torch.tensor(a["losses"] + b["losses"])
        w = torch.tensor(a["weights"] + b["weights"])
        torch.testing.assert_close(w, torch_reference.weights(losses, strategy="linupper", r=sched(a["step"])),
                                   rtol=1e-4, atol=1e-6)
        # the example's sampler deals rows alternately: rank 0 has rows 0, 2, .. and rank 1 rows 1, 3, ..
        order = torch.tensor(a["rows"] + b["rows"]).argsort()
        torch.testing.assert_close(losses[order], torch.tensor(s["losses"]), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(w[order], torch.tensor(s["weights"]), rtol=1e-3, atol=1e-5)
    p1 = torch.load(tmp_path / "one" / "final.pt")
    p2 = torch.load(tmp_path / "two" / "final.pt")
    for k in p1:
        torch.testing.assert_close(p2[k], p1[k], rtol=1e-4, atol=1e-5)
    # the logged statistics and the checkpointed reweighter
    ck = torch.load(tmp_path / "two" / "last.ckpt", weights_only=False)[CHECKPOINT_KEY]
    assert ck["reweighter"]["step"] == 3


def test_accelerate_loop_example(tmp_path):
    pytest.importorskip("accelerate", reason="accelerate is not installed (pip install '.[hf]')")
    ex = ROOT / "examples" / "accelerate_loop.py"
    out = run_bounded([sys.executable, str(ex), "--steps", "3", "--accum", "2", "--batch-size", "4",
                       "--seq-len", "16", "--r-start", "2", "--r-end", "0.5", "--dump", str(tmp_path)], 180)
    assert "done: 3 optimizer steps" in out
    recs = _read(tmp_path / "rank0.jsonl")
    sched = schedules.linear(2.0, 0.5, 3)
    assert [r["step"] for r in recs] == [0, 0, 1, 1, 2, 2]
    for r in recs:
        losses = torch.tensor(r["losses"])
        want = torch_reference.weights(losses, strategy="linupper", r=sched(r["step"]))
        # d loss / d l_i = w_i / accum: the weights of the micro-batch, at the step's temperature
        torch.testing.assert_close(torch.tensor(r["weights"]), want, rtol=1e-4, atol=1e-6)
        assert r["stats"]["r"] == pytest.approx(sched(r["step"]))
