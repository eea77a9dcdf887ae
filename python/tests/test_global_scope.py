"""Global scope under gradient accumulation: GlobalBatch over G
micro-batches gives the parameter gradients of one step on the whole
batch (single process and 2-process gloo DDP), at sequence and token level."""

from __future__ import annotations

import datetime
import os

import pytest
import torch
import torch.distributed as dist

import goreweight
from _dist_util import reporting_errors, run_ranks

MICRO = [3, 2, 4, 3]  # uneven micro-batches, G = 4
RW = dict(strategy="linupper", schedule=0.3)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _data(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def _per_sample(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y, reduction="none")


def _split(x, sizes):
    return list(torch.split(x, sizes))


def _accumulated_grads(model, xs, ys, rw):
    """The documented plain-loop pattern: a no-grad pass, the weights once,
    then forward/backward per micro-batch."""
    with torch.no_grad():
        first = [_per_sample(model, x, y) for x, y in zip(xs, ys)]
    gb = goreweight.GlobalBatch(rw, first)
    for k, (x, y) in enumerate(zip(xs, ys)):
        gb.loss(k, _per_sample(model, x, y)).backward()
    return [p.grad.clone() for p in model.parameters()], gb


def _close(a, b, rtol=1e-5):
    for g, h in zip(a, b):
        torch.testing.assert_close(g, h, rtol=rtol, atol=1e-7)


def test_accumulated_gradients_equal_one_big_batch():
    x, y = _data(sum(MICRO))
    big = _model()
    rw_big = goreweight.Reweighter(**RW)
    rw_big(_per_sample(big, x, y)).backward()
    want = [p.grad.clone() for p in big.parameters()]

    model = _model()
    rw = goreweight.Reweighter(**RW)
    got, gb = _accumulated_grads(model, _split(x, MICRO), _split(y, MICRO), rw)
    _close(got, want)
    assert rw.step == 1  # r advanced once for the optimizer step
    assert rw.stats["m"] == sum(MICRO) and rw.stats == rw_big.stats
    w = torch.cat(gb.weights)
    torch.testing.assert_close(w, goreweight.weights(_per_sample(big, x, y).detach(), "linupper", 0.3))
    assert len(gb) == len(MICRO)


def test_micro_scope_would_give_other_gradients():
    # the test above can fail: weighting each micro-batch on its own differs
    x, y = _data(sum(MICRO))
    big = _model()
    goreweight.Reweighter(**RW)(_per_sample(big, x, y)).backward()
    model = _model()
    rw = goreweight.Reweighter(**RW)
    for xs, ys in zip(_split(x, MICRO), _split(y, MICRO)):
        (rw(_per_sample(model, xs, ys)) / len(MICRO)).backward()
    diff = max(float((p.grad - q.grad).abs().max()) for p, q in zip(model.parameters(), big.parameters()))
    assert diff > 1e-3


def _lm():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Embedding(7, 5), torch.nn.Linear(5, 7))


def _tokens(b, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 7, (b, 6), generator=g)
    labels = ids.clone()
    labels[torch.rand(b, 6, generator=g) < 0.3] = -100
    return ids, labels


def test_token_level_global_scope_with_references_equals_one_big_batch():
    ids, labels = _tokens(7, 2)
    sizes = [2, 3, 2]
    ref_model = torch.nn.Sequential(torch.nn.Embedding(7, 5), torch.nn.Linear(5, 7))
    with torch.no_grad():
        ref = goreweight.per_token_loss(ref_model(ids), labels)
    big = _lm()
    goreweight.Reweighter("topk", schedule=1.0, q=0.5)(goreweight.per_token_loss(big(ids), labels), reference=ref).backward()
    want = [p.grad.clone() for p in big.parameters()]

    model = _lm()
    rw = goreweight.Reweighter("topk", schedule=1.0, q=0.5)
    mi, ml, mr = _split(ids, sizes), _split(labels, sizes), _split(ref, sizes)
    with torch.no_grad():
        first = [goreweight.per_token_loss(model(i), l) for i, l in zip(mi, ml)]
    gb = goreweight.GlobalBatch(rw, first, references=mr)
    for k in range(len(sizes)):
        gb.loss(k, goreweight.per_token_loss(model(mi[k]), ml[k])).backward()
    _close([p.grad for p in model.parameters()], want)
    counted = int((labels[:, 1:] != -100).sum())
    assert rw.stats["m"] == counted and rw.stats["nonfinite"] == 0
    for w, l in zip(gb.weights, ml):
        assert w.shape == l[:, 1:].shape and (w[l[:, 1:] == -100] == 0).all()
    assert goreweight.global_batch_weights(goreweight.Reweighter("topk", schedule=1.0, q=0.5), first, references=mr)[1].shape == (3, 5)


def test_global_batch_checks_its_arguments():
    rw = goreweight.Reweighter()
    with pytest.raises(ValueError, match="micro_losses"):
        goreweight.GlobalBatch(rw, [])
    with pytest.raises(ValueError, match="masks"):
        goreweight.GlobalBatch(rw, [torch.rand(3)], masks=[None, None])
    with pytest.raises(TypeError, match="reweighter"):
        goreweight.GlobalBatch(object(), [torch.rand(3)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"micro_losses\[1\]"):
        goreweight.GlobalBatch(rw, [torch.rand(3), torch.rand(2, 2, 2)])
    assert rw.step == 0  # failed calls do not advance
    gb = goreweight.GlobalBatch(rw, [torch.rand(3), torch.rand(2)])
    with pytest.raises(ValueError, match="shape"):
        gb.loss(0, torch.rand(2))
    with pytest.raises(ValueError, match="micro-batch index"):
        gb.loss(2, torch.rand(2))


# ------------------------------------------------------------- distributed

WORLD = 2
TIMEOUT_S = 180
RANK_MICRO = [[3, 1], [2, 4]]  # per rank: G = 2 micro-batches, uneven everywhere


def _rank_slices():
    out, lo = [], 0
    for sizes in RANK_MICRO:
        out.append((lo, sizes))
        lo += sum(sizes)
    return out, lo



def _worker(rank: int, port: int, out_dir: str) -> None:
    with reporting_errors(out_dir, rank):
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
            timeout=datetime.timedelta(seconds=60),
        )
        slices, n = _rank_slices()
        x, y = _data(n, seed=5)
        lo, sizes = slices[rank]
        xs = _split(x[lo: lo + sum(sizes)], sizes)
        ys = _split(y[lo: lo + sum(sizes)], sizes)
        model = torch.nn.parallel.DistributedDataParallel(_model())
        rw = goreweight.Reweighter(**RW)
        with torch.no_grad():
            first = [_per_sample(model.module, a, b) for a, b in zip(xs, ys)]
        gb = goreweight.GlobalBatch(rw, first)
        for k in range(len(sizes)):
            if k < len(sizes) - 1:
                with model.no_sync():  # accumulate locally, all-reduce on the last micro-batch
                    gb.loss(k, _per_sample(model, xs[k], ys[k])).backward()
            else:
                gb.loss(k, _per_sample(model, xs[k], ys[k])).backward()
        res = {"grads": [p.grad.clone() for p in model.parameters()], "stats": rw.stats, "step": rw.step}
        torch.save(res, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_ranks(_worker, tmp_path_factory.mktemp("scopedist"), WORLD, TIMEOUT_S)


def test_ddp_accumulated_gradients_equal_one_big_batch(ranks):
    _, n = _rank_slices()
    x, y = _data(n, seed=5)
    big = _model()
    rw = goreweight.Reweighter(**RW)
    rw(_per_sample(big, x, y)).backward()
    for k in range(WORLD):
        _close(ranks[k]["grads"], [p.grad for p in big.parameters()])
        assert ranks[k]["step"] == 1 and ranks[k]["stats"]["m"] == n
        assert ranks[k]["stats"]["ess"] == pytest.approx(rw.stats["ess"], rel=1e-9)


def test_resume_between_optimizer_steps_continues_the_schedule_per_optimizer_step():
    # r advances once per GlobalBatch; a checkpoint between optimizer steps resumes exactly
    sched = goreweight.schedules.linear(2.0, 0.2, 3)
    x, y = _data(sum(MICRO))
    ls = _split(_per_sample(_model(), x, y).detach(), MICRO)
    rw = goreweight.Reweighter("linupper", schedule=sched)
    goreweight.GlobalBatch(rw, ls)
    state = rw.state_dict()
    want = goreweight.GlobalBatch(rw, ls).weights
    fresh = goreweight.Reweighter()
    fresh.load_state_dict(state)
    assert fresh.step == 1
    got = goreweight.GlobalBatch(fresh, ls).weights
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat(got), goreweight.weights(torch.cat(ls), "linupper", sched(1)))
