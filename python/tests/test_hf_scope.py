"""ReweightingTrainer's scope="global", granularity="token" and reference_model against
independent expectations.

- global scope with G micro-batches gives the gradients of G=1 with a G-times larger batch
  (micro scope, the original code path), at every optimizer step, for two strategies and both
  granularities; micro scope with the same G does not (so the comparison can fail);
- the weights and gradients of every combination equal a float64 oracle written here
  (grw_oracle's weights of F.cross_entropy losses, minus a reference model's): token weights over
  the counted tokens only, masked entries exactly 0, loss sum w_ij l_ij;
- with dropout, the first (no-grad) pass replays the RNG: its losses equal the second pass's;
- the reference model gets no gradient and is in neither the checkpoint nor the optimizer;
- hidden_loss=True with the new options equals the full-logits path;
- 2-process gloo DDP with uneven micro-batches per rank (token level with a reference model) equals
  one process holding the batch.

A tiny randomly initialised GPT-2 (no download), CPU, SGD, fixed micro-batches (no sampler).
"""

from __future__ import annotations

import datetime
import os

import numpy as np
import pytest

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install '.[hf]')")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, Dataset, default_collate  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, TrainerCallback, TrainingArguments  # noqa: E402

import grw_oracle  # noqa: E402
from goreweight import Reweighter, schedules  # noqa: E402
from goreweight.integrations.hf import ReweightingTrainer  # noqa: E402

from _dist_util import reporting_errors, run_ranks  # noqa: E402

V, T = 64, 16
IGNORE = -100
LOG_ABS = 1e-4 if transformers.__version__.startswith("4.") else 0.0  # 4.x logs the loss rounded to 4 decimals


def tiny_gpt2(seed: int = 0, dropout: float = 0.0, layers: int = 2) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=V, n_positions=T, n_embd=32, n_layer=layers, n_head=2,
        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, bos_token_id=0, eos_token_id=0,
    )
    return GPT2LMHeadModel(cfg)


class Padded(Dataset):
    """Random token rows with a skewed distribution; labels = input_ids with -100 at position 0
    and on a random-length tail (padding), so rows and micro-batches count different numbers
    of tokens."""

    def __init__(self, n: int, seed: int = 1, domains: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        self.domains = domains
        probs = torch.softmax(torch.randn(V, generator=g) * 2, 0)
        self.ids = torch.multinomial(probs, n * T, replacement=True, generator=g).view(n, T)
        self.keep = torch.randint(T // 2, T + 1, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        labels = self.ids[i].clone()
        labels[0] = IGNORE
        labels[int(self.keep[i]):] = IGNORE
        d = {"input_ids": self.ids[i], "labels": labels}
        if self.domains:
            d["domains"] = torch.tensor(i % 3)
        return d

    def batch(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        b = default_collate([self[i] for i in rows])
        return b["input_ids"], b["labels"]


def targs(out: str, accum: int, steps: int, **kw) -> TrainingArguments:
    base = dict(
        output_dir=out, per_device_train_batch_size=4, gradient_accumulation_steps=accum, max_steps=steps,
        learning_rate=0.2, lr_scheduler_type="constant", optim="sgd", max_grad_norm=0.0,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0, data_seed=0,
        disable_tqdm=True, dataloader_num_workers=0,
    )
    base.update(kw)
    return TrainingArguments(**base)


class Fixed(ReweightingTrainer):
    """Trains on exactly the given micro-batches (lists of row indices), in order, and notes
    every loss computation (for the white-box checks) and the global weights of each step."""

    def __init__(self, *a, batches: list[list[int]], **kw) -> None:
        self._fixed = batches
        super().__init__(*a, **kw)
        self.loss_calls: list[tuple[bool, torch.Tensor]] = []
        self.global_weights: list[list[torch.Tensor]] = []

    def get_train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_dataset, batch_sampler=self._fixed, collate_fn=default_collate)

    def _losses(self, model, inputs, labels):
        out, losses = super()._losses(model, inputs, labels)
        if model is not self.reference_model:
            self.loss_calls.append((losses.requires_grad, losses.detach().clone()))
        return out, losses

    def _first_pass(self, model, st):
        super()._first_pass(model, st)
        self.global_weights.append([w.clone() for w in st.gb.weights])


class GradRecorder(TrainerCallback):
    """Copies of the gradients right before each optimizer step, and an optional check."""

    def __init__(self, check=None) -> None:
        self.grads: list[list[torch.Tensor]] = []
        self.check = check

    def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
        self.grads.append([p.grad.detach().clone() for p in model.parameters()])
        if self.check is not None:
            self.check(model, state.global_step)


def rel_close(got: list[torch.Tensor], want: list[torch.Tensor], rtol: float = 1e-5, what: str = "") -> None:
    """Every tensor within rtol of the largest magnitude of its expectation."""
    assert len(got) == len(want) and got
    for i, (a, b) in enumerate(zip(got, want)):
        scale = max(float(b.abs().max()), 1e-30)
        err = float((a - b).abs().max())
        assert err <= rtol * scale + 1e-12, f"{what} tensor {i}: max error {err:.3g}, scale {scale:.3g}"


def grads_differ(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) / max(float(y.abs().max()), 1e-30) for x, y in zip(a, b))


def run(tmp, name, data, batches, accum, steps, rw_kw, model=None, rec=None, **kw) -> Fixed:
    tr = Fixed(model=model if model is not None else tiny_gpt2(), args=targs(str(tmp / name), accum, steps),
               train_dataset=data, batches=batches, callbacks=[rec] if rec else [],
               reweighter=Reweighter(**rw_kw), **kw)
    tr.train()
    return tr


def logged(tr) -> list[dict]:
    return [r for r in tr.state.log_history if "loss" in r]


# ------------------------------------------------------- the independent oracle


def token_ce(model, ids, labels) -> torch.Tensor:
    """(B, T-1) cross-entropy written here, NaN where the label is ignored."""
    logits = model(input_ids=ids).logits[:, :-1]
    tgt = labels[:, 1:]
    ce = F.cross_entropy(logits.reshape(-1, V), tgt.clamp_min(0).reshape(-1), reduction="none").view(tgt.shape)
    return torch.where(tgt != IGNORE, ce, torch.full_like(ce, float("nan")))


def losses_of(model, ids, labels, granularity):
    tok = token_ce(model, ids, labels)
    if granularity == "token":
        return tok
    counted = ~torch.isnan(tok)
    return torch.where(counted, tok, torch.zeros_like(tok)).sum(1) / counted.sum(1)


def oracle_weights(losses: list[torch.Tensor], refs, rw_kw, r) -> list[torch.Tensor]:
    """float64 weights (grw_oracle) over the counted entries of all the given micro-batches,
    scattered back into each one's shape (exactly 0 where not counted)."""
    scores = [l.detach() - (0 if ref is None else ref) for l, ref in zip(losses, refs)]
    counted = [~torch.isnan(s) for s in scores]
    flat = torch.cat([s[c] for s, c in zip(scores, counted)]).float().numpy()
    kw = {k: v for k, v in rw_kw.items() if k in ("strategy", "delta", "q")}
    w = torch.from_numpy(grw_oracle.weights(flat, r=r, **kw))
    out, lo = [], 0
    for s, c in zip(scores, counted):
        full = torch.zeros(s.shape, dtype=torch.float64)
        n = int(c.sum())
        full[c] = w[lo: lo + n]
        out.append(full)
        lo += n
    return out


def oracle_grads(model, micro, rw_kw, r, granularity, scope, ref_model=None):
    """(grads, weights) of one optimizer step: sum over the step's micro-batches of sum w l (global
    scope: one set of weights over all of them; micro: per micro-batch, divided by G)."""
    ls = [losses_of(model, i, l, granularity) for i, l in micro]
    refs = [None] * len(micro)
    if ref_model is not None:
        with torch.no_grad():
            refs = [losses_of(ref_model, i, l, granularity) for i, l in micro]
    if scope == "global":
        ws = oracle_weights(ls, refs, rw_kw, r)
        scale = 1.0
    else:
        ws = [oracle_weights([l], [ref], rw_kw, r)[0] for l, ref in zip(ls, refs)]
        scale = 1.0 / len(micro)
    total = sum(((w.float() * torch.nan_to_num(l, nan=0.0)).sum() * scale) for w, l in zip(ws, ls))
    return list(torch.autograd.grad(total, list(model.parameters()))), ws


# ------------------------------------------- global scope == one G-times larger batch


G, MB = 4, 4  # micro-batches per step, rows per micro-batch
STEPS = 2


def micro_batches(n_steps=STEPS, g=G, mb=MB) -> list[list[int]]:
    return [list(range(k * mb, (k + 1) * mb)) for k in range(n_steps * g)]


def big_batches(n_steps=STEPS, g=G, mb=MB) -> list[list[int]]:
    return [list(range(s * g * mb, (s + 1) * g * mb)) for s in range(n_steps)]


@pytest.mark.parametrize("granularity", ["sequence", "token"])
@pytest.mark.parametrize("strategy", ["linupper", "quadratic"])
def test_global_scope_equals_one_big_batch(tmp_path, strategy, granularity):
    sched = schedules.linear(3.0, 0.5, STEPS)  # a different r at each step
    rw_kw = dict(strategy=strategy, schedule=sched)
    data = Padded(STEPS * G * MB)
    evald = Padded(8, seed=7)
    big_rec, glob_rec = GradRecorder(), GradRecorder()
    big = run(tmp_path, "big", data, big_batches(), 1, STEPS, rw_kw, rec=big_rec, granularity=granularity)
    glob = Fixed(model=tiny_gpt2(), args=targs(str(tmp_path / "glob"), G, STEPS, eval_strategy="steps", eval_steps=1),
                 train_dataset=data, eval_dataset=evald, batches=micro_batches(), callbacks=[glob_rec],
                 reweighter=Reweighter(**rw_kw), scope="global", granularity=granularity)
    glob.train()  # evaluates after every step: the next step's first pass must not mind
    assert len(glob_rec.grads) == STEPS
    for s in range(STEPS):
        rel_close(glob_rec.grads[s], big_rec.grads[s], what=f"step {s}")
    # one first pass (no grad) and one second pass per micro-batch
    assert [g for g, _ in glob.loss_calls] == ([False] * G + [True] * G) * STEPS
    # r advanced once per optimizer step; the statistics are those of the global batch
    gl, bl = logged(glob), logged(big)
    assert [r["reweight/r"] for r in gl] == pytest.approx([sched(0), sched(1)])
    assert glob.reweighter.step == STEPS
    for a, b in zip(gl, bl):
        for k in ("reweight/m", "reweight/max_wm", "reweight/ess", "reweight/loss_weighted"):
            assert a[k] == pytest.approx(b[k], rel=1e-5), k
        # the logged loss is the weighted loss of the step: no double 1/G scaling
        # (transformers 4.x rounds the logged loss to 4 decimals)
        assert a["loss"] == pytest.approx(a["reweight/loss_weighted"], rel=1e-5, abs=LOG_ABS)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=LOG_ABS)
    n_counted = sum(int((data[i]["labels"][1:] != IGNORE).sum()) for i in big_batches()[0])
    assert gl[0]["reweight/m"] == (n_counted if granularity == "token" else G * MB)
    # evaluation keeps the stock token-mean loss
    evals = [r["eval_loss"] for r in glob.state.log_history if "eval_loss" in r]
    assert len(evals) == STEPS
    ids, labels = evald.batch(list(range(len(evald))))
    with torch.no_grad():
        tok = token_ce(glob.model.eval(), ids, labels)
    assert evals[-1] == pytest.approx(float(tok.nanmean()), rel=1e-5)


def test_micro_scope_with_accumulation_differs_from_one_big_batch(tmp_path):
    # the test above can fail: per-micro-batch weights give other gradients
    rw_kw = dict(strategy="linupper", schedule=0.5)
    data = Padded(G * MB)
    big_rec, micro_rec = GradRecorder(), GradRecorder()
    run(tmp_path, "big", data, big_batches(1), 1, 1, rw_kw, rec=big_rec)
    run(tmp_path, "micro", data, micro_batches(1), G, 1, rw_kw, rec=micro_rec)
    assert grads_differ(micro_rec.grads[0], big_rec.grads[0]) > 1e-3


# ---------------------------------------------- every combination vs the float64 oracle


@pytest.mark.parametrize("scope,granularity,strategy,use_ref", [
    ("global", "token", "linupper", False),
    ("micro", "token", "quadratic", False),
    ("global", "sequence", "quadratic", True),
    ("micro", "token", "linupper", True),
    ("global", "token", "quadratic", True),
])
def test_weights_and_gradients_equal_float64_oracle(tmp_path, scope, granularity, strategy, use_ref):
    g, mb, steps = 3, 3, 2
    sched = schedules.linear(2.0, 0.4, steps)
    rw_kw = dict(strategy=strategy, schedule=sched)
    data = Padded(steps * g * mb, seed=3, domains=granularity == "token")  # domain ids: one per sequence
    batches = micro_batches(steps, g, mb)
    ref = tiny_gpt2(seed=5, layers=1) if use_ref else None
    ref_before = [p.detach().clone() for p in ref.parameters()] if ref is not None else []
    seen = []

    def check(model, step):
        micro = [data.batch(b) for b in batches[step * g:(step + 1) * g]]
        want, ws = oracle_grads(model, micro, rw_kw, sched(step), granularity, scope, ref)
        rel_close([p.grad for p in model.parameters()], want, what=f"step {step}")
        seen.append((step, ws, micro))

    tr = run(tmp_path, "run", data, batches, g, steps, rw_kw, rec=GradRecorder(check), scope=scope,
             granularity=granularity, reference_model=ref)
    assert [s for s, _, _ in seen] == list(range(steps))
    if scope == "global":
        # the weights themselves: float64 oracle of the counted entries, exactly 0 elsewhere
        assert len(tr.global_weights) == steps
        for got, (_, want, micro) in zip(tr.global_weights, seen):
            for w, o, (_, labels) in zip(got, want, micro):
                assert w.dtype == torch.float32 and w.shape == o.shape
                torch.testing.assert_close(w.double(), o, rtol=1e-5, atol=1e-9)
                if granularity == "token":
                    assert torch.equal(w == 0, o == 0) and (w[labels[:, 1:] == IGNORE] == 0).all()
            assert float(sum(w.double().sum() for w in got)) == pytest.approx(1.0, abs=1e-6)
    rec = logged(tr)
    n = [sum(int((data[i]["labels"][1:] != IGNORE).sum()) for b in batches[s * g:(s + 1) * g] for i in b)
         for s in range(steps)]
    if scope == "global" and granularity == "token":
        assert [r["reweight/m"] for r in rec] == n
    if granularity == "token":
        # the domain ids reached the reweighter, one per sequence, applied to its counted tokens
        for r in rec:
            assert sum(r[f"reweight/domain/{d}/count"] for d in range(3)) == pytest.approx(r["reweight/m"])
    if ref is not None:
        # the reference model: untouched, no gradients, eval mode, not in the optimizer
        assert all(p.grad is None for p in ref.parameters())
        assert all(torch.equal(p, q) for p, q in zip(ref.parameters(), ref_before))
        assert not ref.training
        opt_params = {id(p) for grp in tr.optimizer.param_groups for p in grp["params"]}
        assert not any(id(p) in opt_params for p in ref.parameters())


def test_reference_model_is_not_checkpointed(tmp_path):
    from safetensors.torch import load_file

    data = Padded(4 * MB)
    ref = tiny_gpt2(seed=5, layers=1)
    model = tiny_gpt2()
    tr = Fixed(model=model, args=targs(str(tmp_path / "ck"), 2, 2, save_strategy="steps", save_steps=2),
               train_dataset=data, batches=micro_batches(2, 2), reweighter=Reweighter("linupper", schedule=1.0),
               scope="global", granularity="token", reference_model=ref)
    tr.train()
    folder = tmp_path / "ck" / "checkpoint-2"
    saved = load_file(str(folder / "model.safetensors"))
    own = {k for k in model.state_dict()}
    assert set(saved) <= own  # tied weights may be saved once
    for k, v in saved.items():
        torch.testing.assert_close(v, model.state_dict()[k])
    opt = torch.load(folder / "optimizer.pt", weights_only=False)
    assert len(opt["state"]) <= len(list(model.parameters()))
    assert sum(len(g["params"]) for g in opt["param_groups"]) == len(list(model.parameters()))


# ------------------------------------------------------------------- dropout


def test_first_pass_replays_dropout(tmp_path):
    """With dropout the first pass sees the second pass's dropout masks (the RNG is replayed):
    the weights are those of the losses backpropagated, and the run draws the random numbers
    micro scope draws (so with uniform weights both give the same gradients)."""
    data = Padded(2 * G * MB)
    rw_kw = dict(strategy="uniform")
    recs = {}
    runs = {}
    for scope in ("micro", "global"):
        recs[scope] = GradRecorder()
        runs[scope] = run(tmp_path, scope, data, micro_batches(), G, STEPS, rw_kw, rec=recs[scope],
                          model=tiny_gpt2(dropout=0.3), scope=scope)
    calls = runs["global"].loss_calls
    for s in range(STEPS):
        first = calls[2 * G * s: 2 * G * s + G]
        second = calls[2 * G * s + G: 2 * G * (s + 1)]
        for (g1, a), (g2, b) in zip(first, second):
            assert not g1 and g2 and torch.equal(a, b)
    # dropout is on: the losses are not the deterministic (eval-mode) ones
    ids, labels = data.batch(micro_batches()[0])
    with torch.no_grad():
        det = losses_of(tiny_gpt2(dropout=0.3).eval(), ids, labels, "sequence")
    assert float((calls[0][1] - det).abs().max()) > 1e-3
    # uniform per sequence with equal micro-batches: micro scope == global scope, same masks
    for s in range(STEPS):
        rel_close(recs["global"].grads[s], recs["micro"].grads[s], what=f"step {s}")


# ---------------------------------------------------------------- hidden_loss


def test_hidden_loss_with_global_token_reference(tmp_path):
    data = Padded(STEPS * 2 * MB, seed=4)
    rw_kw = dict(strategy="linupper", schedule=schedules.linear(2.0, 0.5, STEPS))
    recs = {}
    head_calls = []
    for hidden in (False, True):
        recs[hidden] = GradRecorder()
        model = tiny_gpt2(layers=1)
        ref = tiny_gpt2(seed=6, layers=1)
        if hidden:
            for m in (model, ref):
                m.get_output_embeddings().register_forward_hook(lambda mod, i, o: head_calls.append(o.shape))
        run(tmp_path, str(hidden), data, micro_batches(STEPS, 2), 2, STEPS, rw_kw, model=model, rec=recs[hidden],
            scope="global", granularity="token", reference_model=ref, hidden_loss=hidden, hidden_chunk_size=5)
    assert head_calls == []  # neither model's output layer computed full logits
    for s in range(STEPS):
        rel_close(recs[True].grads[s], recs[False].grads[s], what=f"step {s}")


# ---------------------------------------------------------------- bad input


def test_bad_arguments_are_clear_errors(tmp_path):
    a = targs(str(tmp_path), 2, 1)
    with pytest.raises(ValueError, match="scope must be 'micro' or 'global'"):
        ReweightingTrainer(model=tiny_gpt2(), args=a, scope="Global")
    with pytest.raises(ValueError, match="granularity must be 'sequence' or 'token'"):
        ReweightingTrainer(model=tiny_gpt2(), args=a, granularity="tokens")
    with pytest.raises(TypeError, match="reference_model must be a torch.nn.Module"):
        ReweightingTrainer(model=tiny_gpt2(), args=a, reference_model="gpt2")
    m = tiny_gpt2()
    with pytest.raises(ValueError, match="reference_model must be a separate model"):
        ReweightingTrainer(model=m, args=a, reference_model=m)
    with pytest.raises(ValueError, match="reference_model must be a separate model"):
        ReweightingTrainer(model=m, args=a, reference_model=m.transformer)
    bad_ref = tiny_gpt2(layers=1)
    bad_ref.lm_head = torch.nn.Sequential(bad_ref.lm_head)
    with pytest.raises(ValueError, match="hidden_loss=True with reference_model.*torch.nn.Linear"):
        ReweightingTrainer(model=tiny_gpt2(), args=a, hidden_loss=True, reference_model=bad_ref)
    # scope="global" outside the Trainer's loop (no get_batch_samples): a clear error
    tr = ReweightingTrainer(model=tiny_gpt2(), args=a, scope="global")
    d = Padded(2)
    ids, labels = d.batch([0, 1])
    with pytest.raises(RuntimeError, match="scope='global'"):
        tr.compute_loss(tr.model.train(), {"input_ids": ids, "labels": labels})


# ------------------------------------------------------------------ DDP

WORLD = 2
TIMEOUT_S = 240
# per rank: G = 2 micro-batches per step, uneven across micro-batches and ranks; 2 steps
RANK_SIZES = [[3, 1], [2, 4]]
DDP_STEPS = 2


def _ddp_layout():
    """Row indices per rank per micro-batch, and the global batch of each step."""
    per_rank: list[list[list[int]]] = [[] for _ in range(WORLD)]
    glob: list[list[int]] = []
    lo = 0
    for _ in range(DDP_STEPS):
        step = []
        for r in range(WORLD):
            for n in RANK_SIZES[r]:
                per_rank[r].append(list(range(lo, lo + n)))
                step.extend(range(lo, lo + n))
                lo += n
        glob.append(step)
    return per_rank, glob, lo


DDP_RW = dict(strategy="linupper", schedule=schedules.linear(2.0, 0.5, DDP_STEPS))


def _ddp_reference(granularity: str):
    """Token level runs with a reference model (on every rank, not wrapped in DDP)."""
    return tiny_gpt2(seed=5, layers=1) if granularity == "token" else None


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    with reporting_errors(out_dir, rank):
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        torch.set_num_threads(1)
        per_rank, _, n = _ddp_layout()
        data = Padded(n, seed=11)
        res = {}
        for gran in ("sequence", "token"):
            rec = GradRecorder()
            tr = Fixed(model=tiny_gpt2(), args=targs(os.path.join(out_dir, f"{gran}{rank}"), 2, DDP_STEPS,
                                                     ddp_timeout=60),
                       train_dataset=data, batches=per_rank[rank], callbacks=[rec],
                       reweighter=Reweighter(**DDP_RW), scope="global", granularity=gran,
                       reference_model=_ddp_reference(gran))
            assert torch.distributed.is_initialized() and torch.distributed.get_world_size() == WORLD
            tr.train()
            res[gran] = {"grads": rec.grads, "log": logged(tr), "step": tr.reweighter.step}
        torch.save(res, os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.fixture(scope="module")
def ddp_ranks(tmp_path_factory):
    return run_ranks(_ddp_worker, tmp_path_factory.mktemp("hfscope"), WORLD, TIMEOUT_S)


@pytest.mark.parametrize("granularity", ["sequence", "token"])
def test_ddp_global_scope_equals_one_process_big_batch(tmp_path, ddp_ranks, granularity):
    _, glob, n = _ddp_layout()
    data = Padded(n, seed=11)
    rec = GradRecorder()
    big = run(tmp_path, "big", data, glob, 1, DDP_STEPS, DDP_RW, rec=rec, granularity=granularity,
              reference_model=_ddp_reference(granularity))
    for r in range(WORLD):
        got = ddp_ranks[r][granularity]
        assert got["step"] == DDP_STEPS
        for s in range(DDP_STEPS):
            rel_close(got["grads"][s], rec.grads[s], what=f"rank {r} step {s}")
        for a, b in zip(got["log"], logged(big)):
            assert a["reweight/m"] == b["reweight/m"]
            assert a["reweight/max_wm"] == pytest.approx(b["reweight/max_wm"], rel=1e-5)
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=LOG_ABS)


# ------------------------------------------- uniform tokens == the stock Trainer; resume


def test_uniform_token_global_equals_stock_trainer(tmp_path):
    """Uniform weights over every counted token of the accumulated batch are the stock Trainer's
    loss (token mean over the step, num_items_in_batch): same gradients, also with padding."""
    from transformers import Trainer

    class StockFixed(Trainer):
        def get_train_dataloader(self) -> DataLoader:
            return DataLoader(self.train_dataset, batch_sampler=micro_batches(), collate_fn=default_collate)

    data = Padded(STEPS * G * MB, seed=8)
    stock_rec, ours_rec = GradRecorder(), GradRecorder()
    StockFixed(model=tiny_gpt2(), args=targs(str(tmp_path / "stock"), G, STEPS), train_dataset=data,
               callbacks=[stock_rec]).train()
    run(tmp_path, "ours", data, micro_batches(), G, STEPS, dict(strategy="uniform"), rec=ours_rec,
        scope="global", granularity="token")
    for s in range(STEPS):
        rel_close(ours_rec.grads[s], stock_rec.grads[s], what=f"step {s}")


def test_global_scope_resume_continues_exactly(tmp_path):
    """A run resumed from a checkpoint (written between optimizer steps) ends where the
    uninterrupted one ends, at the same temperatures (the Trainer's own sampler and resume)."""
    sched = schedules.cosine(4.0, 0.5, 4)
    data = Padded(4 * 2 * MB, seed=9)

    def go(out, max_steps, resume=None):
        tr = ReweightingTrainer(model=tiny_gpt2(), args=targs(str(out), 2, max_steps, save_strategy="steps",
                                                              save_steps=2, per_device_train_batch_size=MB),
                                train_dataset=data, reweighter=Reweighter("linupper", schedule=sched),
                                scope="global", granularity="token")
        tr.train(resume_from_checkpoint=resume)
        return tr

    full = go(tmp_path / "full", 4)
    go(tmp_path / "part", 2)
    resumed = go(tmp_path / "part", 4, resume=True)
    # (the resumed history starts with the checkpoint's records of steps 0 and 1)
    assert [r["reweight/r"] for r in logged(resumed)] == pytest.approx([sched(s) for s in range(4)])
    assert [r["loss"] for r in logged(resumed)] == pytest.approx([r["loss"] for r in logged(full)], rel=1e-5, abs=LOG_ABS)
    assert [r["reweight/r"] for r in logged(full)] == pytest.approx([sched(s) for s in range(4)])
    assert resumed.reweighter.step == 4
    for p, q in zip(resumed.model.parameters(), full.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
