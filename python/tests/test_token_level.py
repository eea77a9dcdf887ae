"""Token-level weights (2-D losses with masks) and reference (excess)
losses, against the independent float64 oracle grw_oracle applied to the
counted entries; torch.distributed with 2 gloo processes holding uneven
numbers of tokens."""

from __future__ import annotations

import datetime
import os

import grw_oracle
import numpy as np
import pytest
import torch
import torch.distributed as dist

import goreweight
from _dist_util import reporting_errors, run_ranks

CONFIGS = [
    dict(strategy="linupper", r=0.5),
    dict(strategy="quadratic", r=0.3),
    dict(strategy="extremes", r=0.7),
    dict(strategy="dro-kl", r=0.4, cap=2.0),
    dict(strategy="topk", r=1.0, q=0.3),  # Rho-1's token selection
    dict(strategy="truncate", r=0.5, q=0.25),
]


def _oracle(losses: np.ndarray, counted: np.ndarray, **kw) -> np.ndarray:
    """The float64 oracle's weights of the counted entries, 0 elsewhere."""
    full = np.zeros(losses.shape, dtype=np.float64)
    full[counted] = grw_oracle.weights(losses[counted].astype(np.float64), **kw)
    return full


def _tokens(b=4, t=9, seed=0, frac_masked=0.3):
    g = np.random.default_rng(seed)
    l = g.gamma(2.0, 1.5, size=(b, t)).astype(np.float32)
    mask = g.random((b, t)) >= frac_masked
    mask[0, 0] = True
    return l, mask


# ------------------------------------------------------------- per_token_loss


def test_per_token_loss_matches_a_float64_cross_entropy_and_marks_ignored_positions_nan():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 6, 11, generator=g)
    labels = torch.randint(0, 11, (3, 6), generator=g)
    labels[1, 2] = -100
    labels[2, 5] = -100
    tok = goreweight.per_token_loss(logits, labels)
    assert tok.shape == (3, 5) and tok.dtype == torch.float32
    lp = torch.log_softmax(logits.double(), dim=-1)[:, :-1]
    y = labels[:, 1:]
    for i in range(3):
        for j in range(5):
            if y[i, j] == -100:
                assert torch.isnan(tok[i, j])
            else:
                assert tok[i, j].item() == pytest.approx(-lp[i, j, y[i, j]].item(), rel=1e-5)
    # the mean over counted tokens is per_sample_loss
    torch.testing.assert_close(tok.nanmean(dim=1), goreweight.per_sample_loss(logits, labels))
    noshift = goreweight.per_token_loss(logits, labels, shift=False)
    assert noshift.shape == (3, 6)


def test_per_token_loss_is_float32_for_bf16_logits_and_has_zero_gradient_at_ignored_positions():
    logits = torch.randn(2, 4, 5, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.tensor([[1, 2, -100, 3], [0, -100, -100, 4]])
    tok = goreweight.per_token_loss(logits, labels)
    assert tok.dtype == torch.float32
    torch.where(torch.isfinite(tok), tok, 0.0).sum().backward()
    assert torch.isfinite(logits.grad.float()).all()
    assert (logits.grad[0, 1] == 0).all() and (logits.grad[1, 0] == 0).all() and (logits.grad[1, 1] == 0).all()


def test_per_token_loss_checks_its_arguments():
    with pytest.raises(ValueError, match="logits"):
        goreweight.per_token_loss(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="labels"):
        goreweight.per_token_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3))
    assert goreweight.per_token_loss(torch.zeros(2, 1, 4), torch.zeros(2, 1, dtype=torch.long)).shape == (2, 0)


# ------------------------------------------------------------- weights


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda k: k["strategy"])
@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_token_weights_with_an_explicit_mask_match_the_oracle(kw, kind):
    l, mask = _tokens()
    want = _oracle(l, mask, **kw)
    if kind == "torch":
        w = goreweight.weights(torch.from_numpy(l), mask=torch.from_numpy(mask), **kw)
        assert isinstance(w, torch.Tensor) and w.dtype == torch.float32
        w = w.numpy()
    else:
        w = goreweight.weights(l, mask=mask, **kw)
        assert isinstance(w, np.ndarray) and w.dtype == np.float32
    assert w.shape == l.shape
    np.testing.assert_allclose(w, want, rtol=2e-6, atol=1e-12)
    assert (w[~mask] == 0).all()


def test_the_default_mask_of_2d_losses_is_the_finite_entries_and_they_are_not_reported_non_finite():
    l, mask = _tokens(seed=3)
    x = l.copy()
    x[~mask] = np.nan
    x[~mask & (np.arange(x.size).reshape(x.shape) % 2 == 0)] = np.inf
    w, st = goreweight.weights(torch.from_numpy(x), "linupper", 0.5, return_stats=True)
    np.testing.assert_allclose(w.numpy(), _oracle(l, mask, strategy="linupper", r=0.5), rtol=2e-6, atol=1e-12)
    assert st["m"] == mask.sum() and st["nonfinite"] == 0
    assert st["loss_max"] == pytest.approx(float(l[mask].max()))


def test_masked_entries_do_not_change_the_weights_whatever_their_value():
    l, mask = _tokens(seed=4)
    w1 = goreweight.weights(l, "quadratic", 0.3, mask=mask)
    y = l.copy()
    y[~mask] = 1e30  # would dominate min/max if it counted
    w2, st = goreweight.weights(y, "quadratic", 0.3, mask=mask, return_stats=True)
    y[~mask] = np.nan
    w3 = goreweight.weights(y, "quadratic", 0.3, mask=mask, nonfinite="raise")
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(w1, w3)
    assert st["nonfinite"] == 0 and st["loss_max"] < 1e29


def test_a_non_finite_loss_at_a_counted_position_is_the_nonfinite_policys_business():
    l, mask = _tokens(seed=5)
    l[0, 0] = np.nan  # mask[0, 0] is True
    w, st = goreweight.weights(l, "linupper", 1.0, mask=mask, return_stats=True)
    assert st["nonfinite"] == 1 and w[0, 0] == 0
    # (NonFiniteLossError once the C ABI maps ErrNonFinite to its status; today status 1)
    with pytest.raises(goreweight.GoreweightError, match="non-finite"):
        goreweight.weights(l, "linupper", 1.0, mask=mask, nonfinite="raise")


def test_an_all_masked_batch_is_an_empty_batch():
    # EmptyBatchError (a GoreweightError) once the C ABI reports status 3 for ErrEmpty
    empty = (goreweight.GoreweightError, "empty")
    l = torch.rand(2, 3)
    m = torch.zeros(2, 3, dtype=torch.bool)
    with pytest.raises(empty[0], match=empty[1]):
        goreweight.weights(l, mask=m)
    with pytest.raises(empty[0], match=empty[1]):
        goreweight.weights(l.numpy(), mask=m.numpy())
    with pytest.raises(empty[0], match=empty[1]):
        goreweight.weights(torch.full((2, 3), float("nan")))
    with pytest.raises(empty[0], match=empty[1]):
        goreweight.reweighted_loss(l.requires_grad_(), mask=m)
    with pytest.raises(empty[0], match=empty[1]):
        goreweight.Reweighter()(torch.full((2, 3), float("nan")))


def test_a_1d_input_with_a_mask_and_a_masked_numpy_array():
    l = np.array([3.0, 1.0, 7.0, 2.0, 5.0], dtype=np.float32)
    m = np.array([True, False, True, True, False])
    want = _oracle(l, m, strategy="linupper", r=0.5)
    np.testing.assert_allclose(goreweight.weights(l, "linupper", 0.5, mask=m), want, rtol=2e-6)
    np.testing.assert_allclose(goreweight.weights(torch.from_numpy(l), "linupper", 0.5, mask=torch.from_numpy(m)).numpy(), want, rtol=2e-6)
    l2, m2 = _tokens(seed=6)
    ma = np.ma.MaskedArray(l2, mask=~m2)
    w = goreweight.weights(ma, "linupper", 0.5)
    assert isinstance(w, np.ma.MaskedArray)
    np.testing.assert_allclose(np.ma.getdata(w), _oracle(l2, m2, strategy="linupper", r=0.5), rtol=2e-6, atol=1e-12)


def test_domains_per_token_or_per_row():
    l, mask = _tokens(b=3, t=5, seed=7)
    rows = np.array([0, 1, 0])
    per_tok = np.broadcast_to(rows[:, None], l.shape).copy()
    mult = [1.0, 3.0]
    want = np.zeros(l.shape)
    want[mask] = grw_oracle.weights(l[mask], "linupper", 0.5, domains=per_tok[mask], domain_multipliers=mult)
    for d in (rows, per_tok, torch.from_numpy(per_tok)):
        w = goreweight.weights(l, "linupper", 0.5, domains=d, mask=mask, domain_multipliers=mult)
        np.testing.assert_allclose(w, want, rtol=2e-6, atol=1e-12)
    with pytest.raises(ValueError, match="domains"):
        goreweight.weights(l, domains=np.zeros(4, dtype=np.int64), mask=mask)


def test_bad_masks_and_shapes_are_named():
    l = torch.rand(2, 3)
    with pytest.raises(ValueError, match="mask"):
        goreweight.weights(l, mask=torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask"):
        goreweight.weights(l, mask=torch.ones(2, 3))
    with pytest.raises(TypeError, match="mask"):
        goreweight.weights(l.numpy(), mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        goreweight.weights(torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="per_sample"):
        goreweight.reweighted_loss(torch.rand(2, 3, 4))
    pa = pytest.importorskip("pyarrow")
    with pytest.raises(TypeError, match="mask"):
        goreweight.weights(pa.array([1.0, 2.0]), mask=np.ones(2, dtype=bool))


# ------------------------------------------------------------- the loss


@pytest.mark.parametrize("kw", CONFIGS[:2] + CONFIGS[4:5], ids=lambda k: k["strategy"])
def test_token_reweighted_loss_and_gradient_are_the_oracle_weights(kw):
    l, mask = _tokens(seed=8)
    x = torch.from_numpy(l).clone()
    x[~torch.from_numpy(mask)] = float("nan")  # what per_token_loss gives at ignored positions
    x.requires_grad_(True)
    want = _oracle(l, mask, **kw)
    loss = goreweight.reweighted_loss(x, **kw)
    assert loss.item() == pytest.approx(float((want * np.where(mask, l, 0)).sum()), rel=1e-5)
    loss.backward()
    assert torch.isfinite(x.grad).all()
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=2e-6, atol=1e-12)
    assert (x.grad.numpy()[~mask] == 0).all()


def test_reweighter_at_token_level_advances_once_per_call():
    l, mask = _tokens(seed=9)
    rw = goreweight.Reweighter("linupper", schedule=goreweight.schedules.linear(2, 1, 4))
    rs = []
    for _ in range(3):
        rs.append(rw.r)
        x = torch.from_numpy(l).requires_grad_(True)
        rw(x, mask=torch.from_numpy(mask)).backward()
        want = _oracle(l, mask, strategy="linupper", r=rs[-1])
        np.testing.assert_allclose(x.grad.numpy(), want, rtol=2e-6, atol=1e-12)
    assert rw.step == 3 and rw.stats["m"] == mask.sum()
    r3 = rw.r
    w = rw.weights(l, mask=mask)
    np.testing.assert_allclose(w, _oracle(l, mask, strategy="linupper", r=r3), rtol=2e-6, atol=1e-12)
    assert rw.step == 4 and len(set(rs + [r3])) == 4


# ------------------------------------------------------------- reference loss


@pytest.mark.parametrize("two_d", [False, True])
def test_reference_weights_score_the_excess_loss(two_d):
    l, mask = _tokens(seed=10)
    ref = np.random.default_rng(11).gamma(2.0, 1.0, size=l.shape).astype(np.float32)
    if not two_d:
        l, ref, mask = l[0], ref[0], np.ones(l.shape[1], dtype=bool)
    excess = (l.astype(np.float64) - ref.astype(np.float64)).astype(np.float32)
    want = _oracle(excess, mask, strategy="linupper", r=0.5)
    np.testing.assert_allclose(goreweight.weights(l, "linupper", 0.5, reference=ref, mask=mask), want, rtol=2e-6, atol=1e-12)
    tw = goreweight.weights(torch.from_numpy(l), "linupper", 0.5, reference=torch.from_numpy(ref), mask=torch.from_numpy(mask))
    np.testing.assert_allclose(tw.numpy(), want, rtol=2e-6, atol=1e-12)
    # the training loss stays sum w l (of the losses, not the scores)
    x = torch.from_numpy(l).requires_grad_(True)
    loss = goreweight.reweighted_loss(
        x, "linupper", 0.5, reference=torch.from_numpy(ref).requires_grad_(True), mask=torch.from_numpy(mask)
    )
    assert loss.item() == pytest.approx(float((want * np.where(mask, l, 0)).sum()), rel=1e-5)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=2e-6, atol=1e-12)
    # it differs from weighting the losses themselves
    assert not np.allclose(want, _oracle(l, mask, strategy="linupper", r=0.5), rtol=1e-3)


def test_a_reference_of_another_shape_is_refused_naming_reference():
    with pytest.raises(ValueError, match="reference"):
        goreweight.weights(torch.rand(4), reference=torch.rand(5))
    with pytest.raises(ValueError, match="reference"):
        goreweight.weights(np.random.rand(2, 3), reference=np.random.rand(3, 2))
    with pytest.raises(ValueError, match="reference"):
        goreweight.reweighted_loss(torch.rand(2, 3), reference=torch.rand(2, 4))
    with pytest.raises(TypeError, match="reference"):
        goreweight.weights(torch.rand(4), reference=torch.ones(4, dtype=torch.long))


# ------------------------------------------------------------- distributed

WORLD = 2
TIMEOUT_S = 180
# uneven ranks: different numbers of sequences, lengths and masked tokens
RANK_SHAPES = [(2, 5), (3, 4)]


def _rank_data(rank: int):
    g = np.random.default_rng(100 + rank)
    b, t = RANK_SHAPES[rank]
    l = g.gamma(2.0, 1.5, size=(b, t)).astype(np.float32)
    mask = g.random((b, t)) >= 0.3
    ref = g.gamma(2.0, 1.0, size=(b, t)).astype(np.float32)
    return l, mask, ref



def _worker(rank: int, port: int, out_dir: str) -> None:
    with reporting_errors(out_dir, rank):
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
            timeout=datetime.timedelta(seconds=60),
        )
        l, mask, ref = _rank_data(rank)
        res = {}
        x = torch.from_numpy(l).clone()
        x[~torch.from_numpy(mask)] = float("nan")
        x.requires_grad_(True)
        goreweight.reweighted_loss(x, "quadratic", 0.3).backward()
        res["grad"] = x.grad / WORLD  # d loss / d l = world · w
        y = torch.from_numpy(l).requires_grad_(True)
        rw = goreweight.Reweighter("topk", schedule=1.0, q=0.4)
        rw(y, mask=torch.from_numpy(mask), reference=torch.from_numpy(ref)).backward()
        res["grad_ref"] = y.grad / WORLD
        res["stats"] = rw.stats
        errs = []
        try:  # a bad mask on rank 1 only: every rank raises
            goreweight.reweighted_loss(torch.from_numpy(l), mask=torch.from_numpy(mask) if rank == 0 else torch.ones(1, dtype=torch.bool))
        except ValueError as e:
            errs.append(str(e))
        try:  # every rank fully masked: an empty global batch
            goreweight.reweighted_loss(torch.from_numpy(l), mask=torch.zeros(l.shape, dtype=torch.bool))
        except goreweight.EmptyBatchError as e:
            errs.append(type(e).__name__)
        except goreweight.GoreweightError as e:
            errs.append(f"GoreweightError: {'empty' if 'empty' in str(e) else e}")
        res["errors"] = errs
        torch.save(res, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_ranks(_worker, tmp_path_factory.mktemp("tokdist"), WORLD, TIMEOUT_S)


def test_ddp_token_weights_range_over_every_counted_token_of_all_ranks(ranks):
    data = [_rank_data(k) for k in range(WORLD)]
    flat_l = np.concatenate([l[m] for l, m, _ in data])
    flat_s = np.concatenate([(l.astype(np.float64) - r)[m].astype(np.float32) for l, m, r in data])
    w = grw_oracle.weights(flat_l, "quadratic", 0.3)
    w_ref = grw_oracle.weights(flat_s, "topk", 1.0, q=0.4)
    lo = 0
    for k, (l, m, _) in enumerate(data):
        n = int(m.sum())
        want = np.zeros(l.shape)
        want[m] = w[lo: lo + n]
        np.testing.assert_allclose(ranks[k]["grad"].numpy(), want, rtol=2e-6, atol=1e-12)
        want_ref = np.zeros(l.shape)
        want_ref[m] = w_ref[lo: lo + n]
        np.testing.assert_allclose(ranks[k]["grad_ref"].numpy(), want_ref, rtol=2e-6, atol=1e-12)
        lo += n
        assert ranks[k]["stats"]["m"] == len(flat_l) and ranks[k]["stats"]["nonfinite"] == 0


def test_ddp_bad_token_input_on_one_rank_raises_everywhere(ranks):
    e0, e1 = ranks[0]["errors"], ranks[1]["errors"]
    assert "rank(s) [1]" in e0[0] and "mask" in e1[0]
    assert e0[1] == e1[1] and e0[1] in ("EmptyBatchError", "GoreweightError: empty")
