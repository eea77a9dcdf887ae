"""The masked entry point of the token path (CPU tensors and numpy arrays
go to Go as dense buffers, zero-copy): bit-identical to the compacting path
(which CUDA and torch.distributed keep), against the float64 oracle, and
the loss and gradient stay finite with NaN under the mask."""

from __future__ import annotations

import grw_oracle
import numpy as np
import pytest
import torch

import goreweight
from goreweight import _exchange, _token

CONFIGS = [
    dict(strategy="linupper", r=0.5),
    dict(strategy="quadratic", r=0.3, cap=2.0),
    dict(strategy="topk", r=1.0, q=0.3),
    dict(strategy="truncate", r=0.5, q=0.25),
    dict(strategy="extremes", r=0.7, domain_multipliers=[1.0, 0.5, 2.0]),
]


def _batch(seed, b=6, t=3000, frac_masked=0.1, runs=False):
    """Token losses (B, T) over several chunks of the core, a mask (random
    or padding runs), NaN at a third of the masked entries."""
    g = np.random.default_rng(seed)
    l = g.gamma(2.0, 1.5, size=(b, t)).astype(np.float32)
    if runs:
        lens = g.integers(t // 2, t + 1, size=b)
        mask = np.arange(t)[None, :] < lens[:, None]
    else:
        mask = g.random((b, t)) >= frac_masked
    mask[0, 0] = True
    l[~mask & (g.random((b, t)) < 0.3)] = np.nan
    return l, mask


@pytest.fixture
def compacting(monkeypatch):
    """Calls goreweight with the dense path switched off: the compacting
    path, the reference the dense path must match bit for bit."""

    def run(f, *a, **kw):
        with monkeypatch.context() as m:
            m.setattr(_token, "dense_applies", lambda x: False)
            return f(*a, **kw)

    return run


@pytest.fixture
def dense_calls(monkeypatch):
    """Records the pointers of every masked call into Go."""
    calls = []
    real = _token.go_masked

    def spy(t, r, lp, rp, mp, flags, dp, n, op, want):
        calls.append(dict(lp=lp, rp=rp, mp=mp, flags=flags, dp=dp, n=n, op=op))
        return real(t, r, lp, rp, mp, flags, dp, n, op, want)

    monkeypatch.setattr(_token, "go_masked", spy)
    return calls


def _kw_domains(kw, shape, seed):
    kw = dict(kw)
    if "domain_multipliers" in kw:
        kw["domains"] = np.random.default_rng(seed).integers(0, 3, size=shape[0])  # one per row
    return kw


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda k: k["strategy"])
@pytest.mark.parametrize("kind", ["torch", "numpy"])
@pytest.mark.parametrize("runs", [False, True], ids=["scattered", "padding"])
def test_dense_weights_are_the_compacting_paths_bit_for_bit(kw, kind, runs, compacting, dense_calls):
    l, mask = _batch(1, runs=runs)
    kw = _kw_domains(kw, l.shape, 2)
    ref = np.random.default_rng(3).normal(size=l.shape).astype(np.float32)
    for extra in (dict(mask=mask), dict(), dict(mask=mask, reference=ref)):
        args = dict(extra)
        x = l
        if kind == "torch":
            x = torch.from_numpy(l)
            args = {k: torch.from_numpy(v) for k, v in args.items()}
        n0 = len(dense_calls)
        w, st = goreweight.weights(x, **kw, **args, return_stats=True)
        assert len(dense_calls) == n0 + 1  # the masked entry point, once
        w2, st2 = compacting(goreweight.weights, x, **kw, **args, return_stats=True)
        assert len(dense_calls) == n0 + 1
        w, w2 = np.asarray(w), np.asarray(w2)
        assert w.shape == l.shape and w.dtype == np.float32
        np.testing.assert_array_equal(w.view(np.uint32), w2.view(np.uint32))
        assert st == pytest.approx(st2, nan_ok=True)
        counted = mask if "mask" in extra else np.isfinite(l)
        assert st["m"] == counted.sum() and st["nonfinite"] == 0
        assert (w[~counted] == 0).all()


def test_dense_weights_match_the_float64_oracle_with_a_reference():
    l, mask = _batch(4)
    ref = np.random.default_rng(5).gamma(2.0, 1.0, size=l.shape).astype(np.float32)
    s = (l - ref).astype(np.float32)  # float32 scores, as the core computes them
    want = np.zeros(l.shape)
    want[mask] = grw_oracle.weights(s[mask].astype(np.float64), "linupper", 0.5)
    w = goreweight.weights(torch.from_numpy(l), "linupper", 0.5, mask=torch.from_numpy(mask), reference=torch.from_numpy(ref))
    np.testing.assert_allclose(w.numpy(), want, rtol=2e-6, atol=1e-12)


def test_float32_inputs_are_read_in_place(dense_calls):
    l, mask = _batch(6)
    x, m = torch.from_numpy(l), torch.from_numpy(mask)
    ref = torch.zeros_like(x)
    goreweight.weights(x, mask=m, reference=ref)
    c = dense_calls[-1]
    assert (c["lp"], c["mp"], c["rp"], c["flags"]) == (x.data_ptr(), m.data_ptr(), ref.data_ptr(), 0)
    goreweight.weights(l, mask=mask)
    c = dense_calls[-1]
    assert (c["lp"], c["mp"], c["rp"]) == (l.ctypes.data, mask.ctypes.data, None)
    goreweight.weights(x)  # 2-D, default mask: the core skips the non-finite scores
    assert dense_calls[-1]["mp"] is None and dense_calls[-1]["flags"] == 1


@pytest.mark.parametrize(
    "convert",
    [
        lambda x: x.to(torch.bfloat16),
        lambda x: x.double(),
        lambda x: x.t().contiguous().t(),  # non-contiguous
    ],
    ids=["bf16", "float64", "transposed"],
)
def test_other_dtypes_and_strides_convert_first(convert, compacting):
    l, mask = _batch(7, b=5, t=40)
    l = np.nan_to_num(l, nan=1.0)
    ref = torch.from_numpy(np.random.default_rng(8).normal(size=l.shape).astype(np.float32))
    x = convert(torch.from_numpy(l))
    m = torch.from_numpy(mask).t().contiguous().t()  # a non-contiguous mask too
    for r in (None, convert(ref)):
        w = goreweight.weights(x, "quadratic", 0.4, mask=m, reference=r)
        w2 = compacting(goreweight.weights, x, "quadratic", 0.4, mask=m, reference=r)
        np.testing.assert_array_equal(w.numpy(), w2.numpy())


def test_masked_numpy_arrays_combine_both_masks(compacting):
    l, mask = _batch(9, b=3, t=50)
    ma = np.ma.MaskedArray(np.nan_to_num(l, nan=2.0), mask=np.random.default_rng(1).random(l.shape) < 0.2)
    ma.mask[0, 0] = False
    for kw in (dict(), dict(mask=mask)):
        w = goreweight.weights(ma, "linupper", 0.5, **kw)
        w2 = compacting(goreweight.weights, ma, "linupper", 0.5, **kw)
        assert isinstance(w, np.ma.MaskedArray)
        np.testing.assert_array_equal(np.ma.getmaskarray(w), np.ma.getmaskarray(ma))
        np.testing.assert_array_equal(np.ma.getdata(w), np.ma.getdata(w2))


@pytest.mark.parametrize("two_d", [True, False])
def test_loss_and_gradient_stay_finite_with_nan_under_the_mask(two_d, compacting):
    l, mask = _batch(10, b=4, t=300)
    if not two_d:
        l, mask = l[0], mask[0]
    x = torch.from_numpy(l).requires_grad_(True)
    m = torch.from_numpy(mask)
    loss = goreweight.reweighted_loss(x, "linupper", 0.5, mask=m)
    loss.backward()
    x2 = torch.from_numpy(l).requires_grad_(True)
    loss2 = compacting(goreweight.reweighted_loss, x2, "linupper", 0.5, mask=m)
    loss2.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert loss.item() == loss2.item()
    np.testing.assert_array_equal(x.grad.numpy(), x2.grad.numpy())
    assert (x.grad.numpy()[~mask] == 0).all()


def test_reweighter_dense_path_advances_once_per_call(dense_calls, compacting):
    l, mask = _batch(11, b=3, t=100)
    sched = goreweight.schedules.linear(2, 1, 4)
    a, b = goreweight.Reweighter("linupper", schedule=sched), goreweight.Reweighter("linupper", schedule=sched)
    for step in range(3):
        x, x2 = torch.from_numpy(l).requires_grad_(True), torch.from_numpy(l).requires_grad_(True)
        a(x, mask=torch.from_numpy(mask)).backward()
        compacting(b, x2, mask=torch.from_numpy(mask)).backward()
        np.testing.assert_array_equal(x.grad.numpy(), x2.grad.numpy())
        assert a.step == b.step == step + 1 and a.stats == pytest.approx(b.stats, nan_ok=True)
    assert len(dense_calls) == 3
    np.testing.assert_array_equal(a.weights(l, mask=mask), compacting(b.weights, l, mask=mask))
    assert a.step == 4 and len(dense_calls) == 4


def test_dense_path_errors_are_the_compacting_paths(compacting):
    l = torch.rand(2, 3)
    m0 = torch.zeros(2, 3, dtype=torch.bool)
    for call in (
        lambda: goreweight.weights(l, mask=m0),
        lambda: goreweight.weights(l.numpy(), mask=m0.numpy()),
        lambda: goreweight.weights(torch.full((2, 3), float("nan"))),
    ):
        with pytest.raises(goreweight.EmptyBatchError):
            call()
        with pytest.raises(goreweight.EmptyBatchError):
            compacting(call)
    x = l.clone()
    x[1, 2] = float("nan")
    with pytest.raises(goreweight.NonFiniteLossError, match="index 5"):  # the dense index, row-major
        goreweight.weights(x, mask=torch.ones(2, 3, dtype=torch.bool), nonfinite="raise")
    with pytest.raises(ValueError, match="domains"):
        goreweight.weights(l, domains=np.zeros(4, dtype=np.int64), mask=m0 | True)
    with pytest.raises(goreweight.GoreweightError, match="domain id -1 at index 4"):
        goreweight.weights(l, domains=np.array([[0, 0, 0], [0, -1, 0]]), mask=m0 | True, domain_multipliers=[1.0])


def test_cuda_keeps_the_compacting_path():
    assert not _token.dense_applies(torch.empty(2, 3, device="meta"))
    assert _token.dense_applies(torch.empty(2, 3)) == _exchange.masked_available()


def test_the_per_kind_c_entry_points_agree_with_the_packed_one():
    import ctypes

    from goreweight import _lib

    api = _lib.api()
    if isinstance(api.grw_weigher_weights_masked, _lib._Missing):
        pytest.skip("library without the masked entry points")
    l, mask = _batch(12, b=2, t=50)
    ref = np.zeros_like(l)
    m8 = mask.astype(np.uint8)
    want = goreweight.weights(l, "linupper", 0.5, mask=mask, reference=ref)
    bad = ctypes.c_int64(-1)
    err = ctypes.c_void_p()
    wh = _lib.new_handle("grw_weigher_new", '{"strategy": "linupper"}')
    rh = _lib.new_handle("grw_reweighter_new", '{"schedule": {"kind": "constant", "r": 0.5}}')
    try:
        for name, h, extra in (("grw_weigher_weights_masked", wh, (0.5,)), ("grw_reweighter_weights_masked", rh, ())):
            out = np.full(l.shape, -1.0, dtype=np.float32)
            st = getattr(api, name)(
                h, *extra, l.ctypes.data, ref.ctypes.data, m8.ctypes.data, 0, None, l.size, out.ctypes.data, ctypes.byref(bad), None, ctypes.byref(err)
            )
            assert st == 0 and bad.value == 0, name
            np.testing.assert_array_equal(out, want)
        st = api.grw_weigher_weights_masked(wh, 0.5, l.ctypes.data, None, m8.ctypes.data, 8, None, l.size, out.ctypes.data, None, None, ctypes.byref(err))
        assert st == 1 and b"unknown bits" in ctypes.string_at(err.value)
        api.grw_free(err.value)
    finally:
        _lib.close_handle(wh)
        _lib.close_handle(rh)


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_a_1d_reference_without_a_mask_counts_every_entry(kind, compacting, dense_calls):
    g = np.random.default_rng(13)
    l = g.gamma(2.0, 1.5, size=40000).astype(np.float32)
    ref = g.normal(size=l.shape).astype(np.float32)
    l[7] = np.nan  # counted: reported as non-finite, weight 0
    dom = g.integers(0, 3, size=l.shape)
    kw = dict(reference=ref, domains=dom, domain_multipliers=[1.0, 2.0, 0.5])
    x = l
    if kind == "torch":
        x, kw["reference"] = torch.from_numpy(l), torch.from_numpy(ref)
    w, st = goreweight.weights(x, "linupper", 0.5, **kw, return_stats=True)
    assert dense_calls[-1]["mp"] is None and dense_calls[-1]["flags"] == 0
    w2, st2 = compacting(goreweight.weights, x, "linupper", 0.5, **kw, return_stats=True)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(w2))
    assert st["nonfinite"] == 1 and st["m"] == l.size and np.asarray(w)[7] == 0
    assert st == pytest.approx(st2, nan_ok=True)
