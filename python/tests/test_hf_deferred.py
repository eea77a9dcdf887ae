"""ReweightingTrainer(scope="deferred") (goreweight.DeferredGlobalBatch inside the Trainer's
loop) against independent expectations.

- with the range forced to each step's own min/max, the gradients equal those of the exact
  scope="global" (1e-5), both granularities, two strategies; with the default range (the first
  micro-batch's own on the first step) they do not, so the comparison can fail;
- at every optimizer step the gradients equal a float64 computation written here: the step's
  losses (plain forward, F.cross_entropy), normalised with the previous step's range (the first
  step: the first micro-batch's own; with range_momentum the moving average), clipped, scored,
  softmax over the whole step, autograd of sum w l; with gradient clipping, finish ran before it;
- a run resumed from an HF checkpoint ends where the uninterrupted one ends (the running range
  is in the checkpoint; without it the resumed run differs);
- 2-process gloo DDP with uneven micro-batches equals one process holding each micro-batch's
  union over the ranks;
- hidden_loss=True equals the full-logits path;
- strategies and options the deferred form refuses are ValueErrors naming them.

A tiny randomly initialised GPT-2 (no download), CPU, SGD, fixed micro-batches (no sampler).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install '.[hf]')")

import torch  # noqa: E402

from goreweight import Reweighter, schedules  # noqa: E402
from goreweight.integrations.hf import STATE_FILE, ReweightingTrainer  # noqa: E402

from _dist_util import reporting_errors, run_ranks  # noqa: E402
from test_hf_scope import (  # noqa: E402
    IGNORE, LOG_ABS, MB, Fixed, GradRecorder, Padded, grads_differ, logged, losses_of, micro_batches, rel_close,
    targs, tiny_gpt2,
)


class OwnRange(Fixed):
    """scope="deferred" with the range of every step set, before its first micro-batch, to the
    step's own min/max (from a no-grad forward over the step's micro-batches, written here)."""

    def get_batch_samples(self, it, n, *a, **k):
        batches, num = super().get_batch_samples(it, n, *a, **k)
        with torch.no_grad():
            ls = [losses_of(self.model, b["input_ids"], b["labels"], self.granularity) for b in batches]
        flat = torch.cat([x[~torch.isnan(x)].flatten() for x in ls])
        self.deferred.range = (float(flat.min()), float(flat.max()))
        return batches, num


G, STEPS = 4, 2


def _run(cls, tmp, name, data, batches, accum, steps, rw_kw, rec=None, model=None, **kw):
    tr = cls(model=model if model is not None else tiny_gpt2(), args=targs(str(tmp / name), accum, steps),
             train_dataset=data, batches=batches, callbacks=[rec] if rec else [],
             reweighter=Reweighter(**rw_kw), **kw)
    tr.train()
    return tr


@pytest.mark.parametrize("granularity", ["sequence", "token"])
@pytest.mark.parametrize("strategy", ["linupper", "quadratic"])
def test_own_range_equals_exact_global_scope(tmp_path, strategy, granularity):
    sched = schedules.linear(3.0, 0.5, STEPS)
    rw_kw = dict(strategy=strategy, schedule=sched)
    data = Padded(STEPS * G * MB)
    recs = {k: GradRecorder() for k in ("global", "own", "default")}
    runs = {
        "global": _run(Fixed, tmp_path, "g", data, micro_batches(), G, STEPS, rw_kw, recs["global"],
                       scope="global", granularity=granularity),
        "own": _run(OwnRange, tmp_path, "o", data, micro_batches(), G, STEPS, rw_kw, recs["own"],
                    scope="deferred", granularity=granularity),
        "default": _run(Fixed, tmp_path, "d", data, micro_batches(), G, STEPS, rw_kw, recs["default"],
                        scope="deferred", granularity=granularity),
    }
    assert len(recs["own"].grads) == STEPS
    for s in range(STEPS):
        rel_close(recs["own"].grads[s], recs["global"].grads[s], what=f"step {s}")
    # the comparison can fail: by default step 1 normalises with step 0's range
    assert grads_differ(recs["default"].grads[1], recs["global"].grads[1]) > 1e-4
    # no first pass: one forward (with gradients) per micro-batch
    assert [g for g, _ in runs["own"].loss_calls] == [True] * (G * STEPS)
    # r advanced once per optimizer step; the log: the step's weighted loss and the global stats
    go, gg = logged(runs["own"]), logged(runs["global"])
    assert [r["reweight/r"] for r in go] == pytest.approx([sched(0), sched(1)])
    assert runs["own"].reweighter.step == STEPS and runs["own"].deferred.step == STEPS
    for a, b in zip(go, gg):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=LOG_ABS)
        assert a["reweight/m"] == b["reweight/m"]
        for k in ("reweight/max_wm", "reweight/ess", "reweight/loss_weighted"):
            assert a[k] == pytest.approx(b[k], rel=1e-5), k
        assert a["reweight/clipped"] == 0


# ------------------------------------------------- the float64 formula of docs/scope.md


def _scores64(x: np.ndarray, lo: float, hi: float, strategy: str, delta: float = 1.0) -> np.ndarray:
    z = np.clip((2 * (x - lo) / (hi - lo) - 1) * delta, -delta, delta)
    return {"linupper": np.minimum(z + delta, delta), "quadratic": 1 - (z / delta) ** 2,
            "extremes": np.abs(z), "dro-kl": z}[strategy]


@pytest.mark.parametrize("granularity,strategy,use_ref,momentum,clip,short", [
    ("sequence", "linupper", False, 0.0, 0.0, False),
    ("token", "quadratic", True, 0.0, 0.0, False),
    ("token", "extremes", False, 0.5, 0.02, False),
    ("sequence", "dro-kl", False, 0.0, 0.0, True),  # the epoch's last step has 1 micro-batch, not 3
])
def test_gradients_equal_the_float64_formula_with_the_previous_range(tmp_path, granularity, strategy, use_ref,
                                                                      momentum, clip, short):
    g, mb, steps = 3, 3, 3
    sched = schedules.linear(2.0, 0.4, steps)
    data = Padded(steps * g * mb, seed=3)
    batches = micro_batches(steps, g, mb)
    if short:
        batches = batches[:-2]
    ref = tiny_gpt2(seed=5, layers=1) if use_ref else None
    state = {"range": None}
    seen = []

    def check(model, step):
        micro = [data.batch(b) for b in batches[step * g:(step + 1) * g]]
        ls = [losses_of(model, i, lab, granularity) for i, lab in micro]
        refs = [0.0] * g
        if ref is not None:
            with torch.no_grad():
                refs = [losses_of(ref, i, lab, granularity) for i, lab in micro]
        sc = [(x.detach() - r).double().numpy() for x, r in zip(ls, refs)]
        fin = [np.isfinite(s) for s in sc]
        allv = np.concatenate([s[f] for s, f in zip(sc, fin)])
        if state["range"] is None:  # first step: the first micro-batch's own range
            state["range"] = (sc[0][fin[0]].min(), sc[0][fin[0]].max())
        lo, hi = state["range"]
        r = sched(step)
        e = [np.where(f, np.exp(_scores64(np.where(f, s, lo), lo, hi, strategy) / r), 0.0) for s, f in zip(sc, fin)]
        z = sum(x.sum() for x in e)
        total = sum((torch.from_numpy(x / z).float() * torch.nan_to_num(l, nan=0.0)).sum() for x, l in zip(e, ls))
        want = list(torch.autograd.grad(total, list(model.parameters())))
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(w) for w in want])))
        if clip:
            want = [w * min(1.0, clip / (norm + 1e-6)) for w in want]
        rel_close([p.grad for p in model.parameters()], want, what=f"step {step}")
        seen.append((step, norm, (lo, hi)))
        b = momentum if step > 0 else 0.0  # the first step's provisional range is not averaged in
        state["range"] = (b * lo + (1 - b) * allv.min(), b * hi + (1 - b) * allv.max())

    tr = Fixed(model=tiny_gpt2(), args=targs(str(tmp_path / "run"), g, steps, max_grad_norm=clip),
               train_dataset=data, batches=batches, callbacks=[GradRecorder(check)],
               reweighter=Reweighter(strategy, schedule=sched), scope="deferred", granularity=granularity,
               reference_model=ref, range_momentum=momentum)
    tr.train()
    assert [s for s, _, _ in seen] == list(range(steps))
    rec = logged(tr)
    for r, (_, norm, (lo, hi)) in zip(rec, seen):
        if clip or "grad_norm" in r:  # (transformers 4.x logs it only when clipping)
            assert r["grad_norm"] == pytest.approx(norm, rel=1e-4)  # the norm of the 1/Z-scaled gradient
        assert r["reweight/range_lo"] == pytest.approx(lo, rel=1e-5)
        assert r["reweight/range_hi"] == pytest.approx(hi, rel=1e-5)
    if clip:
        assert any(n > clip for _, n, _ in seen)  # clipping did act, on the scaled gradients
    if short:  # 3 + 3 + 1 micro-batches: the short last step matched the formula too
        assert len(tr.loss_calls) == len(batches) == 7
    if granularity == "token":
        n = [sum(int((data[i]["labels"][1:] != IGNORE).sum()) for b in batches[s * g:(s + 1) * g] for i in b)
             for s in range(steps)]
        assert [r["reweight/m"] for r in rec] == n
    assert tr.deferred.range == pytest.approx(state["range"], rel=1e-5)
    if ref is not None:
        assert all(p.grad is None for p in ref.parameters())


# ------------------------------------------------------------------ resume


def test_resume_continues_exactly(tmp_path):
    sched = schedules.cosine(4.0, 0.5, 4)
    data = Padded(4 * 2 * MB, seed=9)

    def go(out, max_steps, resume=None):
        tr = ReweightingTrainer(model=tiny_gpt2(), args=targs(str(out), 2, max_steps, save_strategy="steps",
                                                              save_steps=2, per_device_train_batch_size=MB),
                                train_dataset=data, reweighter=Reweighter("linupper", schedule=sched),
                                scope="deferred", granularity="token")
        tr.train(resume_from_checkpoint=resume)
        return tr

    full = go(tmp_path / "full", 4)
    part = go(tmp_path / "part", 2)
    ck = tmp_path / "part" / "checkpoint-2" / STATE_FILE
    doc = json.loads(ck.read_text())
    assert doc["deferred"] == part.deferred.state_dict()  # the running range after step 2
    resumed = go(tmp_path / "part", 4, resume=True)
    assert resumed.reweighter.step == 4 and resumed.deferred.step == 4
    assert [r["reweight/r"] for r in logged(resumed)] == pytest.approx([sched(s) for s in range(4)])
    assert [r["loss"] for r in logged(resumed)] == pytest.approx([r["loss"] for r in logged(full)], rel=1e-5,
                                                                   abs=LOG_ABS)
    assert resumed.deferred.range == pytest.approx(full.deferred.range, rel=1e-6)
    for p, q in zip(resumed.model.parameters(), full.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    # the saved range is what makes it exact: without it (a warning) the resumed run differs
    del doc["deferred"]
    ck.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="no deferred-scope state"):
        fresh = go(tmp_path / "part", 4, resume=str(ck.parent))
    assert max(float((p - q).detach().abs().max()) for p, q in zip(fresh.model.parameters(), full.model.parameters())) > 1e-6


# ---------------------------------------------------------------- hidden_loss


def test_hidden_loss_equals_full_logits(tmp_path):
    data = Padded(STEPS * 2 * MB, seed=4)
    rw_kw = dict(strategy="linupper", schedule=schedules.linear(2.0, 0.5, STEPS))
    recs = {}
    head_calls = []
    for hidden in (False, True):
        recs[hidden] = GradRecorder()
        model = tiny_gpt2(layers=1)
        if hidden:
            model.get_output_embeddings().register_forward_hook(lambda mod, i, o: head_calls.append(o.shape))
        _run(Fixed, tmp_path, str(hidden), data, micro_batches(STEPS, 2), 2, STEPS, rw_kw, recs[hidden], model=model,
             scope="deferred", granularity="token", hidden_loss=hidden, hidden_chunk_size=5)
    assert head_calls == []  # the output layer never computed full logits
    assert len(recs[True].grads) == STEPS
    for s in range(STEPS):
        rel_close(recs[True].grads[s], recs[False].grads[s], what=f"step {s}")


# ---------------------------------------------------------------- bad input


def test_bad_arguments_are_clear_errors(tmp_path):
    a = targs(str(tmp_path), 2, 1)
    for kw, name in ((dict(strategy="topk", q=0.5), "topk"), (dict(strategy="truncate", q=0.5), "truncate"),
                     (dict(strategy="linupper", cap=2.0), "cap"),
                     (dict(strategy="linupper", domain_multipliers=[1.0, 2.0]), "domain_multipliers")):
        with pytest.raises(ValueError, match=f"scope='deferred' cannot use this reweighter.*{name}"):
            ReweightingTrainer(model=tiny_gpt2(), args=a, scope="deferred", reweighter=Reweighter(**kw))
        ReweightingTrainer(model=tiny_gpt2(), args=a, scope="global", reweighter=Reweighter(**kw))  # fine there
    with pytest.raises(ValueError, match="range_momentum=0.5 is an option of scope='deferred' only"):
        ReweightingTrainer(model=tiny_gpt2(), args=a, scope="global", range_momentum=0.5)
    with pytest.raises(ValueError, match="range_momentum"):
        ReweightingTrainer(model=tiny_gpt2(), args=a, scope="deferred", range_momentum=1.0)
    with pytest.raises(ValueError, match="'deferred'"):
        ReweightingTrainer(model=tiny_gpt2(), args=a, scope="defered")
    # outside the Trainer's loop (no get_batch_samples): a clear error, not unscaled gradients
    tr = ReweightingTrainer(model=tiny_gpt2(), args=a, scope="deferred")
    ids, labels = Padded(2).batch([0, 1])
    with pytest.raises(RuntimeError, match="scope='deferred'"):
        tr.compute_loss(tr.model.train(), {"input_ids": ids, "labels": labels})


# ------------------------------------------------------------------ DDP

WORLD = 2
TIMEOUT_S = 240
RANK_SIZES = [[3, 1], [2, 4]]  # per rank: G = 2 micro-batches per step, uneven
DDP_STEPS = 3
DDP_RW = dict(strategy="linupper", schedule=schedules.linear(2.0, 0.5, DDP_STEPS))


def _ddp_layout():
    """Row indices per rank per micro-batch, and (one process) each micro-batch's union over ranks."""
    per_rank: list[list[list[int]]] = [[] for _ in range(WORLD)]
    union: list[list[int]] = []
    lo = 0
    for _ in range(DDP_STEPS):
        for k in range(2):
            u = []
            for r in range(WORLD):
                n = RANK_SIZES[r][k]
                per_rank[r].append(list(range(lo, lo + n)))
                u.extend(range(lo, lo + n))
                lo += n
            union.append(u)
    return per_rank, union, lo


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    with reporting_errors(out_dir, rank):
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        torch.set_num_threads(1)
        per_rank, _, n = _ddp_layout()
        data = Padded(n, seed=11)
        rec = GradRecorder()
        tr = Fixed(model=tiny_gpt2(), args=targs(os.path.join(out_dir, f"r{rank}"), 2, DDP_STEPS, ddp_timeout=60),
                   train_dataset=data, batches=per_rank[rank], callbacks=[rec], reweighter=Reweighter(**DDP_RW),
                   scope="deferred", granularity="token", reference_model=tiny_gpt2(seed=5, layers=1))
        assert torch.distributed.is_initialized() and torch.distributed.get_world_size() == WORLD
        tr.train()
        torch.save({"grads": rec.grads, "log": logged(tr), "range": tr.deferred.range}, os.path.join(out_dir, f"rank{rank}.pt"))


def test_ddp_equals_one_process_with_the_union_batch(tmp_path, tmp_path_factory):
    ranks = run_ranks(_ddp_worker, tmp_path_factory.mktemp("hfdeferred"), WORLD, TIMEOUT_S)
    _, union, n = _ddp_layout()
    rec = GradRecorder()
    one = _run(Fixed, tmp_path, "one", Padded(n, seed=11), union, 2, DDP_STEPS, DDP_RW, rec, scope="deferred",
               granularity="token", reference_model=tiny_gpt2(seed=5, layers=1))
    for r in range(WORLD):
        got = ranks[r]
        assert len(got["grads"]) == DDP_STEPS
        for s in range(DDP_STEPS):
            rel_close(got["grads"][s], rec.grads[s], what=f"rank {r} step {s}")
        assert got["range"] == pytest.approx(one.deferred.range, rel=1e-6)
        for a, b in zip(got["log"], logged(one)):
            assert a["reweight/m"] == b["reweight/m"]
            for k in ("reweight/range_lo", "reweight/range_hi", "reweight/z", "reweight/max_wm"):
                assert a[k] == pytest.approx(b[k], rel=1e-5), k
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=LOG_ABS)
