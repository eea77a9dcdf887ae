"""The CUDA exchange path (one device-to-host copy into a reused pinned
buffer, one copy back). Skipped, with a visible reason, without a CUDA device."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import goreweight
import grw_oracle

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device: the CUDA exchange path is not exercised here"
)


def test_cuda_weights_equal_cpu_weights_for_many_sizes():
    rng = np.random.default_rng(0)
    for m in (1, 5, 1000, 1025, 70000, 3, 1000):  # grows and reuses the pinned buffers
        a = rng.uniform(0, 4, m).astype(np.float32)
        x = torch.from_numpy(a).cuda()
        w = goreweight.weights(x, "linupper", 0.5)
        assert w.is_cuda and w.device == x.device and w.dtype == torch.float32
        assert torch.equal(w.cpu(), goreweight.weights(torch.from_numpy(a), "linupper", 0.5))


def test_cuda_dtypes_strides_and_results_not_overwritten():
    base = torch.rand(4096, device="cuda") * 3
    keep = [goreweight.weights(base * k, "quadratic", 1.0) for k in (1, 2, 3)]
    torch.cuda.synchronize()
    for k, w in zip((1, 2, 3), keep):  # earlier results survive later calls
        np.testing.assert_allclose(w.cpu().numpy(), grw_oracle.weights((base * k).cpu().numpy(), "quadratic", 1.0), rtol=2e-6, atol=1e-37)
    col = torch.stack([base, base], 1)[:, 0].to(torch.bfloat16)
    w = goreweight.weights(col, r=0.5)
    np.testing.assert_allclose(w.cpu().numpy(), grw_oracle.weights(col.float().cpu().numpy(), r=0.5), rtol=2e-6, atol=1e-37)


def test_cuda_reweighted_loss_gradient_and_reweighter():
    l = (torch.rand(300, device="cuda") * 3).requires_grad_(True)
    loss = goreweight.reweighted_loss(l, "linupper", r=0.4)
    (g,) = torch.autograd.grad(loss, l)
    np.testing.assert_allclose(g.cpu().numpy(), grw_oracle.weights(l.detach().cpu().numpy(), "linupper", 0.4), rtol=2e-6)
    rw = goreweight.Reweighter(schedule=0.4)
    l2 = torch.tensor([1.0, float("nan"), 2.0], device="cuda", requires_grad=True)
    out = rw(l2, domains=torch.tensor([0, 1, 0], device="cuda"))
    assert torch.isfinite(out) and rw.stats["nonfinite"] == 1


def test_cuda_two_threads():
    xs = [torch.rand(5000, device="cuda") for _ in range(4)]
    want = [goreweight.weights(x.cpu(), r=0.3) for x in xs]
    errors = []

    def work(k):
        for i in range(50):
            j = (i + k) % 4
            if not torch.equal(goreweight.weights(xs[j], r=0.3).cpu(), want[j]):
                errors.append((k, i))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors


def test_cuda_empty_batch_and_labels_on_another_device():
    with pytest.raises(goreweight.GoreweightError, match="empty"):
        goreweight.weights(torch.zeros(0, device="cuda"))
    logits = torch.zeros(2, 4, 5, device="cuda")
    with pytest.raises(ValueError, match="labels.*device"):
        goreweight.per_sample_loss(logits, torch.zeros(2, 4, dtype=torch.long))
