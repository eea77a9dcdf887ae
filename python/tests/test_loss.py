"""reweighted_loss and per_sample_loss: values and gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import goreweight
import grw_oracle


def test_gradient_wrt_per_sample_losses_is_the_weights():
    torch.manual_seed(0)
    for strategy, kw in [("linupper", {}), ("quadratic", {}), ("extremes", {"cap": 2.0}), ("topk", {"q": 0.5})]:
        l = (torch.rand(37) * 3).requires_grad_(True)
        loss = goreweight.reweighted_loss(l, strategy, r=0.4, **kw)
        (g,) = torch.autograd.grad(loss, l)
        want = grw_oracle.weights(l.detach().numpy(), strategy, 0.4, **kw)
        np.testing.assert_allclose(g.numpy(), want, rtol=2e-6, atol=1e-37)
        assert loss.item() == pytest.approx(float((want * l.detach().double().numpy()).sum()), rel=1e-6)
        assert loss.dtype == torch.float32 and loss.ndim == 0


def test_gradient_through_a_model_is_the_weighted_sum_of_per_sample_gradients():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x = torch.randn(12, 5)
    y = torch.randint(0, 3, (12,))

    def per_sample():
        return torch.nn.functional.cross_entropy(model(x), y, reduction="none")

    l = per_sample()
    w = goreweight.weights(l.detach(), "linupper", r=0.3)
    loss = goreweight.reweighted_loss(l, "linupper", r=0.3)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    # Σ_i w_i ∇l_i, one sample at a time
    want = [torch.zeros_like(p) for p in model.parameters()]
    for i in range(12):
        gi = torch.autograd.grad(per_sample()[i], list(model.parameters()))
        for acc, g in zip(want, gi):
            acc += w[i] * g
    for g, wg in zip(grads, want):
        torch.testing.assert_close(g, wg, rtol=1e-5, atol=1e-7)


def test_uniform_equals_mean_with_the_same_gradient():
    torch.manual_seed(2)
    for m in (1, 7, 128, 1000):
        l = torch.rand(m, dtype=torch.float32).requires_grad_(True)
        loss = goreweight.reweighted_loss(l, "uniform")
        mean = l.mean()
        torch.testing.assert_close(loss, mean, rtol=1e-6, atol=0)
        (g1,) = torch.autograd.grad(loss, l)
        (g2,) = torch.autograd.grad(mean, l)
        torch.testing.assert_close(g1, g2, rtol=1e-6, atol=0)


def test_nonfinite_losses_do_not_poison_loss_or_gradient():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], requires_grad=True)
    bad = torch.tensor([0.0, 0.0, math.nan, 0.0, math.inf])
    l = x + bad  # NaN and inf per-sample losses whose local derivative is finite
    loss = goreweight.reweighted_loss(l, "linupper", r=1.0)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(x.grad).all(), x.grad
    want = grw_oracle.weights([1.0, 2.0, math.nan, 4.0, math.inf], "linupper", 1.0)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=2e-6)
    assert x.grad[2] == 0 and x.grad[4] == 0
    assert loss.item() == pytest.approx(float(want[[0, 1, 3]] @ np.array([1.0, 2.0, 4.0])), rel=1e-6)
    with pytest.raises(goreweight.GoreweightError, match="non-finite"):
        goreweight.reweighted_loss(l, nonfinite="raise")


def test_bf16_per_sample_losses():
    l = torch.tensor([1.0, 2.5, 3.0, 7.0], dtype=torch.bfloat16, requires_grad=True)
    loss = goreweight.reweighted_loss(l, r=0.5)
    assert loss.dtype == torch.float32
    loss.backward()
    want = grw_oracle.weights(l.detach().float().numpy(), r=0.5)
    np.testing.assert_allclose(l.grad.float().numpy(), want, rtol=1e-2)  # bf16 gradient storage
    assert loss.item() == pytest.approx(float((want * l.detach().float().double().numpy()).sum()), rel=1e-6)


def test_reweighted_loss_arguments():
    with pytest.raises(TypeError, match="per_sample"):
        goreweight.reweighted_loss([1.0, 2.0])
    with pytest.raises(goreweight.GoreweightError, match="empty"):  # EmptyBatchError once Go reports status 3
        goreweight.reweighted_loss(torch.zeros(0))
    with pytest.raises(ValueError, match="per_sample"):
        goreweight.reweighted_loss(torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match=r"\br\b"):
        goreweight.reweighted_loss(torch.ones(3), r=0)
    with pytest.raises(ValueError, match=r"\bcap\b"):
        goreweight.reweighted_loss(torch.ones(3), cap=0.9)


def test_domains_in_reweighted_loss():
    l = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    loss = goreweight.reweighted_loss(l, "uniform", domains=[0, 0, 1, 1], domain_multipliers=[1.0, 3.0])
    (g,) = torch.autograd.grad(loss, l)
    np.testing.assert_allclose(g.numpy(), [0.125, 0.125, 0.375, 0.375], rtol=1e-6)


# ---------------------------------------------------------------- per_sample_loss


def naive_per_sample(logits, labels, ignore_index=-100, shift=True):
    out = []
    for b in range(logits.shape[0]):
        tot, cnt = 0.0, 0
        T = logits.shape[1]
        for t in range(T - 1 if shift else T):
            y = int(labels[b, t + 1 if shift else t])
            if y == ignore_index:
                continue
            z = logits[b, t].double()
            tot += float(torch.logsumexp(z, 0) - z[y])
            cnt += 1
        out.append(tot / cnt if cnt else math.nan)
    return np.array(out)


def test_per_sample_loss_matches_a_naive_loop():
    torch.manual_seed(3)
    logits = torch.randn(4, 6, 11)
    labels = torch.randint(0, 11, (4, 6))
    labels[1, 2:] = -100
    labels[2, 1:] = -100  # fully masked after the shift
    labels[3, 0] = -100  # masked only where the shift drops it anyway
    for shift in (True, False):
        got = goreweight.per_sample_loss(logits, labels, shift=shift)
        want = naive_per_sample(logits, labels, shift=shift)
        assert got.dtype == torch.float32 and got.shape == (4,)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, equal_nan=True)
    assert math.isnan(goreweight.per_sample_loss(logits, labels)[2])


def test_per_sample_loss_bf16_is_float32_and_masked_rows_do_not_poison():
    torch.manual_seed(4)
    logits = torch.randn(3, 5, 7).to(torch.bfloat16).requires_grad_(True)
    labels = torch.randint(0, 7, (3, 5))
    labels[1, 1:] = 7  # ignore_index = 7 below
    l = goreweight.per_sample_loss(logits, labels, ignore_index=7)
    assert l.dtype == torch.float32
    assert math.isnan(l.detach()[1])
    want = naive_per_sample(logits.detach().float(), labels, ignore_index=7)
    np.testing.assert_allclose(l.detach().numpy(), want, rtol=1e-5, equal_nan=True)
    loss = goreweight.reweighted_loss(l, r=1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad.float()).all()
    assert float(logits.grad[1].float().abs().sum()) == 0


def test_per_sample_loss_arguments():
    with pytest.raises(ValueError, match="logits"):
        goreweight.per_sample_loss(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        goreweight.per_sample_loss(torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="labels"):
        goreweight.per_sample_loss(torch.randn(2, 3, 4), torch.zeros(2, 3))
    with pytest.raises(TypeError, match="logits"):
        goreweight.per_sample_loss(np.zeros((2, 3, 4)), torch.zeros(2, 3, dtype=torch.long))
