"""goreweight.integrations.hf against independent expectations.

- uniform: loss, gradients and eval loss equal the stock ``transformers.Trainer`` (token-mean loss,
  its own num_items_in_batch scaling), with gradient accumulation and a short last accumulation;
- linupper: the gradients equal a manual computation from ``goreweight.torch_reference`` weights
  and a cross-entropy written here, micro-batch by micro-batch, at r = schedule(global_step);
- a run resumed from a checkpoint continues the schedule at the right step and ends where the
  uninterrupted run ends;
- examples/hf_trainer.py under torchrun: the 2 ranks weight one global micro-batch alike.

A tiny randomly initialised GPT-2 (no download), dropout off, CPU.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install '.[hf]')")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments  # noqa: E402

from goreweight import Reweighter, schedules, torch_reference  # noqa: E402
from goreweight.integrations.hf import STATE_FILE, ReweightingTrainer  # noqa: E402

from _integ_util import free_port, run_bounded  # noqa: E402

V, T, B = 64, 16, 4


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=V, n_positions=T, n_embd=32, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )
    return GPT2LMHeadModel(cfg)


class Rows(torch.utils.data.Dataset):
    """Random token rows; labels = input_ids, except -100 at position 0.

    Position 0 is never a target (the causal shift drops it), so the loss is unchanged; but the
    stock Trainer counts num_items_in_batch over all labels in transformers < 5 (and in 5.x for
    GPT2LMHeadModel, whose class name maps to no loss_type), which would scale its loss by
    (T-1)/T. With position 0 ignored every counting rule gives the T-1 targets per row.
    """

    def __init__(self, n: int, seed: int = 1, domains: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        # a skewed token distribution so that per-sequence losses differ and learning happens
        probs = torch.softmax(torch.randn(V, generator=g) * 2, 0)
        self.ids = torch.multinomial(probs, n * T, replacement=True, generator=g).view(n, T)
        self.dom = torch.arange(n) % 3 if domains else None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        labels = self.ids[i].clone()
        labels[0] = -100
        d = {"input_ids": self.ids[i], "labels": labels}
        if self.dom is not None:
            d["domains"] = self.dom[i]
        return d


def targs(out: str, **kw) -> TrainingArguments:
    base = dict(
        output_dir=out, per_device_train_batch_size=B, gradient_accumulation_steps=2, max_steps=3,
        learning_rate=5e-2, lr_scheduler_type="constant", optim="adamw_torch", max_grad_norm=0.0,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0, data_seed=0,
        disable_tqdm=True, dataloader_num_workers=0,
    )
    base.update(kw)
    return TrainingArguments(**base)


class GradRecorder(TrainerCallback):
    """Copies of the gradients (and, optionally, a manual check) right before each optimizer step."""

    def __init__(self, check=None) -> None:
        self.grads: list[list[torch.Tensor]] = []
        self.check = check

    def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
        self.grads.append([p.grad.detach().clone() for p in model.parameters()])
        if self.check is not None:
            self.check(model, state.global_step)


def assert_grads_close(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> None:
    assert len(a) == len(b) and len(a) > 0
    for step, (ga, gb) in enumerate(zip(a, b)):
        for pa, pb in zip(ga, gb):
            torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-7, msg=lambda m: f"step {step}: {m}")


def train_losses(trainer: Trainer) -> list[float]:
    return [r["loss"] for r in trainer.state.log_history if "loss" in r]


def test_uniform_equals_stock_trainer(tmp_path):
    # 5 micro-batches, accumulation 2: optimizer steps over 2, 2 and 1 micro-batches.
    data, evald = Rows(5 * B), Rows(2 * B, seed=7)
    runs = {}
    for name in ("stock", "uniform"):
        rec = GradRecorder()
        kw = dict(model=tiny_gpt2(), args=targs(str(tmp_path / name)), train_dataset=data,
                  eval_dataset=evald, callbacks=[rec])
        if name == "stock":
            tr = Trainer(**kw)
        else:
            tr = ReweightingTrainer(**kw, reweighter=Reweighter("uniform"))
        tr.train()
        runs[name] = (tr, rec, tr.evaluate()["eval_loss"])
    (stock, srec, seval), (ours, orec, oeval) = runs["stock"], runs["uniform"]
    assert_grads_close(orec.grads, srec.grads)
    torch.testing.assert_close(train_losses(ours), train_losses(stock), rtol=1e-5, atol=1e-4)
    assert oeval == pytest.approx(seval, rel=1e-6)
    for p, q in zip(ours.model.parameters(), stock.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
    # the statistics reach the Trainer's log
    logged = [r for r in ours.state.log_history if "loss" in r]
    assert all(r["reweight/uniform"] == 1.0 and r["reweight/max_wm"] == pytest.approx(1.0) for r in logged)
    assert [r["reweight/step"] for r in logged] == [0.0, 1.0, 2.0]


def manual_grads(model, batches, r):
    """sum over micro-batches g of sum_i w_i l_i / G, w from the oracle, l written out here."""
    params = list(model.parameters())
    total = 0.0
    for ids in batches:
        logits = model(input_ids=ids).logits
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1), reduction="none")
        l = ce.view(ids.shape[0], -1).mean(1)
        w = torch_reference.weights(l.detach(), strategy="linupper", r=r)
        total = total + (w * l).sum() / len(batches)
    return torch.autograd.grad(total, params)


class Recording(ReweightingTrainer):
    """Notes the micro-batches, the global step and the temperature of every training loss."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls: list[tuple[int, torch.Tensor, float]] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if model.training:
            self.calls.append((self.state.global_step, inputs["input_ids"].clone(), self.reweighter.stats["r"]))
        return out


def test_linupper_equals_oracle(tmp_path):
    sched = schedules.linear(4.0, 0.5, 3)
    checked = []

    def check(model, step):
        batches = [ids for s, ids, _ in tr.calls if s == step]
        want = manual_grads(model, batches, sched(step))
        got = [p.grad for p in model.parameters()]
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
        checked.append((step, len(batches)))

    rec = GradRecorder(check)
    tr = Recording(model=tiny_gpt2(), args=targs(str(tmp_path)), train_dataset=Rows(5 * B, domains=True),
                   callbacks=[rec], reweighter=Reweighter("linupper", schedule=sched))
    tr.train()
    assert checked == [(0, 2), (1, 2), (2, 1)]
    assert [r for _, _, r in tr.calls] == [sched(s) for s, _, _ in tr.calls]
    logged = [r for r in tr.state.log_history if "loss" in r]
    assert [r["reweight/r"] for r in logged] == pytest.approx([sched(0), sched(1), sched(2)])
    # the weights are not uniform, and the domain ids reached the reweighter (not the model)
    assert all(r["reweight/max_wm"] > 1.0 for r in logged[1:])
    assert sum(r["reweight/domain/0/count"] for r in logged) > 0
    # the reported loss is the weighted loss, per optimizer step
    # (transformers 4.x rounds the logged loss to 4 decimals)
    assert [r["loss"] for r in logged] == pytest.approx([r["reweight/loss_weighted"] for r in logged], abs=1e-4)


def test_resume_continues_schedule(tmp_path):
    sched = schedules.cosine(8.0, 0.5, 4)
    data = Rows(8 * B)

    def run(out, resume=None, max_steps=4):
        tr = Recording(model=tiny_gpt2(), args=targs(str(out), max_steps=max_steps, save_strategy="steps",
                                                     save_steps=2),
                       train_dataset=data, reweighter=Reweighter("linupper", schedule=sched))
        tr.train(resume_from_checkpoint=resume)
        return tr

    full = run(tmp_path / "full")
    assert [s for s, _, _ in full.calls] == [0, 0, 1, 1, 2, 2, 3, 3]
    saved = json.loads((tmp_path / "full" / "checkpoint-2" / STATE_FILE).read_text())
    assert saved["global_step"] == 2 and saved["reweighter"]["step"] == 2

    # interrupted after 2 steps, then resumed from its checkpoint with `True` (the last one)
    part = tmp_path / "part"
    run(part, max_steps=2)
    assert (part / "checkpoint-2" / STATE_FILE).is_file()
    resumed = run(part, resume=True)
    assert [s for s, _, _ in resumed.calls] == [2, 2, 3, 3]
    assert [r for _, _, r in resumed.calls] == [r for s, _, r in full.calls if s >= 2]
    assert [r for _, _, r in resumed.calls] == [sched(2), sched(2), sched(3), sched(3)]
    # same micro-batches, same final model as the uninterrupted run
    for (_, a, _), (_, b, _) in zip(resumed.calls, full.calls[4:]):
        assert torch.equal(a, b)
    for p, q in zip(resumed.model.parameters(), full.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert resumed.reweighter.step == 4


def test_resume_restores_saved_config_and_warns_without_state(tmp_path):
    sched = schedules.linear(3.0, 1.0, 10)
    tr = ReweightingTrainer(model=tiny_gpt2(), args=targs(str(tmp_path)), train_dataset=Rows(B),
                            reweighter=Reweighter("quadratic", schedule=sched, delta=0.5))
    tr.state.global_step = 7
    tr.save_reweighter_state(str(tmp_path / "ck"))
    other = ReweightingTrainer(model=tiny_gpt2(), args=targs(str(tmp_path)), train_dataset=Rows(B),
                               reweighter=Reweighter("linupper"))
    with pytest.warns(UserWarning, match="replaces the one given"):
        assert other.load_reweighter_state(str(tmp_path / "ck"))
    assert other.reweighter.config == tr.reweighter.config and other.reweighter.step == 7
    with pytest.warns(UserWarning, match="has no goreweight_state.json"):
        assert not other.load_reweighter_state(str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / STATE_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        other.load_reweighter_state(str(tmp_path / "bad"))


def test_bad_setup_is_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="goreweight.Reweighter"):
        ReweightingTrainer(model=tiny_gpt2(), args=targs(str(tmp_path)), reweighter="linupper")
    with pytest.raises(ValueError, match="label smoothing"):
        ReweightingTrainer(model=tiny_gpt2(), args=targs(str(tmp_path), label_smoothing_factor=0.1))

    class NoLabels(Rows):
        def __getitem__(self, i):
            return {"input_ids": self.ids[i]}

    tr = ReweightingTrainer(model=tiny_gpt2(), args=targs(str(tmp_path), max_steps=1), train_dataset=NoLabels(B))
    with pytest.raises(ValueError, match="needs 'labels'"):
        tr.train()


def test_masked_sequence_gets_weight_zero(tmp_path):
    # A sequence whose labels are all -100 has a NaN per-sample loss: weight 0, counted, finite loss.
    class OneMasked(Rows):
        def __getitem__(self, i):
            d = super().__getitem__(i)
            if i == 0:
                d["labels"] = torch.full_like(d["labels"], -100)
            return d

    tr = ReweightingTrainer(model=tiny_gpt2(), args=targs(str(tmp_path), max_steps=1, gradient_accumulation_steps=1),
                            train_dataset=OneMasked(B), reweighter=Reweighter("linupper", schedule=2.0))
    tr.train()
    rec = [r for r in tr.state.log_history if "loss" in r][0]
    assert rec["reweight/nonfinite"] == 1.0 and rec["reweight/valid"] == B - 1
    assert torch.isfinite(torch.tensor(rec["loss"]))
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_hf_example_two_ranks(tmp_path):
    """examples/hf_trainer.py under torchrun (2 ranks, gloo): one global micro-batch, same stats."""
    example = Path(__file__).resolve().parents[2] / "examples" / "hf_trainer.py"
    out = run_bounded([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                       "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(example),
                       "--out", str(tmp_path / "run"), "--max-steps", "4", "--batch-size", "4",
                       "--grad-accum", "2", "--logging-steps", "2", "--save-steps", "4",
                       "--r-start", "2", "--r-end", "0.5", "--dump", str(tmp_path / "dump")], 240)
    r0 = json.loads((tmp_path / "dump" / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "dump" / "rank1.json").read_text())
    assert len(r0) == 2 and r0 == r1, out[-2000:]
    assert all(r["reweight/m"] == 8 for r in r0)  # 4 per rank, gathered
    assert all(r["reweight/max_wm"] > 1.0 for r in r0)
    saved = json.loads((tmp_path / "run" / "checkpoint-4" / STATE_FILE).read_text())
    assert saved["global_step"] == 4 and saved["reweighter"]["step"] == 4


def tiny_gpt2_one_layer(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=V, n_positions=T, n_embd=32, n_layer=1, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )
    return GPT2LMHeadModel(cfg)


def test_hidden_loss_equals_full_logits(tmp_path):
    """hidden_loss=True: same losses, gradients and final model as the default (full-logits) path,
    and the output layer's own forward (which would build the (B, T, V) logits) never runs."""
    sched = schedules.linear(4.0, 0.5, 3)
    data = Rows(5 * B, domains=True)
    runs = {}
    for hidden in (False, True):
        rec = GradRecorder()
        model = tiny_gpt2_one_layer()
        head_calls = []
        model.get_output_embeddings().register_forward_hook(lambda m, i, o: head_calls.append(o.shape))
        # SGD: Adam's g/sqrt(v) would magnify float rounding in near-zero gradients
        tr = Recording(model=model, args=targs(str(tmp_path / str(hidden)), optim="sgd"), train_dataset=data,
                       callbacks=[rec],
                       reweighter=Reweighter("linupper", schedule=sched), hidden_loss=hidden, hidden_chunk_size=7)
        tr.train()
        runs[hidden] = (tr, rec, head_calls)
    (full, frec, fcalls), (hid, hrec, hcalls) = runs[False], runs[True]
    assert len(fcalls) == 5 and hcalls == []
    assert hid.model.get_output_embeddings() is hid.model.lm_head  # the layer is back after each step
    assert_grads_close(hrec.grads, frec.grads)
    for g_h, g_f in zip(hrec.grads, frec.grads):
        for a, b in zip(g_h, g_f):
            assert float((a - b).abs().max()) <= 1e-5 * max(float(b.abs().max()), 1e-12) + 1e-8
    torch.testing.assert_close(train_losses(hid), train_losses(full), rtol=1e-5, atol=1e-6)
    fl = [r for r in full.state.log_history if "loss" in r]
    hl = [r for r in hid.state.log_history if "loss" in r]
    for a, b in zip(hl, fl):
        assert a["reweight/loss_mean"] == pytest.approx(b["reweight/loss_mean"], rel=1e-5)
        assert a["reweight/max_wm"] == pytest.approx(b["reweight/max_wm"], rel=1e-4)
    for p, q in zip(hid.model.parameters(), full.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    # evaluation keeps the stock loss, with the real output layer
    assert hid.evaluate(Rows(B, seed=9))["eval_loss"] == pytest.approx(full.evaluate(Rows(B, seed=9))["eval_loss"], rel=1e-4)


def test_hidden_loss_refuses_models_it_cannot_reproduce(tmp_path):
    m = tiny_gpt2_one_layer()
    m.config.logit_scale = 0.5
    with pytest.raises(ValueError, match="logit_scale"):
        ReweightingTrainer(model=m, args=targs(str(tmp_path)), hidden_loss=True)
    m = tiny_gpt2_one_layer()
    m.lm_head = torch.nn.Sequential(m.lm_head)
    with pytest.raises(ValueError, match="torch.nn.Linear"):
        ReweightingTrainer(model=m, args=targs(str(tmp_path)), hidden_loss=True)
    with pytest.raises(TypeError, match="hidden_loss"):
        ReweightingTrainer(model=tiny_gpt2_one_layer(), args=targs(str(tmp_path)), hidden_loss="yes")
