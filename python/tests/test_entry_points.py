"""Hostile input at every Python entry point (weights, reweighted_loss,
Reweighter, per_sample_loss, load_state_dict, schedules): iterables and
mappings, integers beyond 64 bits, extreme floats, devices and dtypes
without data, masked and foreign buffers. Each case either gives the
mathematically right result (checked against the numpy oracle) or a
TypeError / ValueError naming the argument."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch

import goreweight
import grw_oracle
from goreweight import schedules

X = [1.0, 2.0, 3.0, 0.5]
DOM = [0, 1, 1, 0]


def close(got, want, rtol=2e-6):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), rtol=rtol, atol=1e-37)


# ---------------------------------------------------------------- domain_multipliers: iterables, mappings


def _entry_points(mult):
    """Each entry point that takes domain_multipliers, called with mult."""
    x = torch.tensor(X)
    return {
        "weights": lambda: goreweight.weights(x, "linupper", 0.5, domains=DOM, domain_multipliers=mult()),
        "reweighted_loss": lambda: goreweight.reweighted_loss(x, "linupper", 0.5, domains=DOM, domain_multipliers=mult()),
        "Reweighter": lambda: goreweight.Reweighter("linupper", 0.5, domain_multipliers=mult())(x, domains=DOM),
    }


@pytest.mark.parametrize("kind", ["iterator", "generator", "numpy", "tensor", "tuple"])
def test_multipliers_from_any_iterable_are_read_once_and_exactly(kind):
    # issue 13.5: an iterator was consumed by the cache key before it was checked
    make = {
        "iterator": lambda: iter([1.0, 3.0]),
        "generator": lambda: (v for v in (1.0, 3.0)),
        "numpy": lambda: np.array([1.0, 3.0]),
        "tensor": lambda: torch.tensor([1.0, 3.0]),
        "tuple": lambda: (1.0, 3.0),
    }[kind]
    want = grw_oracle.weights(X, "linupper", 0.5, domains=DOM, domain_multipliers=[1.0, 3.0])
    for _ in range(2):  # the second call hits the Weigher cache
        close(goreweight.weights(torch.tensor(X), "linupper", 0.5, domains=DOM, domain_multipliers=make()), want)
    loss = goreweight.reweighted_loss(torch.tensor(X), "linupper", 0.5, domains=DOM, domain_multipliers=make())
    assert loss.item() == pytest.approx(float(np.dot(want, X)), rel=1e-6)
    rw = goreweight.Reweighter("linupper", 0.5, domain_multipliers=make())
    close(rw.weights(np.asarray(X, np.float32), domains=DOM), want)


@pytest.mark.parametrize("entry", ["weights", "reweighted_loss", "Reweighter"])
@pytest.mark.parametrize("bad", [{0: 1.0, 1: 2.0}, {"0": 1.0}, "12", b"12", 3.0, np.ones((2, 2))])
def test_multipliers_mapping_or_non_sequence_is_refused_naming_the_argument(entry, bad):
    # issue 13.3: {0: 1.0, 1: 2.0} was read by its keys, as [0, 1]
    with pytest.raises((TypeError, ValueError), match="domain_multipliers"):
        _entry_points(lambda: bad)[entry]()


def test_multipliers_dict_is_a_type_error():
    with pytest.raises(TypeError, match="domain_multipliers.*mapping"):
        goreweight.weights(np.ones(4), domains=DOM, domain_multipliers={0: 1.0, 1: 2.0})


# ---------------------------------------------------------------- 64-bit integers


@pytest.mark.parametrize("v", [2**64 + 3, 2**64, 2**63, -(2**63) - 1])
def test_step_beyond_64_bits_is_a_value_error_not_a_wrap(v):
    # issue 13.9: rw.step = 2**64 + 3 read back 3
    rw = goreweight.Reweighter()
    rw.step = 7
    with pytest.raises(ValueError, match=r"\bstep\b"):
        rw.step = v
    assert rw.step == 7
    with pytest.raises(ValueError, match=r"\bstep\b"):
        schedules.linear(10, 1, 100)(v)


def test_negative_step_is_refused_naming_it():
    rw = goreweight.Reweighter()
    with pytest.raises(ValueError, match=r"\bstep\b"):
        rw.step = -1
    with pytest.raises(ValueError, match=r"\bstep\b"):
        schedules.constant(1.0)(-1)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: schedules.linear(10, 1, v), "steps"),
        (lambda v: schedules.cosine(10, 1, v), "steps"),
        (lambda v: schedules.exponential(10, 1, v), "steps"),
        (lambda v: schedules.constant(1.0, warmup=v), "warmup"),
        (lambda v: schedules.step([v], [2.0, 1.0]), "boundaries"),
        (lambda v: schedules.uniform_burn_in(1.0, steps=v), "steps"),
        (lambda v: schedules.from_dict({"kind": "linear", "r_start": 2, "r_end": 1, "steps": v}), "steps"),
        (lambda v: goreweight.max_weight_bound(v, 1.0, 1.0), "m"),
    ],
)
def test_schedule_and_size_integers_beyond_64_bits(make, name):
    for v in (2**64 + 1, 2**63):
        with pytest.raises(ValueError, match=name):
            make(v)


def test_max_weight_bound_does_not_wrap():
    with pytest.raises(ValueError, match=r"\bm\b"):
        goreweight.max_weight_bound(2**64 + 2, 1.0, 1.0)  # read as m = 2 before
    assert goreweight.max_weight_bound(2, 1.0, 1.0) == pytest.approx(math.e / (math.e + 1))


# ---------------------------------------------------------------- extreme floats


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: goreweight.weights(np.ones(3), r=10**400), "r"),
        (lambda: goreweight.weights(np.ones(3), delta=10**400), "delta"),
        (lambda: goreweight.weights(np.ones(3), delta=math.inf), "delta"),
        (lambda: goreweight.weights(np.ones(3), cap=math.nan), "cap"),
        (lambda: goreweight.weights(np.ones(3), domains=[0, 0, 0], domain_multipliers=[math.inf]), "domain_multipliers"),
        (lambda: goreweight.weights(np.ones(3), domains=[0, 0, 0], domain_multipliers=[10**400]), "domain_multipliers"),
        (lambda: goreweight.Reweighter(cap=math.inf), "cap"),
        (lambda: schedules.constant(math.inf), r"\br\b"),
        (lambda: schedules.linear(10**400, 1, 10), "r_start"),
        (lambda: schedules.step([10], [1.0, math.nan]), r"values"),
        (lambda: schedules.from_dict({"kind": "constant", "r": math.inf}), r"\br\b"),
        (lambda: goreweight.max_weight_bound(3, 10**400, 1.0), r"\bd\b"),
    ],
)
def test_floats_json_or_float64_cannot_carry_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_infinite_r_is_uniform():
    close(goreweight.weights(np.asarray(X), r=math.inf), np.full(4, 0.25))


# ---------------------------------------------------------------- numpy masked arrays


def test_masked_entries_are_not_data():
    # issue 13.10: the mask was ignored and masked entries weighted as data
    data = np.array([1.0, 50.0, 2.0, 3.0, -7.0])
    mask = np.array([False, True, False, False, True])
    got, st = goreweight.weights(np.ma.masked_array(data, mask=mask), "linupper", 0.5, return_stats=True)
    assert isinstance(got, np.ma.MaskedArray)
    assert np.array_equal(np.ma.getmaskarray(got), mask)
    full = np.ma.getdata(got)
    assert full[1] == 0 and full[4] == 0
    close(full[~mask], grw_oracle.weights(data[~mask], "linupper", 0.5))
    assert st["m"] == 3 and st["valid"] == 3 and st["nonfinite"] == 0  # masked is not non-finite
    assert st["loss_max"] == 3.0


def test_masked_entries_with_domains_and_a_reweighter():
    data = np.array([1.0, 9.0, 2.0, 3.0])
    mask = np.array([False, True, False, False])
    dom = np.array([0, 1, 1, 0])
    got, st = goreweight.weights(np.ma.masked_array(data, mask=mask), "quadratic", 1.0, domains=dom,
                                 domain_multipliers=[1.0, 2.0], return_stats=True)
    want = grw_oracle.weights(data[~mask], "quadratic", 1.0, domains=dom[~mask], domain_multipliers=[1.0, 2.0])
    close(np.ma.getdata(got)[~mask], want)
    assert st["domain/1/count"] == 1
    rw = goreweight.Reweighter("linupper", 0.5)
    close(np.ma.getdata(rw.weights(np.ma.masked_array(data, mask=mask)))[~mask],
          grw_oracle.weights(data[~mask], "linupper", 0.5))


def test_masked_nan_under_raise_is_not_an_error_and_all_masked_is_empty():
    a = np.ma.masked_invalid(np.array([1.0, np.nan, 2.0]))
    got = goreweight.weights(a, nonfinite="raise")
    close(np.ma.getdata(got), [grw_oracle.weights([1.0, 2.0])[0], 0.0, grw_oracle.weights([1.0, 2.0])[1]])
    with pytest.raises(goreweight.GoreweightError, match="empty"):
        goreweight.weights(np.ma.masked_all(3, dtype=np.float64))


def test_masked_domains_are_refused():
    with pytest.raises(ValueError, match="domains"):
        goreweight.weights(np.ones(3), domains=np.ma.masked_array([0, 1, 0], mask=[0, 1, 0]))


# ---------------------------------------------------------------- devices and dtypes


def _meta_calls(t, dom=None):
    rw = goreweight.Reweighter()
    return [
        lambda: goreweight.weights(t, domains=dom),
        lambda: goreweight.reweighted_loss(t, domains=dom),
        lambda: rw(t, domains=dom),
        lambda: rw.weights(t, domains=dom),
    ]


def test_meta_tensors_raise_a_goreweight_error_naming_the_device():
    # issue 13.12: raw torch NotImplementedError before
    for call in _meta_calls(torch.ones(3, device="meta")):
        with pytest.raises(goreweight.GoreweightError, match="meta"):
            call()
    for call in _meta_calls(torch.ones(3), torch.zeros(3, dtype=torch.long, device="meta")):
        with pytest.raises(goreweight.GoreweightError, match="domains.*meta"):
            call()
    logits = torch.zeros(2, 4, 5)
    labels = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(goreweight.GoreweightError, match="logits.*meta"):
        goreweight.per_sample_loss(logits.to("meta"), labels)
    with pytest.raises(goreweight.GoreweightError, match="labels.*meta"):
        goreweight.per_sample_loss(logits, labels.to("meta"))


@pytest.mark.parametrize(
    "t, exc, what",
    [
        (torch.ones(3, dtype=torch.complex64), TypeError, "floating"),
        (torch.ones(3, dtype=torch.int64), TypeError, "floating"),
        (torch.ones(3, dtype=torch.bool), TypeError, "floating"),
        (torch.tensor(1.0), ValueError, "1-D"),
        (torch.ones(2, 3, 4), ValueError, "1-D"),  # 2-D is token level
        (torch.ones(3).to_sparse(), TypeError, "dense"),
    ],
)
def test_tensors_without_a_loss_per_sample_are_refused_at_every_entry_point(t, exc, what):
    rw = goreweight.Reweighter()
    for call, name in [
        (lambda: goreweight.weights(t), "losses"),
        (lambda: goreweight.reweighted_loss(t), "per_sample"),
        (lambda: rw(t), "per_sample"),
        (lambda: rw.weights(t), "losses"),
    ]:
        with pytest.raises(exc, match=f"{name}.*{what}"):
            call()
    assert rw.step == 0  # no call advanced the step


def test_non_contiguous_half_and_requires_grad_tensors_are_weighted_exactly():
    base = torch.tensor([1.0, 9.0, 2.0, 9.0, 3.0, 9.0, 0.5, 9.0], dtype=torch.float64, requires_grad=True)
    strided = base[::2]  # non-contiguous, float64, requires grad
    want = grw_oracle.weights(X, "linupper", 0.5)
    close(goreweight.weights(strided, "linupper", 0.5), want)
    close(goreweight.weights(strided.detach().flip(0).flip(0).half(), "linupper", 0.5), want, rtol=1e-3)
    w = goreweight.weights(strided, "linupper", 0.5)
    assert not w.requires_grad and w.dtype == torch.float32
    loss = goreweight.reweighted_loss(strided, "linupper", 0.5)
    loss.backward()
    g = base.grad.numpy()
    close(g[::2], want, rtol=1e-6)
    assert np.all(g[1::2] == 0)


def test_per_sample_loss_refuses_complex_int_and_0d_naming_the_argument():
    labels = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="ignore_index"):
        goreweight.per_sample_loss(torch.zeros(2, 4, 5), labels, ignore_index=2**70)
    with pytest.raises(TypeError, match="logits"):
        goreweight.per_sample_loss(torch.zeros(2, 4, 5, dtype=torch.complex64), labels)
    with pytest.raises(TypeError, match="logits"):
        goreweight.per_sample_loss(torch.zeros(2, 4, 5, dtype=torch.long), labels)
    with pytest.raises(ValueError, match="logits"):
        goreweight.per_sample_loss(torch.tensor(1.0), labels)
    with pytest.raises(TypeError, match="labels"):
        goreweight.per_sample_loss(torch.zeros(2, 4, 5), labels.float())
    with pytest.raises(TypeError, match="labels"):
        goreweight.per_sample_loss(torch.zeros(2, 4, 5), labels.bool())


# ---------------------------------------------------------------- foreign buffers


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a.astype(">f4"),  # big-endian
        lambda a: a.astype(">f8"),
        lambda a: np.lib.stride_tricks.as_strided(np.repeat(a, 3), shape=a.shape, strides=(3 * a.itemsize,)),
        lambda a: a[::-1].copy()[::-1],  # negative strides
        lambda a: np.frombuffer(a.astype(np.float32).tobytes(), dtype=np.float32),  # read-only
        lambda a: a.astype(np.float16),
        lambda a: a.astype(np.longdouble),
    ],
)
def test_foreign_numpy_buffers(make):
    a = np.asarray(X)
    got = goreweight.weights(make(a), "linupper", 0.5)
    close(got, grw_oracle.weights(X, "linupper", 0.5), rtol=1e-3 if make(a).dtype == np.float16 else 2e-6)


def test_foreign_domain_buffers():
    want = grw_oracle.weights(X, "linupper", 0.5, domains=DOM, domain_multipliers=[1.0, 2.0])
    for d in (np.asarray(DOM, ">i8"), np.asarray(DOM, np.uint8), np.repeat(np.asarray(DOM, np.int16), 2)[::2],
              pa.array(DOM, pa.int16()), pa.chunked_array([DOM[:1], DOM[1:]]), tuple(DOM), torch.tensor(DOM)[None, :][0]):
        close(goreweight.weights(np.asarray(X), "linupper", 0.5, domains=d, domain_multipliers=[1.0, 2.0]), want)


@pytest.mark.parametrize("bad", [np.asarray(DOM, np.float64), [0, 1.5, 1, 0], np.asarray(DOM, bool), "0110", {0: 0}, iter(DOM),
                                 [0, 2**40, 1, 0], np.asarray(DOM * 2).reshape(2, 4)])
def test_bad_domains_are_refused_naming_them(bad):
    with pytest.raises((TypeError, ValueError), match="domains"):
        goreweight.weights(np.asarray(X), domains=bad)


def test_arrow_chunked_and_empty():
    want = grw_oracle.weights(X, "linupper", 0.5)
    close(goreweight.weights(pa.chunked_array([X[:1], X[1:3], X[3:]]), "linupper", 0.5).to_numpy(), want)
    with pytest.raises(goreweight.GoreweightError, match="empty"):
        goreweight.weights(pa.array([], pa.float32()))


# ---------------------------------------------------------------- load_state_dict


def test_load_state_dict_refuses_what_is_not_a_state():
    rw = goreweight.Reweighter()
    good = rw.state_dict()
    with pytest.raises(TypeError, match="state"):
        rw.load_state_dict([("step", 1)])
    with pytest.raises(TypeError, match=r"state\.step"):
        rw.load_state_dict({**good, "step": object()})
    rw.load_state_dict({**good, "step": np.int64(4)})  # numpy and 0-d tensor numbers convert
    assert rw.step == 4
    rw.load_state_dict({**good, "step": torch.tensor(6)})
    assert rw.step == 6
    bad = {**good, "config": {**good["config"], "delta": math.nan}}
    with pytest.raises(ValueError, match="delta"):
        rw.load_state_dict(bad)
    with pytest.raises(ValueError, match="step"):
        rw.load_state_dict({**good, "step": 2**64 + 3})
    rw.load_state_dict({**good, "step": 5})
    assert rw.step == 5


# ---------------------------------------------------------------- stats for loggers


def test_stats_are_a_flat_dict_of_floats_for_loggers():
    rw = goreweight.Reweighter("linupper", schedules.constant(1.0, warmup=1))
    rw(torch.tensor(X), domains=DOM)  # warm-up: r is inf
    rw(torch.tensor(X), domains=DOM)
    st = rw.stats
    assert st and all(type(k) is str and type(v) is float for k, v in st.items())
    assert {"step", "r", "ess", "max_wm", "domain/0/count"} <= set(st)
    st["r"] = -1.0  # a fresh dict at every read
    assert rw.stats["r"] == 1.0


# ---------------------------------------------------------------- the core's fixes, seen from Python (issue 13)


def test_huge_domain_ids_cost_nothing_and_are_reported_by_id():
    # 13.1: ids up to 2**31 - 1 used to size per-domain accumulators by the
    # largest id (Go's fatal out-of-memory at 2**31 - 1). Stats are per
    # distinct id; the weights do not depend on the ids at all.
    x = np.array([1, 2, 3, 4], np.float32)
    w, st = goreweight.weights(x, "linupper", 1.0, domains=[0, 2**31 - 1, 0, 30_000_000], return_stats=True)
    close(w, grw_oracle.weights(x, "linupper", 1.0))
    assert st["domain/2147483647/count"] == 1 and st["domain/0/count"] == 2 and st["domain/30000000/count"] == 1
    assert not any(k.startswith("domain/1/") for k in st)
    with pytest.raises((TypeError, ValueError), match="domains"):
        goreweight.weights(x, domains=[0, 2**31, 0, 1])  # beyond int32: refused, naming the argument


@pytest.mark.parametrize("extra", [{}, {"cap": 2.0}, {"strategy": "topk", "q": 0.5}])
def test_multipliers_without_domains_name_the_argument(extra):
    # 13.2: was an "internal error" (index out of range) in Go
    kw = {"strategy": "linupper", "r": 0.5, **extra}
    x = torch.tensor(X)
    for call in (
        lambda: goreweight.weights(x, domain_multipliers=[1.0, 2.0], **kw),
        lambda: goreweight.reweighted_loss(x, domain_multipliers=[1.0, 2.0], **kw),
        lambda: goreweight.Reweighter(
            domain_multipliers=[1.0, 2.0], schedule=schedules.constant(0.5), **{k: v for k, v in kw.items() if k != "r"}
        )(x),
    ):
        with pytest.raises(goreweight.GoreweightError, match="domain_multipliers") as e:
            call()
        assert not isinstance(e.value, goreweight.InternalError)


def test_cap_at_small_r_matches_the_log_space_oracle():
    # 13.4, the core's half: at r = 0.001 every exponential but the top ones
    # underflows, yet cap 1.1 is feasible; the core projects in log space.
    # Expected values: the hand-computed projection of test_weights.py's twin
    # test (the top 58 at cap/M, the 59th takes the rest).
    x = np.linspace(2, 4, 64).astype(np.float32)
    w = goreweight.weights(x, "linupper", 0.001, cap=1.1).astype(np.float64)
    ws = w[np.argsort(-x.astype(np.float64), kind="stable")]
    t = 1.1 / 64
    np.testing.assert_allclose(ws[:58], t, rtol=1e-6)
    assert ws[58] == pytest.approx(1 - 58 * t, rel=1e-5)
    assert w.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(goreweight.weights(x, "linupper", 0.001, cap=1.0), 1 / 64, rtol=1e-6)
    rw = goreweight.Reweighter("linupper", schedule=schedules.constant(0.001), cap=1.1)
    rw(torch.from_numpy(x))  # an annealed, capped Reweighter keeps training
    assert rw.stats["max_wm"] == pytest.approx(1.1, rel=1e-5)


def test_extreme_delta_and_r_are_errors_naming_them():
    # 13.7: delta near 9e307 gave all-NaN weights; r below ~5.6e-309 a
    # misleading message about domain multipliers
    x = torch.tensor(X)
    with pytest.raises(ValueError, match="delta"):
        goreweight.weights(x, delta=1e308)
    with pytest.raises(ValueError, match=r"\br\b"):
        goreweight.weights(x, r=5e-324)
    w = goreweight.weights(x, delta=1e300, r=1e300)  # the largest accepted: finite, exact
    assert torch.isfinite(w).all() and float(w.sum()) == pytest.approx(1.0, abs=1e-6)


def test_load_state_dict_is_as_strict_as_the_constructor():
    # 13.8: unknown keys (a typo such as "capp" would drop the cap) and delta 0
    # loaded silently
    rw = goreweight.Reweighter("linupper", cap=2.0)
    good = rw.state_dict()
    typo = {**good, "config": {**good["config"], "capp": 2.0}}
    with pytest.raises(ValueError, match="capp"):
        goreweight.Reweighter().load_state_dict(typo)
    zero = {**good, "config": {**good["config"], "delta": 0.0}}
    with pytest.raises(ValueError, match="delta"):
        goreweight.Reweighter().load_state_dict(zero)
    fresh = goreweight.Reweighter()
    fresh.load_state_dict(good)
    assert fresh.state_dict() == good
