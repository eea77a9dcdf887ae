"""The approximate (deferred) global scope: DeferredGlobalBatch against a
float64 numpy oracle, against the exact path (Reweighter, GlobalBatch),
under 2-process gloo DDP against one process with the union batch, across
a save/restore, and its errors."""

from __future__ import annotations

import datetime
import math
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist

import goreweight
from _dist_util import reporting_errors, run_ranks


def _oracle(strategy: str, losses: np.ndarray, lo: float, hi: float, delta: float, r: float) -> np.ndarray:
    """float64: losses normalised with the fixed range [lo, hi], clipped to
    [-delta, delta], scored, softmax over every finite loss of the step."""
    l = losses.astype(np.float64)
    ok = np.isfinite(l)
    x = np.clip((2 * (l - lo) / (hi - lo) - 1) * delta, -delta, delta)
    s = {
        "linupper": np.minimum(x + delta, delta),
        "quadratic": 1 - (x / delta) ** 2,
        "extremes": np.abs(x),
        "dro-kl": x,
        "uniform": np.zeros_like(x),
    }[strategy]
    g = np.where(ok, s / r, -np.inf)
    e = np.exp(g - g[ok].max())
    return e / e.sum()


@pytest.mark.parametrize("strategy", ["linupper", "quadratic", "extremes", "dro-kl", "uniform"])
@pytest.mark.parametrize("delta", [1.0, 2.5])
def test_fixed_range_weights_equal_the_float64_softmax(strategy, delta):
    rng = np.random.default_rng(0)
    micro = [rng.uniform(0.5, 4.5, n).astype(np.float32) for n in (5, 1, 40)]
    micro[0][2] = np.nan
    rw = goreweight.Reweighter(strategy, schedule=0.4, delta=delta)
    acc = goreweight.DeferredGlobalBatch(rw)
    acc.range = (1.0, 4.0)  # some losses fall outside: clipped
    us = [acc.weights(torch.from_numpy(m)) for m in micro]
    scale = acc.finish()
    got = torch.cat(us).double().numpy() * scale
    want = _oracle(strategy, np.concatenate(micro), 1.0, 4.0, delta, 0.4)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-12)
    assert got[2] == 0
    all_l = np.concatenate(micro)
    fin = all_l[np.isfinite(all_l)]
    st = acc.stats
    assert st["clipped"] == int(((fin < 1) | (fin > 4)).sum()) > 0
    assert st["m"] == 46 and st["nonfinite"] == 1 and st["scale"] == pytest.approx(scale, rel=1e-15)
    assert st["range_lo"] == 1.0 and st["range_hi"] == 4.0
    assert st["ess"] == pytest.approx(1 / (want**2).sum(), rel=1e-6)
    assert acc.range == (float(fin.min()), float(fin.max()))  # the next step's: this step's true range


def test_token_losses_with_mask_equal_the_oracle():
    rng = np.random.default_rng(1)
    tok = [torch.from_numpy(rng.uniform(0, 3, (2, 5)).astype(np.float32)) for _ in range(3)]
    masks = [torch.from_numpy(rng.uniform(size=(2, 5)) < 0.7) for _ in range(3)]
    tok[1][0, 0] = float("nan")  # ignored position (masked below) and a NaN at a counted one
    masks[1][0, 0] = False
    tok[2][1, 1] = float("nan")
    masks[2][1, 1] = True
    acc = goreweight.DeferredGlobalBatch(goreweight.Reweighter("quadratic", schedule=0.7))
    acc.range = (0.5, 2.5)
    us = [acc.weights(t, mask=m) for t, m in zip(tok, masks)]
    scale = acc.finish()
    for u, m in zip(us, masks):
        assert u.shape == (2, 5) and (u[~m] == 0).all()
    got = torch.cat([u[m] for u, m in zip(us, masks)]).double().numpy() * scale
    counted = torch.cat([t[m] for t, m in zip(tok, masks)]).numpy()
    np.testing.assert_allclose(got, _oracle("quadratic", counted, 0.5, 2.5, 1.0, 0.7), rtol=2e-6, atol=1e-12)
    assert acc.stats["m"] == int(sum(int(m.sum()) for m in masks)) and acc.stats["nonfinite"] == 1


def test_reference_scores_the_excess_loss():
    rng = np.random.default_rng(2)
    l = torch.from_numpy(rng.uniform(1, 4, 30).astype(np.float32))
    ref = torch.from_numpy(rng.uniform(0, 2, 30).astype(np.float32))
    a = goreweight.DeferredGlobalBatch(goreweight.Reweighter("extremes", schedule=0.5))
    b = goreweight.DeferredGlobalBatch(goreweight.Reweighter("extremes", schedule=0.5))
    ua = a.weights(l, reference=ref)
    ub = b.weights(l - ref)
    assert a.finish() == b.finish()
    torch.testing.assert_close(ua, ub, rtol=0, atol=0)
    assert a.stats["loss_min"] == pytest.approx(float((l - ref).min()))  # the range is that of the scores


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_give_the_cpu_result():
    l = torch.rand(2, 50) * 3
    m = torch.rand(2, 50) < 0.8
    c = goreweight.DeferredGlobalBatch(goreweight.Reweighter("linupper", schedule=0.5))
    g = goreweight.DeferredGlobalBatch(goreweight.Reweighter("linupper", schedule=0.5))
    uc = c.weights(l, mask=m)
    ug = g.weights(l.cuda(), mask=m.cuda())
    assert ug.device.type == "cuda"
    torch.testing.assert_close(ug.cpu(), uc, rtol=0, atol=0)
    assert c.finish() == g.finish()


# ------------------------------------------------------------- against the exact path


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _data(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def _per_sample(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y, reduction="none")


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def _close(a, b, rtol=1e-5):
    for g, h in zip(a, b):
        torch.testing.assert_close(g, h, rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("strategy", ["linupper", "quadratic", "extremes", "dro-kl"])
def test_one_micro_batch_first_step_equals_the_exact_reweighter(strategy):
    # G = 1, the range from the batch itself: exactly the exact path's gradients
    x, y = _data(12)
    exact = _model()
    goreweight.Reweighter(strategy, schedule=0.3)(_per_sample(exact, x, y)).backward()
    model = _model()
    rw = goreweight.Reweighter(strategy, schedule=0.3)
    acc = goreweight.DeferredGlobalBatch(rw)
    acc.loss(_per_sample(model, x, y)).backward()
    scale = acc.finish(model)
    _close(_grads(model), _grads(exact))
    assert rw.step == 1 and acc.step == 1 and acc.stats["clipped"] == 0 and 0 < scale < 1


def test_one_micro_batch_token_level_equals_the_exact_reweighter():
    torch.manual_seed(1)
    lm = torch.nn.Sequential(torch.nn.Embedding(7, 5), torch.nn.Linear(5, 7))
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 7, (4, 6), generator=g)
    labels = ids.clone()
    labels[torch.rand(4, 6, generator=g) < 0.3] = -100
    goreweight.Reweighter("linupper", schedule=0.5)(goreweight.per_token_loss(lm(ids), labels)).backward()
    want = _grads(lm)
    lm.zero_grad()
    acc = goreweight.DeferredGlobalBatch(goreweight.Reweighter("linupper", schedule=0.5))
    acc.loss(goreweight.per_token_loss(lm(ids), labels)).backward()  # NaN at ignored positions: mask by default
    acc.finish(lm.parameters())
    _close(_grads(lm), want)


def test_the_steps_true_range_gives_the_exact_global_batch():
    # G = 4 (uneven): with the range set to the step's own min/max, the deferred
    # gradients after the 1/Z scaling are those of the exact GlobalBatch
    sizes = [3, 2, 4, 3]
    x, y = _data(sum(sizes))
    xs, ys = torch.split(x, sizes), torch.split(y, sizes)
    exact = _model()
    with torch.no_grad():
        first = [_per_sample(exact, a, b) for a, b in zip(xs, ys)]
    gb = goreweight.GlobalBatch(goreweight.Reweighter("quadratic", schedule=0.3), first)
    for k in range(len(sizes)):
        gb.loss(k, _per_sample(exact, xs[k], ys[k])).backward()
    model = _model()
    acc = goreweight.DeferredGlobalBatch(goreweight.Reweighter("quadratic", schedule=0.3))
    allf = torch.cat(first)
    acc.range = (float(allf.min()), float(allf.max()))
    for a, b in zip(xs, ys):
        acc.loss(_per_sample(model, a, b)).backward()
    acc.finish(model)
    _close(_grads(model), _grads(exact))


def test_without_the_scale_the_gradients_would_be_wrong():
    # the test above can fail: the accumulated gradients need the 1/Z
    sizes = [3, 5]
    x, y = _data(8)
    model = _model()
    acc = goreweight.DeferredGlobalBatch(goreweight.Reweighter("linupper", schedule=0.3))
    for a, b in zip(torch.split(x, sizes), torch.split(y, sizes)):
        acc.loss(_per_sample(model, a, b)).backward()
    before = _grads(model)
    scale = acc.finish(model)
    assert scale < 0.5
    _close(_grads(model), [g * scale for g in before])
    assert max(float((g - h).abs().max()) for g, h in zip(before, _grads(model))) > 1e-3


def test_step_and_range_advance_once_per_optimizer_step():
    sched = goreweight.schedules.linear(2.0, 0.5, 3)
    rw = goreweight.Reweighter("linupper", schedule=sched)
    acc = goreweight.DeferredGlobalBatch(rw, range_momentum=0.5)
    assert acc.range is None and acc.r == 2.0
    acc.weights(torch.tensor([1.0, 3.0]))
    assert acc.open and acc.range == (1.0, 3.0)  # the first micro-batch's own range
    acc.weights(torch.tensor([0.0, 5.0]))
    acc.finish()
    assert rw.step == 1 and acc.range == (0.0, 5.0) and acc.stats["r"] == 2.0 and acc.stats["clipped"] == 2
    acc.weights(torch.tensor([2.0, 3.0]))
    acc.finish()
    assert acc.range == (1.0, 4.0)  # 0.5 * (0, 5) + 0.5 * (2, 3)
    assert rw.step == 2 and acc.stats["r"] == pytest.approx(sched(1))
    rw.step = 7  # the reweighter is the step counter
    acc.weights(torch.tensor([2.0, 3.0]))
    assert acc.step == 7
    acc.finish()
    assert rw.step == 8 and acc.stats["step"] == 7


def test_save_and_restore_in_the_middle_of_training_resumes_identically():
    sizes = [3, 2, 4]
    data = [_data(sum(sizes), seed=s) for s in range(5)]
    sched = goreweight.schedules.cosine(3.0, 0.5, 4)

    def run(model, opt, acc, steps):
        out = []
        for s in steps:
            x, y = data[s]
            for a, b in zip(torch.split(x, sizes), torch.split(y, sizes)):
                acc.loss(_per_sample(model, a, b)).backward()
            acc.finish(model)
            out.append(_grads(model))
            opt.step()
            opt.zero_grad()
        return out

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    acc = goreweight.DeferredGlobalBatch(goreweight.Reweighter("extremes", schedule=sched), range_momentum=0.2)
    want = run(model, opt, acc, range(5))

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    acc = goreweight.DeferredGlobalBatch(goreweight.Reweighter("extremes", schedule=sched), range_momentum=0.2)
    run(model, opt, acc, range(2))
    ckpt = {"model": model.state_dict(), "opt": opt.state_dict(), "acc": acc.state_dict()}
    assert ckpt["acc"]["step"] == 2 and ckpt["acc"]["open"] is None

    model2 = _model()
    model2.load_state_dict(ckpt["model"])
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1)
    opt2.load_state_dict(ckpt["opt"])
    rw2 = goreweight.Reweighter("extremes", schedule=sched)
    acc2 = goreweight.DeferredGlobalBatch(rw2, range_momentum=0.2)
    acc2.load_state_dict(ckpt["acc"])
    assert rw2.step == 2 and acc2.range == acc.range
    got = run(model2, opt2, acc2, range(2, 5))
    for g, w in zip(got, want[2:]):
        for a, b in zip(g, w):
            torch.testing.assert_close(a, b, rtol=0, atol=0)

    # in the middle of a step: the open step's sums travel with the state
    x, y = data[2]
    acc3 = goreweight.DeferredGlobalBatch(goreweight.Reweighter("extremes", schedule=sched), range_momentum=0.2)
    acc3.load_state_dict(ckpt["acc"])
    acc3.weights(_per_sample(model2, x[:3], y[:3]).detach())
    mid = acc3.state_dict()
    assert mid["open"] is not None
    acc4 = goreweight.DeferredGlobalBatch(goreweight.Reweighter("extremes", schedule=sched))
    acc4.load_state_dict(mid)
    for a in (acc3, acc4):
        a.weights(_per_sample(model2, x[3:], y[3:]).detach())
    assert acc3.finish() == acc4.finish() and acc3.range == acc4.range


# ------------------------------------------------------------- errors


def test_unsupported_strategies_and_options_are_refused_by_name():
    for kw, word in [
        (dict(strategy="topk", q=0.5), "topk"),
        (dict(strategy="truncate", q=0.5), "truncate"),
        (dict(cap=2.0), "cap"),
        (dict(domain_multipliers=[1.0, 2.0]), "domain_multipliers"),
    ]:
        with pytest.raises(goreweight.GoreweightError, match=word):
            goreweight.DeferredGlobalBatch(goreweight.Reweighter(**kw))
    with pytest.raises(goreweight.GoreweightError, match="range_momentum"):
        goreweight.DeferredGlobalBatch(goreweight.Reweighter(), range_momentum=1.0)
    with pytest.raises(TypeError, match="reweighter"):
        goreweight.DeferredGlobalBatch(object())  # type: ignore[arg-type]


def test_bad_use_is_an_error_naming_it():
    rw = goreweight.Reweighter("linupper", schedule=1.0)
    acc = goreweight.DeferredGlobalBatch(rw)
    with pytest.raises(goreweight.GoreweightError, match="no step is open"):
        acc.finish()  # before any micro-batch
    acc.weights(torch.tensor([1.0, 2.0]))
    acc.finish()
    with pytest.raises(goreweight.GoreweightError, match="Finish twice|no step is open"):
        acc.finish()
    assert rw.step == 1
    with pytest.raises(TypeError, match="losses"):
        acc.weights([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D"):
        acc.weights(torch.zeros(2, 2, 2))
    with pytest.raises(goreweight.EmptyBatchError):
        acc.weights(torch.zeros(0))
        acc.finish()
    assert not acc.open and rw.step == 1  # a failed finish discards the step
    with pytest.raises(goreweight.NonFiniteLossError):
        acc.weights(torch.tensor([float("nan"), float("inf")]))
        acc.finish()
    raising = goreweight.DeferredGlobalBatch(goreweight.Reweighter("linupper", nonfinite="raise"))
    with pytest.raises(goreweight.NonFiniteLossError, match="index 1"):
        raising.loss(torch.tensor([1.0, float("nan")], requires_grad=True))
    assert not raising.open
    with pytest.raises(goreweight.GoreweightError, match="range"):
        acc.range = (2.0, 1.0)
    acc.weights(torch.tensor([1.0]))
    with pytest.raises(goreweight.GoreweightError, match="open"):
        acc.range = (0.0, 1.0)
    acc.discard()
    with pytest.raises(TypeError, match="state"):
        acc.load_state_dict("{}")  # type: ignore[arg-type]
    with pytest.raises(goreweight.GoreweightError, match="version"):
        acc.load_state_dict({"version": 9})
    acc.close()
    with pytest.raises(ValueError, match="closed"):
        acc.weights(torch.tensor([1.0]))


def test_non_finite_losses_get_zero_weight_and_no_nan_gradient():
    x, y = _data(6)
    model = _model()
    acc = goreweight.DeferredGlobalBatch(goreweight.Reweighter("linupper", schedule=0.5))
    l = _per_sample(model, x, y)
    l = l + torch.tensor([0, 0, float("nan"), 0, 0, 0])  # d/dl is 1: a NaN gradient could only come from the loss
    acc.loss(l).backward()
    acc.finish(model)
    assert all(torch.isfinite(g).all() for g in _grads(model))
    assert acc.stats["nonfinite"] == 1 and acc.stats["valid"] == 5


# ------------------------------------------------------------- distributed

WORLD = 2
TIMEOUT_S = 180
RANK_MICRO = [[3, 1], [2, 4]]  # per rank: G = 2 micro-batches, uneven everywhere
STEPS = 3


def _rank_data(step: int):
    """Per rank, the micro-batches of one step; and the union's micro-batches
    (micro-batch k of the union = micro-batch k of every rank)."""
    n = sum(sum(s) for s in RANK_MICRO)
    x, y = _data(n, seed=10 + step)
    per_rank, lo = [], 0
    for sizes in RANK_MICRO:
        xs = list(torch.split(x[lo: lo + sum(sizes)], sizes))
        ys = list(torch.split(y[lo: lo + sum(sizes)], sizes))
        per_rank.append((xs, ys))
        lo += sum(sizes)
    union = [(torch.cat([per_rank[r][0][k] for r in range(WORLD)]), torch.cat([per_rank[r][1][k] for r in range(WORLD)])) for k in range(2)]
    return per_rank, union


def _worker(rank: int, port: int, out_dir: str) -> None:
    with reporting_errors(out_dir, rank):
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
            timeout=datetime.timedelta(seconds=60),
        )
        model = torch.nn.parallel.DistributedDataParallel(_model())
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        rw = goreweight.Reweighter("quadratic", schedule=0.4)
        acc = goreweight.DeferredGlobalBatch(rw)
        res = {"grads": [], "stats": [], "ranges": []}
        for step in range(STEPS):
            xs, ys = _rank_data(step)[0][rank]
            for k in range(len(xs)):
                if k < len(xs) - 1:
                    with model.no_sync():
                        acc.loss(_per_sample(model, xs[k], ys[k])).backward()
                else:
                    acc.loss(_per_sample(model, xs[k], ys[k])).backward()
            acc.finish(model)
            res["grads"].append([p.grad.clone() for p in model.parameters()])
            res["stats"].append(acc.stats)
            res["ranges"].append(acc.range)
            opt.step()
            opt.zero_grad()
        # a data error on one rank is raised by finish on every rank (no hang)
        bad = torch.tensor([1.0, float("nan") if rank == 1 else 2.0])
        acc_r = goreweight.DeferredGlobalBatch(goreweight.Reweighter("linupper", nonfinite="raise"))
        acc_r.range = (0.0, 3.0)
        acc_r.loss(bad)
        try:
            acc_r.finish()
            res["raised"] = None
        except (goreweight.GoreweightError, ValueError) as e:
            res["raised"] = type(e).__name__
        res["step_after_error"] = acc_r.step
        torch.save(res, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_ranks(_worker, tmp_path_factory.mktemp("deferreddist"), WORLD, TIMEOUT_S)


def test_ddp_gradients_equal_one_process_with_the_union_batch(ranks):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    acc = goreweight.DeferredGlobalBatch(goreweight.Reweighter("quadratic", schedule=0.4))
    n = sum(sum(s) for s in RANK_MICRO)
    for step in range(STEPS):
        for x, y in _rank_data(step)[1]:
            acc.loss(_per_sample(model, x, y)).backward()
        acc.finish(model)
        for k in range(WORLD):
            _close(ranks[k]["grads"][step], _grads(model))
            assert ranks[k]["ranges"][step] == pytest.approx(acc.range, rel=1e-6)  # losses of other batch shapes round differently
            st = ranks[k]["stats"][step]
            assert st["m"] == n and st["step"] == step
            for key in ("ess", "z", "scale", "range_lo", "range_hi", "clipped"):
                assert st[key] == pytest.approx(acc.stats[key], rel=1e-5), key
        opt.step()
        opt.zero_grad()
    assert any(ranks[0]["stats"][s]["clipped"] > 0 for s in range(1, STEPS))  # the approximation was exercised


def test_ddp_a_micro_batch_error_on_one_rank_raises_on_every_rank(ranks):
    assert ranks[1]["raised"] == "NonFiniteLossError"
    assert ranks[0]["raised"] == "ValueError"
    assert ranks[0]["step_after_error"] == ranks[1]["step_after_error"] == 0
