"""Tests of ibtui.estimators against the sanity facts of docs/design.md and plain reference code."""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ibtui import estimators as mi
from ibtui.estimators import kde
from ibtui.errors import ConfigError, IbtuiError

KDE_BOUNDS = ("upper", "lower")


# ---------------------------------------------------------------------------------------------
# Straightforward references: float64 numpy, full N x N, explicit loops over classes.


def reference_kde(t, y, noise_variance, bound):
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y)
    n = len(t)
    d2 = ((t[:, None, :] - t[None, :, :]) ** 2).sum(axis=-1)
    width = (2.0 if bound == "upper" else 8.0) * noise_variance
    kern = np.exp(-d2 / width)
    ixt = -np.mean(np.log(kern.sum(axis=1) / n))
    cond = 0.0
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        sub = kern[np.ix_(members, members)]
        cond += len(members) / n * -np.mean(np.log(sub.sum(axis=1) / len(members)))
    return ixt / math.log(2), (ixt - cond) / math.log(2)


def reference_entropy(items):
    counts = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    n = len(items)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def reference_binning(codes, y):
    rows = [tuple(r) for r in np.asarray(codes).tolist()]
    y = np.asarray(y).tolist()
    h_t = reference_entropy(rows)
    cond = 0.0
    for c in sorted(set(y)):
        members = [r for r, label in zip(rows, y) if label == c]
        cond += len(members) / len(rows) * reference_entropy(members)
    return h_t, h_t - cond


def close(got, expected, tol):
    """Nested sequences of numbers equal within tol."""
    a, b = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol))


@pytest.fixture(params=["compiled", "torch"])
def kde_path(request, monkeypatch):
    """Runs a test on the CPU's compiled KDE kernel and again on the torch path (the one CUDA
    uses, and the CPU's fallback where numba cannot be imported)."""
    if request.param == "torch":
        monkeypatch.setattr(kde, "_compiled", None)
    else:
        assert kde._compiled_kernel() is not None, "numba is a dependency: the compiled kernel must load"
    return request.param


def separated_points(n, d=2, spacing=10.0):
    """n distinct points on a grid, `spacing` apart."""
    side = math.ceil(n ** (1.0 / d))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * d, indexing="ij"), axis=-1).reshape(-1, d)
    return grid[:n].astype(np.float64) * spacing


# ---------------------------------------------------------------------------------------------
# Sanity facts


@pytest.mark.parametrize("bound", KDE_BOUNDS)
def test_kde_distinct_separated_points_give_log2n_and_hy(bound):
    t = separated_points(64)
    y = np.arange(64) % 3
    ixt, ity = mi.kde_mi(t, y, noise_variance=1e-4, bound=bound)
    assert ixt == pytest.approx(6.0, abs=1e-9)
    assert ity == pytest.approx(mi.label_entropy(y), abs=1e-9)


def test_binning_distinct_points_with_tiny_bins_give_log2n_and_hy():
    t = separated_points(50, d=3, spacing=1.0)
    y = np.array([0] * 30 + [1] * 20)
    hy = mi.label_entropy(y)
    assert hy == pytest.approx(reference_entropy(y.tolist()))
    for kwargs in ({"bin_size": 0.01}, {"n_bins": 1000}, {"n_bins": 200, "value_range": (-1.0, 5.0)}):
        ixt, ity = mi.binning_mi(t, y, **kwargs)
        assert ixt == pytest.approx(math.log2(50), abs=1e-12), kwargs
        assert ity == pytest.approx(hy, abs=1e-12), kwargs


def test_adaptive_distinct_points_give_log2n_and_hy():
    t = np.random.default_rng(0).permutation(16).astype(np.float64)[:, None] * 0.1
    y = np.arange(16) % 2
    ixt, ity = mi.adaptive_mi(t, y, n_bins=16)
    assert ixt == pytest.approx(4.0, abs=1e-12)
    assert ity == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("estimator", ["kde_upper", "kde_lower", "binning", "adaptive"])
def test_identical_points_give_zero(estimator):
    t = np.tile(np.array([[0.3, -0.7, 0.123456]]), (100, 1))
    y = np.arange(100) % 4
    for noise in (1e-8, 1e-3, 10.0):
        (ixt, ity), = mi.estimate_layers([t], y, [estimator], noise_variance=noise)[estimator]
        assert ixt == 0.0
        assert ity == pytest.approx(0.0, abs=1e-12)


def test_upper_bound_of_i_xt_is_at_least_the_lower_bound():
    """Both bound the same I(X; T + noise), so upper >= lower is a theorem for I(X;T); for I(T;Y),
    a difference of two bounded terms, it is not, and no order is asserted."""
    rng = np.random.default_rng(1)
    for noise in (1e-3, 1e-2, 1e-1, 1.0):
        t = np.tanh(rng.normal(size=(300, 4)) * 2)
        y = rng.integers(0, 3, 300)
        up = mi.kde_mi(t, y, noise, "upper")
        lo = mi.kde_mi(t, y, noise, "lower")
        assert up[0] > lo[0]


@pytest.mark.parametrize("bound", KDE_BOUNDS)
def test_kde_falls_as_sigma_grows(bound):
    rng = np.random.default_rng(2)
    t = rng.uniform(-1, 1, size=(400, 3))
    y = (t[:, 0] > 0).astype(int)
    values = [mi.kde_mi(t, y, s2, bound) for s2 in np.logspace(-8, 4, 17)]
    ixt = [v[0] for v in values]
    assert all(a >= b for a, b in zip(ixt, ixt[1:]))
    assert ixt[0] == pytest.approx(math.log2(400), abs=1e-6)
    assert ixt[-1] < 1e-3
    # I(T;Y) goes from H(Y) (every point alone) to 0 (one blob); on these labels it falls throughout
    ity = [v[1] for v in values]
    assert ity[0] == pytest.approx(mi.label_entropy(y), abs=1e-6)
    assert all(a >= b - 1e-9 for a, b in zip(ity, ity[1:]))
    assert ity[-1] < 1e-3


def test_binning_falls_as_bins_grow():
    rng = np.random.default_rng(3)
    t = np.tanh(rng.normal(size=(500, 3)))
    y = rng.integers(0, 2, 500)
    # nested bins (each a union of the finer ones): both I(X;T) and I(T;Y) cannot grow
    fixed = [mi.binning_mi(t, y, bin_size=0.01 * 2**k) for k in range(8)]
    ranged = [mi.binning_mi(t, y, n_bins=2**k, value_range=(-1, 1)) for k in range(9, 0, -1)]
    for series in (fixed, ranged):
        for (a_x, a_y), (b_x, b_y) in zip(series, series[1:]):
            assert a_x >= b_x
            assert a_y >= b_y - 1e-12


@pytest.mark.parametrize("bound", KDE_BOUNDS)
def test_kde_shift_invariant_and_scaling_equals_dividing_sigma(bound):
    rng = np.random.default_rng(4)
    t = rng.normal(size=(200, 5))
    y = rng.integers(0, 2, 200)
    base = mi.kde_mi(t, y, 0.3, bound)
    shifted = mi.kde_mi(t + rng.normal(size=5) * 3.0, y, 0.3, bound)
    assert shifted == pytest.approx(base, abs=1e-5)
    for c in (0.5, 3.0):
        scaled = mi.kde_mi(t * c, y, 0.3, bound)
        assert scaled == pytest.approx(mi.kde_mi(t, y, 0.3 / c**2, bound), abs=1e-5)


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(5)
    t = np.tanh(rng.normal(size=(257, 4)))
    y = rng.integers(0, 3, 257)
    names = [name for name, spec in mi.ESTIMATORS.items() if not spec.needs_inputs]
    as_numpy = mi.estimate_layers([t], y, names, n_bins=30, value_range=(-1, 1))
    as_torch = mi.estimate_layers([torch.from_numpy(t)], torch.from_numpy(y), names, n_bins=30, value_range=(-1, 1))
    as_float32 = mi.estimate_layers([torch.from_numpy(t).float()], torch.from_numpy(y).int(), names, n_bins=30, value_range=(-1, 1))
    for name in names:
        assert close(as_torch[name], as_numpy[name], 1e-9)
        if name.startswith("kde"):
            assert close(as_float32[name], as_numpy[name], 1e-5)
    assert mi.kde_mi(torch.from_numpy(t), torch.from_numpy(y), 0.01) == pytest.approx(mi.kde_mi(t, y, 0.01), abs=1e-9)
    assert mi.binning_mi(torch.from_numpy(t), y, bin_size=0.1) == mi.binning_mi(t, y, bin_size=0.1)
    assert mi.adaptive_mi(torch.from_numpy(t), y) == mi.adaptive_mi(t, y)


# ---------------------------------------------------------------------------------------------
# The fast path against the references


@pytest.mark.parametrize(
    ("n", "d", "counts", "noise"),
    [
        (300, 3, None, 1e-2),
        (257, 2, None, 1e-3),
        (500, 10, None, 1e-1),
        (333, 5, (300, 30, 3), 5e-2),  # unbalanced, 3 classes
        (128, 1, (1, 127), 1e-2),  # a class of one sample
        (400, 7, (100, 100, 100, 100), 1.0),
    ],
)
def test_estimate_layers_kde_matches_reference(kde_path, n, d, counts, noise):
    rng = np.random.default_rng(n * d)
    if counts is None:
        y = rng.integers(0, 2, n)
    else:
        y = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    layers = [np.tanh(rng.normal(size=(n, d)) * 2), rng.normal(size=(n, d)) * 0.3]
    got = mi.estimate_layers(layers, y, ["kde_upper", "kde_lower"], noise_variance=noise)
    for name, bound in (("kde_upper", "upper"), ("kde_lower", "lower")):
        for layer, value in zip(layers, got[name]):
            assert close(value, reference_kde(layer, y, noise, bound), 1e-4)
    # one bound alone, and the bounds asked in the other order
    only_upper = mi.estimate_layers(layers, y, ["kde_upper"], noise_variance=noise)["kde_upper"]
    assert close(only_upper, got["kde_upper"], 1e-5)
    swapped = mi.estimate_layers(layers, y, ["kde_lower", "kde_upper"], noise_variance=noise)
    assert swapped == got


def test_kde_accepts_any_real_dtype(kde_path):
    rng = np.random.default_rng(5)
    t, y = torch.tanh(torch.from_numpy(rng.normal(size=(120, 3)))), torch.from_numpy(rng.integers(0, 2, 120))
    reference = reference_kde(t.to(torch.bfloat16).double().numpy(), y.numpy(), 0.05, "upper")
    assert close(mi.kde_mi(t.to(torch.bfloat16), y, 0.05), reference, 1e-4)
    codes = torch.from_numpy(rng.integers(0, 3, (120, 2)))
    assert close(mi.kde_mi(codes, y, 0.5), reference_kde(codes.numpy(), y.numpy(), 0.5, "upper"), 1e-4)


def test_kde_falls_back_to_torch_with_a_warning_where_numba_cannot_load(monkeypatch):
    rng = np.random.default_rng(3)
    t, y = np.tanh(rng.normal(size=(150, 3))), rng.integers(0, 2, 150)
    monkeypatch.setattr(kde, "_compiled", kde._NOT_LOADED)
    monkeypatch.setitem(sys.modules, "ibtui.estimators._kde_cpu", None)  # import raises ImportError
    monkeypatch.delattr(sys.modules["ibtui.estimators"], "_kde_cpu", raising=False)
    with pytest.warns(RuntimeWarning, match="compiled KDE kernel is unavailable"):
        got = mi.kde_mi(t, y, 0.01)
    assert kde._compiled is None
    assert close(got, reference_kde(t, y, 0.01, "upper"), 1e-4)


@pytest.mark.parametrize("chunk", [1, 37, 1000, 1 << 14, 1 << 22])
def test_kde_chunk_size_does_not_change_results(monkeypatch, chunk):
    monkeypatch.setattr(kde, "_compiled", None)  # the torch path's stripes
    rng = np.random.default_rng(6)
    t = np.tanh(rng.normal(size=(211, 4)))
    y = rng.permutation(np.repeat([0, 1, 2], [100, 90, 21]))
    expected = {b: reference_kde(t, y, 0.02, b) for b in KDE_BOUNDS}
    monkeypatch.setattr(kde, "_CHUNK_ELEMENTS", chunk)
    monkeypatch.setattr(kde, "_MIN_STRIPE_WIDTH", 1 if chunk < 100 else 32)
    got = mi.estimate_layers([t], y, ["kde_upper", "kde_lower"], noise_variance=0.02)
    assert close(got["kde_upper"][0], expected["upper"], 1e-5)
    assert close(got["kde_lower"][0], expected["lower"], 1e-5)


@pytest.fixture
def torch_threads():
    """Sets torch's thread count for a test and puts the previous one back."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _fresh_thread_count():
    """torch.get_num_threads() as a thread started now sees it (the process-wide default)."""
    seen = []
    worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    return seen[0]


@pytest.mark.parametrize("threads", [2, 3])
def test_kde_threaded_equals_single_threaded(monkeypatch, kde_path, torch_threads, threads):
    rng = np.random.default_rng(14)
    y = rng.permutation(np.repeat([0, 1, 2], [300, 250, 50]))
    layers = [np.tanh(rng.normal(size=(600, w)) * 2) for w in (6, 3, 2, 1)]
    monkeypatch.setattr(kde, "_CHUNK_ELEMENTS", 1 << 13)  # many stripes, several per thread
    names = ["kde_upper", "kde_lower"]
    torch_threads(1)
    single = mi.estimate_layers(layers, y, names, noise_variance=0.01)
    single_one = [mi.kde_mi(t, y, 0.01, b) for t in layers[:2] for b in KDE_BOUNDS]
    torch_threads(threads)
    default_before = _fresh_thread_count()
    # whole layers per thread: bitwise the single-threaded result
    assert mi.estimate_layers(layers, y, names, noise_variance=0.01) == single
    # one layer: the compiled kernel splits its rows (bitwise the same); the torch path deals
    # its stripes to the threads (partial sums added in another order)
    threaded_one = [mi.kde_mi(t, y, 0.01, b) for t in layers[:2] for b in KDE_BOUNDS]
    if kde_path == "compiled":
        assert threaded_one == single_one
    assert close(threaded_one, single_one, 1e-9)
    assert mi.kde_mi(layers[0], y, 0.01) == mi.kde_mi(layers[0], y, 0.01)  # deterministic
    for name, bound in (("kde_upper", "upper"), ("kde_lower", "lower")):
        assert close(single[name][0], reference_kde(layers[0], y, 0.01, bound), 1e-4)
    # the caller's thread count and the default for new threads are as they were
    assert torch.get_num_threads() == threads
    assert _fresh_thread_count() == default_before == threads


def test_binning_matches_reference():
    rng = np.random.default_rng(7)
    t = np.tanh(rng.normal(size=(300, 5)) * 2)
    y = rng.integers(0, 3, 300)
    assert mi.binning_mi(t, y, bin_size=0.07) == pytest.approx(reference_binning(np.floor(t / 0.07), y), abs=1e-12)
    lo, hi = t.min(), t.max()
    codes = np.clip(np.floor((t - lo) / (hi - lo) * 30), 0, 29)
    assert mi.binning_mi(t, y, n_bins=30) == pytest.approx(reference_binning(codes, y), abs=1e-12)
    codes = np.clip(np.floor((t + 0.5) / 1.0 * 30), 0, 29)  # range [-0.5, 0.5], clipped
    assert mi.binning_mi(t, y, n_bins=30, value_range=(-0.5, 0.5)) == pytest.approx(reference_binning(codes, y), abs=1e-12)


def test_binning_without_range_uses_the_data_range():
    rng = np.random.default_rng(8)
    t = np.maximum(rng.normal(size=(200, 3)) * 5, 0)  # ReLU-like, unbounded
    y = rng.integers(0, 2, 200)
    assert mi.binning_mi(t, y, n_bins=30) == mi.binning_mi(t, y, n_bins=30, value_range=(t.min(), t.max()))
    # on a fixed [-1, 1] range nearly everything is clipped into the top bin
    assert mi.binning_mi(t, y, n_bins=30, value_range=(-1, 1))[0] < mi.binning_mi(t, y, n_bins=30)[0]


def test_binning_key_overflow_falls_back_to_unique_rows():
    rng = np.random.default_rng(9)
    codes = rng.integers(-(2**40), 2**40, size=(100, 4))
    codes[50:] = codes[:50]  # duplicated rows
    y = rng.integers(0, 2, 100)
    t = codes.astype(np.float64)
    assert mi.binning_mi(t, y, bin_size=1.0) == pytest.approx(reference_binning(codes, y), abs=1e-12)


def test_estimate_layers_matches_single_estimators_and_defaults():
    rng = np.random.default_rng(11)
    layers = [np.tanh(rng.normal(size=(150, w))) for w in (6, 3, 2)]
    y = rng.integers(0, 2, 150)
    names = [name for name, spec in mi.ESTIMATORS.items() if not spec.needs_inputs]
    got = mi.estimate_layers(layers, y, names, noise_variance=0.01, adaptive_bins=12)
    assert list(got) == names
    for i, layer in enumerate(layers):
        assert close(got["kde_upper"][i], mi.kde_mi(layer, y, 0.01, "upper"), 1e-6)  # alone: exp2 directly
        assert close(got["kde_lower"][i], mi.kde_mi(layer, y, 0.01, "lower"), 1e-9)
        assert got["binning"][i] == mi.binning_mi(layer, y, bin_size=0.07)  # the default
        assert got["adaptive"][i] == mi.adaptive_mi(layer, y, n_bins=12)
    assert mi.estimate_layers([], y, ["binning"]) == {"binning": []}


def test_kde_ity_near_collapse_follows_the_exact_value_and_may_dip_below_zero(kde_path):
    # Cases where random search with local minimisation drove the exact I(T;Y) towards 0; no
    # exact negative value was found. The torch path's kernel sums follow the exact value to
    # ~1e-9. The compiled kernel adds its terms in float32 runs (then float64) and takes the
    # upper bound's terms as the 4th power of the lower's, which multiplies their rounding by 4:
    # up to 4e-8 here.
    tolerance = 1e-8 if kde_path == "torch" else 5e-8
    cases = [
        ([[0.231], [0.17], [0.113]], [0, 2, 0]),
        ([[0.529], [0.52], [0.525]], [1, 1, 2]),
        ([[-0.321], [-0.342], [-0.363]], [1, 2, 1]),
    ]
    for t, y in cases:
        for bound in KDE_BOUNDS:
            exact = reference_kde(t, y, 1.0, bound)[1]
            got = mi.kde_mi(np.array(t), np.array(y), 1.0, bound)[1]
            assert exact >= 0
            assert got == pytest.approx(exact, abs=tolerance)
    # A near-collapse case: the exact I(T;Y) is +1.5e-9 bits; the float32 kernel sums of the
    # compiled path must stay within 1e-8 bits of it (a more accurate kernel only gets closer),
    # the float64 torch path within 1e-12. It is reported as computed, not clamped.
    t, y = np.array([[-0.321], [-0.342], [-0.363]]), np.array([1, 2, 1])
    exact = reference_kde(t, y, 1.0, "lower")[1]
    got = mi.kde_mi(t, y, 1.0, "lower")[1]
    assert 0 < exact < 1e-8
    assert got == pytest.approx(exact, abs=1e-12 if kde_path == "torch" else 1e-8)


# ---------------------------------------------------------------------------------------------
# Bad parameters


@pytest.mark.parametrize(
    "call",
    [
        lambda t, y: mi.kde_mi(t, y, 0.0),
        lambda t, y: mi.kde_mi(t, y, -1.0),
        lambda t, y: mi.kde_mi(t, y, float("nan")),
        lambda t, y: mi.kde_mi(t, y, 1e-3, bound="middle"),
        lambda t, y: mi.kde_mi(t[:, 0], y, 1e-3),  # 1-D activations
        lambda t, y: mi.kde_mi(t, y[:-1], 1e-3),  # labels not matching N
        lambda t, y: mi.kde_mi(t, y[:, None], 1e-3),
        lambda t, y: mi.kde_mi(t, y.astype(float), 1e-3),
        lambda t, y: mi.binning_mi(t, y, bin_size=0.0),
        lambda t, y: mi.binning_mi(t, y, bin_size=-0.1),
        lambda t, y: mi.binning_mi(t, y, n_bins=0),
        lambda t, y: mi.binning_mi(t, y, n_bins=2.5),
        lambda t, y: mi.adaptive_mi(t, y, n_bins=10**9),  # over the limit
        lambda t, y: mi.binning_mi(t, y, n_bins=10**9),
        lambda t, y: mi.kde_mi(t, y, 1e-300),  # under the limit: float32 would give NaN
        lambda t, y: mi.ksg_mi(t, y),  # no inputs
        lambda t, y: mi.edge_mi(t, y),
        lambda t, y: mi.ksg_mi(t, y, inputs=t[:-1]),
        lambda t, y: mi.estimate_layers([t], y, ["ksg"]),
        lambda t, y: mi.binning_mi(t, y, bin_size=0.1, n_bins=30),  # both
        lambda t, y: mi.binning_mi(t, y, n_bins=30, value_range=(1.0, -1.0)),
        lambda t, y: mi.adaptive_mi(t, y, n_bins=0),
        lambda t, y: mi.estimate_layers([t], y, ["kde"]),
        lambda t, y: mi.estimate_layers([t, t[:-1]], y, ["binning"]),
        lambda t, y: mi.estimate_layers([t], y, ["kde_upper"], noise_variance=0),
        lambda t, y: mi.estimate_layers([t], y, ["binning"], bin_size=-1),
    ],
)
def test_bad_parameters_raise_config_error(call):
    rng = np.random.default_rng(13)
    t, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    with pytest.raises(ConfigError) as info:
        call(t, y)
    assert isinstance(info.value, IbtuiError)
    message = str(info.value)
    assert message.endswith((".", ")")) and "\n" not in message


def test_unknown_estimator_message_suggests_the_name():
    with pytest.raises(ConfigError, match="unknown estimator 'kde_uper'; did you mean 'kde_upper'"):
        mi.estimate_layers([np.zeros((4, 2))], [0, 1, 0, 1], ["kde_uper"])


def test_non_finite_activations_are_refused():
    t = np.zeros((5, 2))
    t[2, 1] = np.nan
    with pytest.raises(IbtuiError):
        mi.kde_mi(t, [0, 1, 0, 1, 0], 1e-3)


# ---------------------------------------------------------------------------------------------
# Properties on random finite inputs

_matrices = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.float64, st.tuples(st.just(n), st.integers(1, 5)), elements=st.floats(-3, 3, allow_nan=False, width=32)),
        hnp.arrays(np.int64, st.just(n), elements=st.integers(0, 3)),
    )
)
_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(data=_matrices, log_noise=st.floats(-6, 1))
def test_property_kde_bounds(data, log_noise):
    t, y = data
    n, hy = len(t), mi.label_entropy(y)
    for bound in KDE_BOUNDS:
        ixt, ity = mi.kde_mi(t, y, 10.0**log_noise, bound)
        assert math.isfinite(ixt) and math.isfinite(ity)
        assert 0.0 <= ixt <= math.log2(n) + 1e-9
        assert ity <= hy + 1e-6
        assert ity >= -1e-6


@_settings
@given(data=_matrices, bin_size=st.floats(1e-3, 2.0), n_bins=st.integers(1, 40))
def test_property_binning_bounds(data, bin_size, n_bins):
    t, y = data
    n, hy = len(t), mi.label_entropy(y)
    for ixt, ity in (
        mi.binning_mi(t, y, bin_size=bin_size),
        mi.binning_mi(t, y, n_bins=n_bins),
        mi.binning_mi(t, y, n_bins=n_bins, value_range=(-1, 1)),
        mi.adaptive_mi(t, y, n_bins=n_bins),
    ):
        assert math.isfinite(ixt) and math.isfinite(ity)
        assert 0.0 <= ixt <= math.log2(n) + 1e-9
        assert -1e-12 <= ity <= hy + 1e-9
        assert ity <= ixt + 1e-9
