"""The registry, the limits every estimator enforces, and the exactness of both KDE paths on
ReLU-scale data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ibtui import config, estimators
from ibtui.errors import ConfigError, DataError
from ibtui.estimators import kde


def test_config_names_are_the_registry():
    assert config.ESTIMATORS == tuple(estimators.ESTIMATORS)
    for name, spec in estimators.ESTIMATORS.items():
        assert spec.name == name and spec.function.__name__ == f"{name}_mi"
        assert set(spec.params(config.InfoConfig())) <= set(spec.function.__code__.co_varnames)
        assert set(spec.reads) <= {f.name for f in config.fields(config.InfoConfig)}


def test_every_estimator_takes_numpy_or_torch_and_returns_floats():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    t = np.tanh(x @ rng.normal(size=(3, 4)))
    y = (x[:, 0] > 0).astype(int)
    for name, spec in estimators.ESTIMATORS.items():
        a = spec.function(t, y, inputs=x)
        b = spec.function(torch.from_numpy(t).float(), torch.from_numpy(y), inputs=torch.from_numpy(x))
        assert all(type(v) is float and math.isfinite(v) for v in (*a, *b)), name
        assert a == pytest.approx(b, abs=1e-4), name


def test_estimate_info_plane_passes_inputs_and_settings():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3))
    layers = [np.tanh(rng.normal(size=(2, 120, 4))), np.tanh(rng.normal(size=(2, 120, 2)))]
    y = rng.integers(0, 2, 120)
    info = config.InfoConfig(estimators=("ksg", "adaptive"), ksg_k=5, adaptive_bins=7)
    got = estimators.estimate_info_plane(layers, y, info, inputs=x)
    assert got["ksg"][1][0] == list(estimators.ksg_mi(layers[0][1], y, inputs=x, k=5))
    assert got["adaptive"][0][1] == list(estimators.adaptive_mi(layers[1][0], y, n_bins=7))
    with pytest.raises(ConfigError, match="pass inputs="):
        estimators.estimate_info_plane(layers, y, info)


def test_binning_of_huge_finite_values_keeps_distinct_bins():
    # A diverging ReLU net: |t| / bin_size beyond int64 (issue 14); every row stays its own state.
    t = np.array([[1e18], [2e18], [3e18], [-5e18], [1e300], [0.0]])
    y = np.array([0, 1, 0, 1, 0, 1])
    ixt, ity = estimators.binning_mi(t, y, bin_size=0.07)
    assert ixt == pytest.approx(math.log2(6), abs=1e-12) and ity == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ConfigError, match="too small"):
        estimators.binning_mi(np.array([[1e300], [0.0]]), [0, 1], bin_size=1e-300)


def test_limits_are_refused_with_the_limit_in_the_sentence():
    t, y = np.tanh(np.random.default_rng(2).normal(size=(50, 2))), np.arange(50) % 2
    with pytest.raises(ConfigError, match="between 1e-30 and 1e"):
        estimators.kde_upper_mi(t, y, noise_variance=1e-300)
    with pytest.raises(ConfigError, match="100000"):
        estimators.estimate_layers([t], y, ["adaptive"], adaptive_bins=10**9)
    base = config.RunConfig()
    for field, value, limit in (("info.noise_variance", 1e-300, "1e-30"), ("info.adaptive_bins", 10**9, "100,000"),
                                ("info.n_bins", 10**9, "100,000"), ("info.ksg_k", 0, "1000")):
        with pytest.raises(ConfigError, match=limit):
            base.with_overrides({field: value})


def test_kde_refuses_activations_too_far_apart_rather_than_nan():
    t = np.array([[0.0], [1e30], [2e30]])
    with pytest.raises(DataError, match="noise variance of at least"):
        estimators.kde_upper_mi(t, [0, 1, 0], noise_variance=1e-20)


def relu_scale_cluster(seed: int = 3):
    """A tight cluster far from the mean: ReLU-scale values 150-5,000."""
    rng = np.random.default_rng(seed)
    far = 3000.0 + rng.normal(size=(150, 4)) * 0.05
    spread = rng.uniform(150.0, 5000.0, size=(250, 4))
    t = np.vstack([far, spread]).astype(np.float32)
    y = rng.integers(0, 2, len(t))
    return t, y


def reference_kde64(t, y, s2, w):
    t = np.asarray(t, dtype=np.float64)
    d2 = ((t[:, None, :] - t[None, :, :]) ** 2).sum(-1)
    logk = -d2 / (w * s2)
    n = len(t)
    ixt = -np.mean(logsumexp_rows(logk) - math.log(n))
    cond = 0.0
    for c in np.unique(y):
        m = y == c
        cond += m.mean() * -np.mean(logsumexp_rows(logk[np.ix_(m, m)]) - math.log(m.sum()))
    return ixt / math.log(2), (ixt - cond) / math.log(2)


def logsumexp_rows(a):
    top = a.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))[:, 0]


@pytest.mark.parametrize("path", ["compiled", "torch"])
@pytest.mark.parametrize("s2", [1e-3, 1e-2, 1e-1])
def test_both_kde_paths_are_exact_on_relu_scale_clusters(monkeypatch, path, s2):
    if path == "torch":
        monkeypatch.setattr(kde, "_compiled", None)
    t, y = relu_scale_cluster()
    for name, w in (("kde_upper", 2.0), ("kde_lower", 8.0)):
        got = estimators.ESTIMATORS[name].function(t, y, noise_variance=s2)
        assert got == pytest.approx(reference_kde64(t, y, s2, w), abs=1e-4), (name, path)


def test_the_engine_passes_the_mi_samples_inputs(tmp_path, monkeypatch):
    from dataclasses import replace as replace_spec

    from ibtui.runs.runner import execute, prepare_run
    from tests.helpers import tiny_config

    seen = []

    def fake_ksg(activations, labels, *, inputs=None, k=3):
        seen.append((tuple(activations.shape), None if inputs is None else tuple(inputs.shape), k))
        return 1.0, 0.5

    monkeypatch.setitem(estimators.ESTIMATORS, "ksg", replace_spec(estimators.ESTIMATORS["ksg"], function=fake_ksg))
    config = tiny_config(**{"train.epochs": 3, "info.estimators": ("ksg",), "info.schedule": "every", "info.ksg_k": 4, "model.hidden": (5, 3)})
    trainer, store = prepare_run(config, tmp_path / "run")
    assert execute(trainer, store).status == "finished"
    assert seen and all(inputs == (shape[0], trainer.dataset.x.shape[1]) and k == 4 for shape, inputs, k in seen)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_one_value_that_is_not_finite_is_refused_by_every_estimator(bad, dtype):
    t = torch.rand(300, 7).to(dtype)
    t[123, 5] = bad
    y = torch.arange(300) % 3
    for name in ("kde_upper", "binning", "adaptive"):
        with pytest.raises(DataError, match="NaN or infinite"):
            estimators.estimate_layers([t], y, [name])
