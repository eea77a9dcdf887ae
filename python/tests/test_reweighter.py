"""Reweighter and schedules."""

from __future__ import annotations

import io
import math
import pickle

import numpy as np
import pyarrow as pa
import pytest
import torch

import goreweight
import grw_oracle
from goreweight import schedules


def test_schedules_values():
    lin = schedules.linear(100, 1, 10)
    assert lin(0) == 100 and lin(5) == pytest.approx(50.5) and lin(10) == 1 and lin(10**9) == 1
    cos = schedules.cosine(100, 1, 10)
    assert cos(0) == 100 and cos(5) == pytest.approx(50.5) and cos(10) == 1 and cos(50) == 1
    assert cos(2) == pytest.approx(1 + 99 * (1 + math.cos(math.pi * 0.2)) / 2)
    exp = schedules.exponential(100, 1, 10)
    assert exp(0) == 100 and exp(5) == pytest.approx(10) and exp(10) == 1 and exp(11) == 1
    st = schedules.step([3, 7], [10, 5, 1])
    assert [st(t) for t in (0, 2, 3, 6, 7, 100)] == [10, 10, 5, 5, 1, 1]
    c = schedules.constant(0.4)
    assert c(0) == 0.4 and c(10**12) == 0.4


def test_warmup_is_uniform_then_the_schedule_starts():
    s = schedules.linear(100, 1, 10, warmup=5)
    assert [s(t) for t in range(5)] == [math.inf] * 5
    assert s(5) == 100 and s(15) == 1
    assert s.warmup == 5 and s.kind == "linear"


def test_official_variants():
    a = schedules.uniform_burn_in(0.5, steps=1000)
    assert a == schedules.constant(0.5, warmup=1000)
    assert a(999) == math.inf and a(1000) == 0.5
    b = schedules.high_then_fixed(0.5)
    assert b == schedules.step([2000], [100, 0.5])
    assert b(1999) == 100 and b(2000) == 0.5


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: schedules.constant(0), "r"),
        (lambda: schedules.constant(-1), "r"),
        (lambda: schedules.constant(math.inf), "r"),
        (lambda: schedules.constant("1"), "r"),
        (lambda: schedules.linear(0, 1, 10), "r_start"),
        (lambda: schedules.linear(1, -1, 10), "r_end"),
        (lambda: schedules.linear(10, 1, 0), "steps"),
        (lambda: schedules.cosine(10, 1, 2.5), "steps"),
        (lambda: schedules.exponential(10, 1, 10, warmup=-1), "warmup"),
        (lambda: schedules.step([5, 5], [1, 2, 3]), "boundaries"),
        (lambda: schedules.step([5], [1]), "values"),
        (lambda: schedules.step([5], [1, 0]), r"values\[1\]"),
        (lambda: schedules.from_dict({"kind": "linear", "r_start": 1, "r_end": 2}), "steps"),
        (lambda: schedules.from_dict({"kind": "wobbly"}), "kind"),
        (lambda: schedules.from_dict({"kind": "constant", "r": 1, "typo": 2}), "typo"),
    ],
)
def test_bad_schedules(make, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make()


def test_schedule_call_arguments_and_roundtrip():
    s = schedules.cosine(10, 1, 100, warmup=3)
    with pytest.raises(ValueError, match="step"):
        s(-1)
    with pytest.raises(TypeError, match="step"):
        s(1.5)
    assert schedules.from_dict(s.to_dict()) == s
    assert pickle.loads(pickle.dumps(s)) == s
    assert "cosine" in repr(s)


def test_reweighter_follows_its_schedule():
    sched = schedules.linear(100, 1, 4, warmup=2)
    rw = goreweight.Reweighter("linupper", schedule=sched)
    rng = np.random.default_rng(0)
    for step in range(8):
        assert rw.step == step
        r = sched(step)
        assert rw.r == r
        l = torch.from_numpy(rng.uniform(0, 5, 33).astype(np.float32)).requires_grad_(True)
        loss = rw(l)
        (g,) = torch.autograd.grad(loss, l)
        np.testing.assert_allclose(g.numpy(), grw_oracle.weights(l.detach().numpy(), "linupper", r), rtol=2e-6)
        st = rw.stats
        assert st["step"] == step and st["r"] == r and st["uniform"] == (1.0 if math.isinf(r) else 0.0)
        assert st["m"] == 33 and st["loss_weighted"] == pytest.approx(loss.item(), rel=1e-5)
        assert all(isinstance(v, float) for v in st.values())
    assert rw.step == 8


def test_default_schedule_is_constant_one():
    rw = goreweight.Reweighter()
    assert rw.schedule == schedules.constant(1.0)
    assert rw.r == 1.0
    assert goreweight.Reweighter(schedule=0.3).r == 0.3
    assert goreweight.Reweighter(schedule={"kind": "constant", "r": 2}).r == 2


def test_state_dict_resumes_exactly():
    cfg = dict(strategy="quadratic", schedule=schedules.cosine(50, 0.5, 20, warmup=3), cap=3.0)
    rng = np.random.default_rng(1)
    batches = [torch.from_numpy(rng.uniform(0, 5, 64).astype(np.float32)) for _ in range(12)]
    a = goreweight.Reweighter(**cfg)
    ref = [a.weights(b) for b in batches]
    b = goreweight.Reweighter(**cfg)
    for x in batches[:5]:
        b(x)
    buf = io.BytesIO()
    torch.save(b.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    c = goreweight.Reweighter("uniform")  # a different configuration: the state replaces it
    c.load_state_dict(state)
    assert c.step == 5 and c.config == a.config
    for k, x in enumerate(batches[5:], start=5):
        assert torch.equal(c.weights(x), ref[k])
    assert c.stats["step"] == 11


def test_step_setter_and_errors_do_not_advance():
    rw = goreweight.Reweighter(schedule=schedules.step([10], [5, 0.5]))
    rw.step = 10
    assert rw.r == 0.5
    with pytest.raises(ValueError, match="step"):
        rw.step = -1
    with pytest.raises(TypeError, match="step"):
        rw.step = 1.5
    rw2 = goreweight.Reweighter(nonfinite="raise")
    with pytest.raises(goreweight.GoreweightError, match="non-finite"):
        rw2(torch.tensor([1.0, math.nan]))
    assert rw2.step == 0 and rw2.stats == {}
    with pytest.raises(ValueError):
        rw2.load_state_dict({"version": 99, "config": {}, "step": 0})
    with pytest.raises(TypeError):
        rw2.load_state_dict("nope")


def test_reweighter_weights_of_every_kind_and_domains():
    rw = goreweight.Reweighter("linupper", schedule=0.5, domain_multipliers=[1.0, 2.0])
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    d = [0, 1, 0, 1]
    want = grw_oracle.weights(x, "linupper", 0.5, domains=d, domain_multipliers=[1.0, 2.0])
    np.testing.assert_allclose(rw.weights(x, d), want, rtol=2e-6)
    np.testing.assert_allclose(rw.weights(pa.array(x), d).to_numpy(), want, rtol=2e-6)
    np.testing.assert_allclose(rw.weights(torch.from_numpy(x), torch.tensor(d)).numpy(), want, rtol=2e-6)
    st = rw.stats
    assert st["domain/1/count"] == 2 and st["step"] == 2
    assert st["domain/1/weight_sum"] == pytest.approx(want[[1, 3]].sum(), rel=1e-6)


def test_reweighter_bad_arguments():
    with pytest.raises(ValueError, match="delta"):
        goreweight.Reweighter(delta=0)
    with pytest.raises(TypeError, match="schedule"):
        goreweight.Reweighter(schedule="linear")
    with pytest.raises(ValueError, match="strategy"):
        goreweight.Reweighter("nope")
    rw = goreweight.Reweighter()
    rw.close()
    with pytest.raises(ValueError, match="closed"):
        rw(torch.ones(3))
    assert "closed" in repr(rw)
