"""goreweight.weights against two independent implementations: the numpy
float64 oracle in grw_oracle.py and goreweight.torch_reference."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch

import goreweight
import grw_oracle
from goreweight import torch_reference

STRATEGIES = ["uniform", "linupper", "quadratic", "extremes", "dro-kl", "topk", "truncate"]
Q = {"topk": 0.3, "truncate": 0.2}
RTOL, ATOL = 2e-6, 1e-37


def close(got, want, what=""):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, what
    err = np.abs(got - want)
    tol = RTOL * np.abs(want) + ATOL
    bad = np.nonzero(err > tol)[0]
    assert bad.size == 0, f"{what}: {bad.size} weights differ, first at {bad[0]}: {got[bad[0]]!r} vs {want[bad[0]]!r}"


def random_batch(rng: np.random.Generator, m: int, shape: int) -> np.ndarray:
    if shape == 0:  # token cross-entropies
        return (2 + rng.standard_normal(m)).astype(np.float32)
    if shape == 1:  # heavy tail
        return np.exp(2 * rng.standard_normal(m)).astype(np.float32)
    if shape == 2:  # few distinct values: ties
        return rng.integers(0, 4, m).astype(np.float32)
    if shape == 3:  # huge spread
        return (10.0 ** rng.uniform(-30, 30, m)).astype(np.float32)
    return rng.uniform(-100, 100, m).astype(np.float32)  # negative and positive


def check_all(losses, **kw):
    """goreweight.weights == oracle == torch_reference on one batch."""
    want = grw_oracle.weights(losses, **kw)
    got = goreweight.weights(torch.from_numpy(np.asarray(losses, dtype=np.float32)), **kw)
    assert got.dtype == torch.float32
    close(got, want, f"goreweight vs oracle {kw}")
    ref = torch_reference.weights(torch.from_numpy(np.asarray(losses, dtype=np.float32)), **kw)
    close(ref, want, f"torch_reference vs oracle {kw}")
    assert abs(float(got.double().sum()) - 1) < 1e-5
    assert float(got.min()) >= 0
    return got


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_random_batches(strategy):
    # a fixed seed per strategy (hash(str) is randomised per process)
    rng = np.random.default_rng(1000 + STRATEGIES.index(strategy))
    for trial in range(40):
        m = [1, 2, 3, 7, 64, 128, 1000, 4097][trial % 8]
        losses = random_batch(rng, m, trial % 5)
        r = [0.05, 0.2, 0.4, 1.0, 3.0, 100.0, math.inf][trial % 7]
        delta = [1.0, 0.5, 2.0][trial % 3]
        check_all(losses, strategy=strategy, r=r, delta=delta, q=Q.get(strategy))


def test_large_batch_parallel_path():
    rng = np.random.default_rng(1)
    losses = random_batch(rng, 3 * 16384 + 17, 0)
    for s in ("linupper", "quadratic"):
        check_all(losses, strategy=s, r=0.3)
    check_all(losses, strategy="linupper", r=0.2, cap=2.0)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(
    "losses",
    [
        [3.0],  # M = 1
        [2.0, 2.0, 2.0, 2.0],  # all equal
        [1.0, 1.0 + 2**-22, 1.0],  # within 8 ulps: uniform
        [1.0, 1.0 + 2**-19, 1.0 + 2**-19],  # just beyond: weighted
        [1.0, 1.0, 2.0, 2.0, 3.0, 3.0],  # ties
        [1e-30, 1.0, 1e30],  # huge spread
        [3.4e38, -3.4e38, 0.0],  # the float32 range
        [-5.0, -1.0, 0.0, 1e-45],  # negative, denormal
    ],
)
def test_adversarial(strategy, losses):
    for r in (0.01, 1.0, math.inf):
        check_all(losses, strategy=strategy, r=r, q=Q.get(strategy))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_nonfinite_zero(strategy):
    losses = [1.0, math.nan, 2.0, math.inf, 3.0, -math.inf, 4.0]
    w = check_all(losses, strategy=strategy, r=0.5, q=Q.get(strategy))
    assert w[1] == 0 and w[3] == 0 and w[5] == 0
    _, st = goreweight.weights(np.asarray(losses, np.float32), strategy, 0.5, q=Q.get(strategy), return_stats=True)
    assert st["nonfinite"] == 3 and st["valid"] == 4 and st["m"] == 7


def test_nonfinite_raise_and_all_nonfinite():
    with pytest.raises(goreweight.GoreweightError, match="non-finite.*index 1"):
        goreweight.weights(torch.tensor([1.0, math.nan, 2.0]), nonfinite="raise")
    with pytest.raises(ValueError, match="all 2 losses are non-finite"):
        goreweight.weights(torch.tensor([math.nan, math.inf]))
    # the oracle agrees that these are refused
    with pytest.raises(grw_oracle.NonFinite):
        grw_oracle.weights([1.0, math.nan], nonfinite="raise")


@pytest.mark.parametrize("cap", [1.0, 1.5, 2.0, 4.0])
@pytest.mark.parametrize("strategy", ["linupper", "quadratic", "extremes", "dro-kl", "uniform"])
def test_cap(strategy, cap):
    rng = np.random.default_rng(int(cap * 10))
    for trial in range(10):
        m = [2, 5, 64, 1000][trial % 4]
        losses = random_batch(rng, m, trial % 5)
        r = [0.05, 0.3, 1.0][trial % 3]
        w = check_all(losses, strategy=strategy, r=r, cap=cap)
        assert float(w.max()) <= cap / m * (1 + 1e-6)


def test_cap_with_nonfinite_and_stats():
    losses = np.array([0.0, 10.0, math.nan, 1.0, 2.0], np.float32)
    w, st = goreweight.weights(losses, "linupper", 0.05, cap=1.5, return_stats=True)
    close(w, grw_oracle.weights(losses, "linupper", 0.05, cap=1.5))
    assert st["capped"] >= 1 and st["max_wm"] <= 1.5 + 1e-6


def test_cap_infeasible_is_an_error():
    # topk keeps 1 of 4 samples: no weight can be <= 1.5/4 and still sum to 1
    with pytest.raises(goreweight.GoreweightError, match="cap"):
        goreweight.weights(torch.tensor([1.0, 2.0, 3.0, 4.0]), "topk", q=0.25, cap=1.5)


def test_domains_multipliers_and_stats():
    rng = np.random.default_rng(5)
    losses = random_batch(rng, 200, 0)
    dom = rng.integers(0, 3, 200)
    mult = [1.0, 0.5, 2.0]
    for s in ("linupper", "uniform", "quadratic"):
        check_all(losses, strategy=s, r=0.7, domains=dom, domain_multipliers=mult)
    mult0 = [1.0, 0.0, 3.0]
    w = check_all(losses, strategy="linupper", r=0.7, domains=dom, domain_multipliers=mult0)
    assert float(w[torch.from_numpy(dom == 1)].abs().sum()) == 0
    w, st = goreweight.weights(losses, "linupper", 0.7, domains=dom, return_stats=True)
    for d in range(3):
        sel = dom == d
        assert st[f"domain/{d}/count"] == sel.sum()
        assert st[f"domain/{d}/weight_sum"] == pytest.approx(float(w[sel].astype(np.float64).sum()), rel=1e-5)
        assert st[f"domain/{d}/mean_loss"] == pytest.approx(float(losses[sel].astype(np.float64).mean()), rel=1e-9)


def test_stats_against_weights():
    rng = np.random.default_rng(9)
    losses = random_batch(rng, 500, 1)
    w, st = goreweight.weights(losses, "linupper", 0.4, return_stats=True)
    w64 = w.astype(np.float64)
    assert st["ess"] == pytest.approx(1 / (w64**2).sum(), rel=1e-5)
    assert st["max_wm"] == pytest.approx(w64.max() * 500, rel=1e-5)
    assert st["loss_weighted"] == pytest.approx((w64 * losses).sum(), rel=1e-5)
    assert st["entropy"] == pytest.approx(-(w64 * np.log(w64)).sum(), rel=1e-5)
    assert st["r"] == 0.4 and st["uniform"] == 0.0


# ---------------------------------------------------------------- input kinds


def test_torch_dtypes_strides_and_grad():
    rng = np.random.default_rng(3)
    base = torch.from_numpy(random_batch(rng, 301, 0))
    want = goreweight.weights(base, r=0.5)
    # bf16 and fp16 inputs: the weights of the upcast values
    for dt in (torch.bfloat16, torch.float16, torch.float64):
        x = base.to(dt)
        got = goreweight.weights(x, r=0.5)
        assert got.dtype == torch.float32
        close(got, grw_oracle.weights(x.float().numpy(), r=0.5), str(dt))
    # non-contiguous
    big = torch.stack([base, base * 7], dim=1)  # column 0 has stride 2
    col = big[:, 0]
    assert not col.is_contiguous()
    assert torch.equal(goreweight.weights(col, r=0.5), want)
    assert torch.equal(goreweight.weights(base.flip(0), r=0.5), want.flip(0))
    # requires_grad: the weights carry no graph
    g = base.clone().requires_grad_(True)
    out = goreweight.weights(g, r=0.5)
    assert not out.requires_grad and torch.equal(out, want)


def test_numpy_inputs():
    rng = np.random.default_rng(4)
    a = random_batch(rng, 100, 0)
    want = goreweight.weights(torch.from_numpy(a), r=0.5).numpy()
    for x in (a, a.astype(np.float64), a.astype(np.float16), a[::-1].copy()[::-1], np.repeat(a, 2)[::2]):
        got = goreweight.weights(x, r=0.5)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        close(got, grw_oracle.weights(x.astype(np.float32), r=0.5))
    assert np.array_equal(goreweight.weights(a, r=0.5), want)


def test_arrow_inputs():
    rng = np.random.default_rng(6)
    a = random_batch(rng, 50, 0)
    want = goreweight.weights(a, r=0.5)
    for arr in (pa.array(a), pa.array(a.astype(np.float64)), pa.array(a.astype(np.float16))):
        got = goreweight.weights(arr, r=0.5)
        assert isinstance(got, pa.Array) and got.type == pa.float32() and len(got) == 50
        close(got.to_numpy(), grw_oracle.weights(np.asarray(arr.to_numpy(), np.float32), r=0.5), str(arr.type))
    assert np.array_equal(goreweight.weights(pa.array(a), r=0.5).to_numpy(), want)
    # nulls count as non-finite
    with_nulls = pa.array([1.0, None, 2.0, 3.0], type=pa.float32())
    got = goreweight.weights(with_nulls).to_numpy()
    close(got, grw_oracle.weights([1.0, math.nan, 2.0, 3.0]))
    with pytest.raises(goreweight.GoreweightError, match="non-finite"):
        goreweight.weights(with_nulls, nonfinite="raise")
    # a slice (offset), a chunked array, and a non-pyarrow producer of the PyCapsule interface
    sl = pa.array(a)[10:30]
    close(goreweight.weights(sl, r=0.5).to_numpy(), grw_oracle.weights(a[10:30], r=0.5))
    ch = pa.chunked_array([a[:20], a[20:]])
    close(goreweight.weights(ch, r=0.5).to_numpy(), grw_oracle.weights(a, r=0.5))

    class Producer:
        def __init__(self, arr):
            self.arr = arr

        def __arrow_c_array__(self, requested_schema=None):
            return self.arr.__arrow_c_array__(requested_schema)

    close(goreweight.weights(Producer(pa.array(a)), r=0.5).to_numpy(), grw_oracle.weights(a, r=0.5))
    # domains as Arrow
    dom = pa.array(rng.integers(0, 2, 50).astype(np.int64))
    _, st = goreweight.weights(pa.array(a), domains=dom, return_stats=True)
    assert st["domain/0/count"] + st["domain/1/count"] == 50


def test_arrow_wrong_type_is_an_error():
    with pytest.raises(goreweight.GoreweightError, match="float16, float32 or float64"):
        goreweight.weights(pa.array([1, 2, 3]))
    with pytest.raises(ValueError, match="empty"):
        goreweight.weights(pa.array([], type=pa.float32()))


def test_arrow_input_follows_the_live_buffer():
    # The Arrow array exported on each call refers to the caller's buffer (here
    # numpy memory wrapped without a copy): a change between two calls on the
    # same array object shows in the weights.
    a = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    arr = pa.Array.from_buffers(pa.float32(), 4, [None, pa.py_buffer(a)])
    w1 = goreweight.weights(arr).to_numpy()
    a[0] = 10.0
    w2 = goreweight.weights(arr).to_numpy()
    close(w1, grw_oracle.weights([1.0, 2.0, 3.0, 4.0]))
    close(w2, grw_oracle.weights([10.0, 2.0, 3.0, 4.0]))


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kw, exc, name",
    [
        ({"r": 0.0}, ValueError, "r"),
        ({"r": -1.0}, ValueError, "r"),
        ({"r": math.nan}, ValueError, "r"),
        ({"r": "1"}, TypeError, "r"),
        ({"r": True}, TypeError, "r"),
        ({"delta": 0.0}, ValueError, "delta"),
        ({"delta": -2}, ValueError, "delta"),
        ({"delta": math.inf}, ValueError, "delta"),
        ({"delta": None}, TypeError, "delta"),
        ({"delta": True}, TypeError, "delta"),
        ({"cap": 0.5}, ValueError, "cap"),
        # cap 0 is not here: it is the documented "no cap" of the core's Options
        # (docs/method.md), the same as cap=None
        ({"cap": math.inf}, ValueError, "cap"),
        ({"cap": "2"}, TypeError, "cap"),
        ({"strategy": "nope"}, ValueError, "strategy"),
        ({"strategy": ""}, ValueError, "strategy"),
        ({"strategy": 3}, TypeError, "strategy"),
        ({"nonfinite": "ignore"}, ValueError, "nonfinite"),
        ({"nonfinite": None}, TypeError, "nonfinite"),
        ({"strategy": "topk"}, ValueError, "q"),
        ({"strategy": "topk", "q": 0.0}, ValueError, "q"),
        ({"strategy": "truncate", "q": 1.0}, ValueError, "q"),
        ({"domain_multipliers": [1.0, -1.0]}, ValueError, "domain[_ ]multipliers?"),  # Go's words
        ({"domains": [0, 1]}, ValueError, "domains"),
        ({"domains": [0.0, 1.0, 0.0]}, TypeError, "domains"),
        ({"domains": [0, -1, 0]}, ValueError, "domain"),
        ({"domains": [0, 5, 0], "domain_multipliers": [1.0, 1.0]}, ValueError, "domain"),
    ],
)
def test_bad_arguments_name_the_argument(kw, exc, name):
    x = torch.tensor([1.0, 2.0, 3.0])
    with pytest.raises(exc, match=rf"\b{name}\b"):
        goreweight.weights(x, **kw)


@pytest.mark.parametrize(
    "losses, exc",
    [
        (torch.zeros(0), ValueError),
        (torch.zeros(2, 2, 2), ValueError),  # 2-D is token level (test_token_level.py)
        (torch.tensor(1.0), ValueError),
        (torch.tensor([1, 2, 3]), TypeError),
        (np.zeros(0, np.float32), ValueError),
        (np.zeros((2, 2, 2), np.float32), ValueError),
        (np.array([1, 2]), TypeError),
        ([1.0, 2.0], TypeError),
        ("abc", TypeError),
    ],
)
def test_bad_losses(losses, exc):
    with pytest.raises(exc, match="losses"):
        goreweight.weights(losses)


def test_go_errors_are_valueerrors_and_carry_the_message():
    with pytest.raises(ValueError) as e:
        goreweight.weights(torch.tensor([1.0, math.nan]), nonfinite="raise")
    assert isinstance(e.value, goreweight.GoreweightError)
    assert "index 1" in str(e.value)


def test_strategies_and_bound():
    assert goreweight.strategies() == sorted(STRATEGIES)
    assert goreweight.max_weight_bound(128, 1.0, 1.0) == pytest.approx(math.e / (math.e + 127))
    assert goreweight.max_weight_bound(128, 1.0, math.inf) == pytest.approx(1 / 128)
    with pytest.raises(ValueError, match=r"\bm\b"):
        goreweight.max_weight_bound(0, 1.0, 1.0)


def test_versions_agree():
    from importlib.metadata import version

    assert goreweight.__version__ == version("goreweight")
    assert goreweight.library_version().split()[0] == goreweight.__version__


# ---------------------------------------------------------------- small r, subnormal exponentials
# Regression tests for cases this suite's random comparison found (fixed in
# the core by 09d5e49): with r = 0.01 the unnormalised exponentials were
# float32 subnormals, which the cap's rescaling (or a batch whose largest
# exponent is far below 0) turned into visible errors.


def test_cap_precision_with_subnormal_exponentials():
    check_all([0.0, 0.001, 0.5, 0.5, 1.0], strategy="quadratic", r=0.01, cap=1.25)  # was 0.212766 for 0.213568


def test_small_weights_when_the_maximum_exponent_is_below_zero():
    check_all([0.0, 0.2647, 1.0], strategy="quadratic", r=0.01)  # w[0] was 1.5703e-34 for 1.5439e-34


def test_feasible_cap_with_tiny_exponentials_is_not_refused():
    w = check_all([0.0, 1.0, 2.0], strategy="dro-kl", r=0.01, delta=3.0, cap=1.0)  # exact: uniform
    assert torch.allclose(w, torch.full((3,), 1 / 3))


@pytest.mark.parametrize("strategy, r", [("uniform", 1.0), ("linupper", 1.0), ("linupper", 0.01), ("quadratic", 0.3)])
def test_cap_with_domain_multipliers(strategy, r):
    # cap = 10 never binds here, so the weights must equal the uncapped ones:
    # uniform with multipliers [2, 1] is [1/3, 1/6, 1/3, 1/6] (core: 0.25 each).
    check_all([1.0, 2.0, 3.0, 4.0], strategy=strategy, r=r, cap=10.0, domains=[0, 1, 0, 1], domain_multipliers=[2.0, 1.0])
    rng = np.random.default_rng(2)
    losses = random_batch(rng, 300, 0)
    dom = rng.integers(0, 3, 300)
    check_all(losses, strategy=strategy, r=r, cap=1.5, domains=dom, domain_multipliers=[4.0, 1.0, 0.5])


def test_twin_cap_at_small_r_is_the_projection_not_infeasible():
    # issue 13.4 (the twin's half): at r = 0.001 the softmax of all but the top
    # entries underflows to 0, yet the cap is feasible. linupper on linspace(2, 4, 64):
    # the top 32 tie at score 1, the others are 2/63/r = 31.7 nats apart, so the
    # projection gives t = cap/M to the top 58, the remainder 1 - 58 t to the 59th
    # and about e^-31.7 of that to the 60th (hand-computed).
    x = torch.linspace(2, 4, 64, dtype=torch.float64)
    t = 1.1 / 64
    w = torch_reference.weights(x, "linupper", r=0.001, cap=1.1).double()
    order = torch.argsort(x, descending=True)
    ws = w[order]
    torch.testing.assert_close(ws[:58], torch.full((58,), t, dtype=torch.float64), rtol=1e-6, atol=0)
    assert ws[58].item() == pytest.approx(1 - 58 * t, rel=1e-5)
    assert ws[59].item() == pytest.approx((1 - 58 * t) * math.exp(-(2 / 63) / 0.001), rel=1e-3)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
    # cap = 1 is exactly uniform at any r
    u = torch_reference.weights(x, "linupper", r=0.001, cap=1.0).double()
    torch.testing.assert_close(u, torch.full((64,), 1 / 64, dtype=torch.float64), rtol=1e-6, atol=0)
