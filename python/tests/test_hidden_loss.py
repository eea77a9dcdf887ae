"""per_sample_loss_from_hidden / per_token_loss_from_hidden against per_sample_loss on full logits.

The oracle is the full-logits path: ``goreweight.per_sample_loss(F.linear(hidden, W, b), labels)``
differentiated by autograd, and, for the per-token form, ``F.cross_entropy(reduction="none")``.
Gradients are also checked with ``torch.autograd.gradcheck`` (finite differences) in float64.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import goreweight
from goreweight._hidden_loss import per_sample_loss_from_hidden, per_token_loss_from_hidden


def _case(b=3, t=7, h=5, v=11, dtype=torch.float32, bias=False, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    hid = torch.randn(b, t, h, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    w = (torch.randn(v, h, generator=g, dtype=torch.float64) * 0.7).to(device=device, dtype=dtype)
    bb = (torch.randn(v, generator=g, dtype=torch.float64) * 0.3).to(device=device, dtype=dtype) if bias else None
    lab = torch.randint(0, v, (b, t), generator=g).to(device)
    lab[0, 2] = -100
    lab[1, 3:] = -100
    lab[-1, 1:] = -100  # with shift: no counted token at all -> NaN
    return hid, w, bb, lab


def _leaf(*ts):
    return [None if t is None else t.detach().clone().requires_grad_(True) for t in ts]


def _rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp(min=1e-30))


@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("chunk", [1, 4, None])
def test_matches_full_logits_fp32(shift, bias, chunk):
    hid, w, bb, lab = _case(bias=bias)
    h1, w1, b1 = _leaf(hid, w, bb)
    h2, w2, b2 = _leaf(hid, w, bb)
    ref = goreweight.per_sample_loss(F.linear(h1, w1, b1), lab, shift=shift)
    got = per_sample_loss_from_hidden(h2, w2, lab, bias=b2, shift=shift, chunk_size=chunk)
    assert got.dtype == torch.float32 and got.shape == ref.shape
    assert torch.equal(torch.isnan(got), torch.isnan(ref))
    if shift:
        assert torch.isnan(got[-1])  # the sequence with no counted token
    ok = ~torch.isnan(ref)
    torch.testing.assert_close(got[ok], ref[ok], rtol=1e-5, atol=1e-6)
    # a weighted sum of the finite losses: different weights per sequence
    coef = torch.arange(1, ref.numel() + 1, dtype=torch.float32)
    (torch.where(ok, ref, 0) * coef).sum().backward()
    (torch.where(ok, got, 0) * coef).sum().backward()
    assert _rel(h2.grad, h1.grad) < 1e-5
    assert _rel(w2.grad, w1.grad) < 1e-5
    if bias:
        assert _rel(b2.grad, b1.grad) < 1e-5
    if shift:  # the last position predicts nothing: its hidden state gets no gradient
        assert torch.count_nonzero(h2.grad[:, -1]) == 0


def test_per_token_matches_cross_entropy():
    hid, w, bb, lab = _case(bias=True, t=9)
    h1, w1, b1 = _leaf(hid, w, bb)
    h2, w2, b2 = _leaf(hid, w, bb)
    z = F.linear(h1, w1, b1)[:, :-1]
    y = lab[:, 1:]
    ref = F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1), reduction="none").view(y.shape)
    got = per_token_loss_from_hidden(h2, w2, lab, bias=b2, chunk_size=5)
    assert got.shape == y.shape and got.dtype == torch.float32
    assert torch.all(got[y == -100] == 0)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    coef = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
    (ref * coef).sum().backward()
    (got * coef).sum().backward()
    for a, b in ((h2.grad, h1.grad), (w2.grad, w1.grad), (b2.grad, b1.grad)):
        assert _rel(a, b) < 1e-5


def test_fp64_matches_a_float64_oracle_and_keeps_float64():
    hid, w, bb, lab = _case(dtype=torch.float64, bias=True)
    h1, w1, b1 = _leaf(hid, w, bb)
    h2, w2, b2 = _leaf(hid, w, bb)
    z = F.linear(h1, w1, b1)[:, :-1]
    y = lab[:, 1:]
    ce = F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1), reduction="none").view(y.shape)
    cnt = (y != -100).sum(1)
    ref = (ce * (y != -100)).sum(1) / cnt.clamp(min=1)
    got = per_sample_loss_from_hidden(h2, w2, lab, bias=b2, chunk_size=3)
    assert got.dtype == torch.float64
    ok = cnt > 0
    assert torch.isnan(got[~ok]).all()
    torch.testing.assert_close(got[ok], ref[ok], rtol=1e-12, atol=1e-12)
    ref[ok].sum().backward()
    torch.where(ok, got, 0).sum().backward()
    for a, b in ((h2.grad, h1.grad), (w2.grad, w1.grad), (b2.grad, b1.grad)):
        assert _rel(a, b) < 1e-10


def test_bf16_matches_full_logits():
    """bf16 inputs: logits rounded to bf16, statistics in float32, like per_sample_loss."""
    hid, w, bb, lab = _case(dtype=torch.bfloat16, t=12, v=40, h=16)
    h1, w1 = _leaf(hid, w)[:2]
    h2, w2 = _leaf(hid, w)[:2]
    ref = goreweight.per_sample_loss(h1 @ w1.t(), lab)
    got = per_sample_loss_from_hidden(h2, w2, lab, chunk_size=7)
    assert got.dtype == torch.float32
    ok = ~torch.isnan(ref)
    # the same bf16 matmul per token, so the same rounded logits: float32 agreement
    torch.testing.assert_close(got[ok], ref[ok], rtol=1e-5, atol=1e-5)
    torch.where(ok, ref, 0).sum().backward()
    torch.where(ok, got, 0).sum().backward()
    assert h2.grad.dtype == torch.bfloat16 and w2.grad.dtype == torch.bfloat16
    # the hidden gradient is one bf16 matmul on both sides; the weight gradient is summed over
    # chunks in float32 here, over all tokens inside one bf16 matmul there: bf16 rounding apart
    assert _rel(h2.grad, h1.grad) < 1e-5
    assert _rel(w2.grad, w1.grad) < 1e-2


def test_autocast_casts_like_the_output_layer():
    hid, w, bb, lab = _case(t=10, v=30, h=8)
    h1, w1 = _leaf(hid, w)[:2]
    h2, w2 = _leaf(hid, w)[:2]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = goreweight.per_sample_loss(F.linear(h1, w1), lab)
        got = per_sample_loss_from_hidden(h2, w2, lab, chunk_size=4)
    ok = ~torch.isnan(ref)
    torch.testing.assert_close(got[ok], ref[ok], rtol=1e-5, atol=1e-5)
    torch.where(ok, ref, 0).sum().backward()
    torch.where(ok, got, 0).sum().backward()
    assert w2.grad.dtype == torch.float32  # flows back through the cast to the float32 weight
    assert _rel(h2.grad, h1.grad) < 1e-2 and _rel(w2.grad, w1.grad) < 1e-2


def test_gradcheck_float64():
    hid, w, bb, lab = _case(b=2, t=4, h=3, v=5, dtype=torch.float64, bias=True)
    lab[-1, 1:] = torch.tensor([1, 4, -100])  # keep every sequence counted: NaN has no derivative
    args = _leaf(hid, w, bb)

    def f(h, w_, b_):
        return per_sample_loss_from_hidden(h, w_, lab, bias=b_, chunk_size=3)

    assert torch.autograd.gradcheck(f, tuple(args), eps=1e-6, atol=1e-8)

    def g(h, w_, b_):
        return per_token_loss_from_hidden(h, w_, lab, bias=b_, shift=False, chunk_size=2)

    lab[lab == -100] = 0  # shift=False counts position 0 too
    lab[0, 0] = -100
    assert torch.autograd.gradcheck(g, tuple(args), eps=1e-6, atol=1e-8)


def test_no_full_logits_chunking_is_exact_across_sizes():
    hid, w, bb, lab = _case(b=2, t=33, v=17)
    a = per_sample_loss_from_hidden(hid, w, lab, chunk_size=1)
    b = per_sample_loss_from_hidden(hid, w, lab, chunk_size=1000)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, equal_nan=True)


def test_empty_sequence_axis_gives_nan():
    hid, w, _, lab = _case()
    hid, lab = hid[:, :1], lab[:, :1]
    out = per_sample_loss_from_hidden(hid, w, lab)
    assert out.shape == (3,) and torch.isnan(out).all()
    assert per_token_loss_from_hidden(hid, w, lab).shape == (3, 0)


def test_bad_input_names_the_argument():
    hid, w, bb, lab = _case(bias=True)
    with pytest.raises(TypeError, match="hidden"):
        per_sample_loss_from_hidden(hid.numpy(), w, lab)
    with pytest.raises(ValueError, match="hidden"):
        per_sample_loss_from_hidden(hid[0], w, lab)
    with pytest.raises(ValueError, match="lm_head_weight"):
        per_sample_loss_from_hidden(hid, w[:, :-1], lab)
    with pytest.raises(TypeError, match="lm_head_weight"):
        per_sample_loss_from_hidden(hid, w.double(), lab)
    with pytest.raises(ValueError, match="labels"):
        per_sample_loss_from_hidden(hid, w, lab[:, :-1])
    with pytest.raises(TypeError, match="labels"):
        per_sample_loss_from_hidden(hid, w, lab.float())
    with pytest.raises(TypeError, match="labels"):
        per_sample_loss_from_hidden(hid, w, lab > 0)
    with pytest.raises(ValueError, match="bias"):
        per_sample_loss_from_hidden(hid, w, lab, bias=bb[:-1])
    bad = lab.clone()
    bad[0, 4] = w.shape[0]  # vocabulary mismatch: a label the output layer cannot produce
    with pytest.raises(ValueError, match=r"labels must be token ids in \[0, 11\)"):
        per_sample_loss_from_hidden(hid, w, bad)
    bad[0, 4] = -5
    with pytest.raises(ValueError, match="labels"):
        per_token_loss_from_hidden(hid, w, bad)
    with pytest.raises(ValueError, match="chunk_size"):
        per_sample_loss_from_hidden(hid, w, lab, chunk_size=0)
    with pytest.raises(TypeError, match="shift"):
        per_sample_loss_from_hidden(hid, w, lab, shift=1)
    with pytest.raises(TypeError, match="ignore_index"):
        per_sample_loss_from_hidden(hid, w, lab, ignore_index=-1.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_matches_full_logits(dtype):
    hid, w, _, lab = _case(b=4, t=64, h=32, v=1000, dtype=dtype, device="cuda")
    h1, w1 = _leaf(hid, w)
    h2, w2 = _leaf(hid, w)
    ref = goreweight.per_sample_loss(h1 @ w1.t(), lab)
    got = per_sample_loss_from_hidden(h2, w2, lab, chunk_size=50)
    ok = ~torch.isnan(ref)
    torch.testing.assert_close(got[ok], ref[ok], rtol=1e-5, atol=1e-5)
    torch.where(ok, ref, 0).sum().backward()
    torch.where(ok, got, 0).sum().backward()
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    assert _rel(h2.grad, h1.grad) < tol and _rel(w2.grad, w1.grad) < tol
