"""torch.distributed: 2 processes on the gloo backend, against a single
process holding the whole global batch."""

from __future__ import annotations

import datetime
import os

import pytest
import torch
import torch.distributed as dist

import goreweight
from _dist_util import reporting_errors, run_ranks

WORLD = 2
TIMEOUT_S = 180



def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))


def _data(n: int):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 4, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return x, y


def _per_sample(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y, reduction="none")


# Scenarios: per-rank batch sizes, and the arguments of the reweighting.
SCENARIOS = {
    "equal": ([6, 6], dict(strategy="linupper", r=0.3)),
    "unequal": ([3, 5], dict(strategy="quadratic", r=0.5, cap=2.0)),
    "uniform": ([4, 4], dict(strategy="uniform")),
    # a rank with no samples: the global batch is not empty, so it works
    "empty_rank": ([0, 5], dict(strategy="linupper", r=0.7)),
    "empty_rank_capped": ([4, 0], dict(strategy="linupper", r=0.2, cap=1.5)),
}


def _worker(rank: int, port: int, out_dir: str) -> None:
    with reporting_errors(out_dir, rank):
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
            timeout=datetime.timedelta(seconds=60),
        )
        results = {}
        for name, (sizes, kw) in SCENARIOS.items():
            x, y = _data(sum(sizes))
            lo = sum(sizes[:rank])
            xs, ys = x[lo: lo + sizes[rank]], y[lo: lo + sizes[rank]]
            model = torch.nn.parallel.DistributedDataParallel(_model())
            l = _per_sample(model, xs, ys)
            leaf = l.detach().requires_grad_(True)
            (gl,) = torch.autograd.grad(goreweight.reweighted_loss(leaf, **kw), leaf)
            loss = goreweight.reweighted_loss(l, **kw)
            loss.backward()  # DDP averages the gradients over the ranks
            results[name] = {
                "w_slice": gl / WORLD,  # d loss / d l_i = world · w_i
                "grads": [p.grad.clone() for p in model.parameters()],
            }
        # A Reweighter with domains: global stats on every rank.
        x, y = _data(10)
        rw = goreweight.Reweighter("linupper", schedule=goreweight.schedules.linear(10, 1, 5))
        sl = slice(0, 4) if rank == 0 else slice(4, 10)
        doms = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])[sl]
        for _ in range(3):
            rw(_per_sample(_model(), x[sl], y[sl]), domains=doms)
        results["stats"] = rw.stats
        results["rw_step"] = rw.step
        # A Reweighter with domains where rank 0 holds no samples.
        rw0 = goreweight.Reweighter("linupper", schedule=0.5)
        xs0 = torch.tensor([]) if rank == 0 else torch.tensor([1.0, 2.0, 3.0])
        ds0 = [] if rank == 0 else [0, 1, 1]
        rw0(xs0, domains=ds0)
        results["empty_rank_stats"] = rw0.stats
        # Invalid input on one rank makes every rank raise (no hang).
        errs = []
        bad = torch.zeros(2, 2, 2) if rank == 0 else torch.ones(3)  # 3-D: 2-D is token level
        try:
            goreweight.reweighted_loss(bad)
        except ValueError as e:
            errs.append(str(e))
        try:  # domains on one rank only
            goreweight.reweighted_loss(torch.ones(3), domains=[0, 0, 0] if rank == 1 else None)
        except ValueError as e:
            errs.append(str(e))
        try:  # non-finite losses under "raise": the same Go error on every rank
            goreweight.reweighted_loss(torch.tensor([1.0, float("nan")]) if rank == 0 else torch.ones(2), nonfinite="raise")
        except ValueError as e:
            errs.append(str(e))
        try:  # an empty global batch (every rank empty): Go's error on every rank
            goreweight.reweighted_loss(torch.zeros(0))
        except goreweight.GoreweightError as e:
            errs.append(f"{type(e).__name__}: {e}")
        results["errors"] = errs
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_ranks(_worker, tmp_path_factory.mktemp("dist"), WORLD, TIMEOUT_S)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_rank_gets_its_slice_and_ddp_gradient_equals_single_process(ranks, name):
    sizes, kw = SCENARIOS[name]
    x, y = _data(sum(sizes))
    model = _model()
    l = _per_sample(model, x, y)
    w = goreweight.weights(l.detach(), **kw)
    goreweight.reweighted_loss(l, **kw).backward()
    lo = 0
    for rank in range(WORLD):
        got = ranks[rank][name]
        torch.testing.assert_close(got["w_slice"], w[lo: lo + sizes[rank]], rtol=1e-6, atol=1e-9)
        lo += sizes[rank]
        for g, p in zip(got["grads"], model.parameters()):
            torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-7)


def test_reweighter_stats_are_global(ranks):
    for rank in range(WORLD):
        st = ranks[rank]["stats"]
        assert st["m"] == 10 and st["step"] == 2 and ranks[rank]["rw_step"] == 3
        assert st["domain/0/count"] == 4 and st["domain/1/count"] == 3 and st["domain/2/count"] == 3
    assert ranks[0]["stats"] == ranks[1]["stats"]


def test_reweighter_with_domains_and_an_empty_rank(ranks):
    want = goreweight.weights(torch.tensor([1.0, 2.0, 3.0]), "linupper", 0.5, domains=[0, 1, 1], return_stats=True)[1]
    for rank in range(WORLD):
        st = ranks[rank]["empty_rank_stats"]
        assert st["m"] == 3 and st["domain/0/count"] == 1 and st["domain/1/count"] == 2
        assert st["ess"] == pytest.approx(want["ess"], rel=1e-9)


def test_invalid_input_on_one_rank_raises_everywhere(ranks):
    e0, e1 = ranks[0]["errors"], ranks[1]["errors"]
    assert len(e0) == 4 and len(e1) == 4
    assert "per_sample must be 1-D" in e0[0] and "rank(s) [0]" in e1[0]
    assert "domains" in e0[1] and "domains" in e1[1]
    assert "non-finite" in e0[2] and e0[2] == e1[2]
    assert "empty" in e0[3] and e0[3] == e1[3]
