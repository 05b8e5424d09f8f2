"""The compiled KSG / Ross neighbour search gives exactly the estimates of the cKDTree code it
replaced (transcribed below as the reference, given the same jittered inputs: X from seed 0, and
one copy of each layer, from seed 1, for both estimators), on tanh-like and ReLU-like layers, with
binary and continuous inputs, for every path: compiled, tree fallback, KSG alone or with Ross, one
layer or many, any thread count; and EDGE's one-dimensional k-th neighbour distances equal the
tree's too."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma

from ibtui import estimators
from ibtui.estimators import ksg


# --- the reference: ibtui/estimators/ksg.py before the compiled kernel, verbatim in substance, but for
# KSG's jitter of T, now the one Ross has always used ---

def _ref_jitter(values, rng):
    return values + 1e-10 * rng.random(values.shape)


def _ref_within(tree, points, radius):
    return np.asarray(tree.query_ball_point(points, np.nextafter(radius, 0.0), p=np.inf, return_length=True, workers=-1))


def ref_ksg_ixt(x, t, k=3):
    n = x.shape[0]
    x, t = _ref_jitter(x, np.random.default_rng(0)), _ref_jitter(t, np.random.default_rng(1))  # T: the same copy as Ross's
    joint = np.hstack([x, t])
    eps = cKDTree(joint).query(joint, k=k + 1, p=np.inf, workers=-1)[0][:, -1]
    n_x = _ref_within(cKDTree(x), x, eps)
    n_t = _ref_within(cKDTree(t), t, eps)
    nats = digamma(k) + digamma(n) - np.mean(digamma(n_x) + digamma(n_t))
    return float(nats / math.log(2.0))


def ref_ross_ity(t, y, k=3):
    rng = np.random.default_rng(1)
    t = _ref_jitter(t, rng)
    n = t.shape[0]
    radius = np.zeros(n)
    k_used = np.zeros(n)
    class_size = np.zeros(n)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        size = members.size
        if size < 2:
            continue
        kc = min(k, size - 1)
        points = t[members]
        radius[members] = cKDTree(points).query(points, k=kc + 1, p=np.inf, workers=-1)[0][:, -1]
        k_used[members] = kc
        class_size[members] = size
    keep = class_size > 0
    if not keep.any():
        return 0.0
    m = _ref_within(cKDTree(t[keep]), t[keep], radius[keep])
    count = int(keep.sum())
    nats = digamma(count) + np.mean(digamma(k_used[keep])) - np.mean(digamma(class_size[keep])) - np.mean(digamma(m))
    return float(nats / math.log(2.0))


# --- data ---

def binary_inputs(n, bits=12, seed=0):
    """Tishby-like inputs: n codes of `bits` bits (repeats when n > 2^bits or drawn with them)."""
    codes = np.random.default_rng(seed).integers(0, 2**bits, n)
    return ((codes[:, None] >> np.arange(bits)) & 1).astype(np.float64)


def layer(kind, x, width, seed):
    rng = np.random.default_rng(seed)
    pre = x @ rng.normal(size=(x.shape[1], width)) / math.sqrt(x.shape[1]) + 0.3 * rng.normal(size=(x.shape[0], width))
    if kind == "tanh":
        return np.tanh(2.0 * pre)
    return 40.0 * np.maximum(pre, 0.0)  # ReLU: exact zeros (ties for the jitter), a large scale


INPUTS = {
    "binary12": lambda n: binary_inputs(n, 12),
    "binary6-repeats": lambda n: binary_inputs(n, 6, seed=1),
    "continuous": lambda n: np.random.default_rng(2).normal(size=(n, 5)),
}


@pytest.mark.parametrize("inputs", sorted(INPUTS))
@pytest.mark.parametrize("kind", ["tanh", "relu"])
@pytest.mark.parametrize("k", [1, 3, 6])
def test_compiled_equals_the_tree_reference(inputs, kind, k):
    n = 700
    x = INPUTS[inputs](n)
    y = np.random.default_rng(3).integers(0, 3, n)
    y[:2] = 7  # a class of two: Ross uses k = 1 there
    y[2], y[3] = 9, -5  # classes of one, the last and the first code: left out of Ross's sums
    layers = [layer(kind, x, width, seed) for seed, width in enumerate((1, 3, 4, 5, 9))]
    assert ksg._compiled_kernel() is not None
    got = ksg.ksg_layers(layers, y, inputs=x, k=k)
    want = [(ref_ksg_ixt(x, t, k), ref_ross_ity(t, y, k)) for t in layers]
    assert got == want  # bitwise: the same counts, summed in the same order
    assert [ksg.ksg_mi(t, y, inputs=x, k=k) for t in layers] == want
    assert ksg.ksg_ixt_layers(x, layers, k) == [ixt for ixt, _ in want]  # KSG alone: no class kept


def test_the_tree_fallback_equals_the_reference(monkeypatch):
    monkeypatch.setattr(ksg, "_compiled", None)
    x = binary_inputs(400)
    y = np.random.default_rng(0).integers(0, 2, 400)
    y[5], y[6] = 3, -1
    layers = [layer("tanh", x, 3, 0), layer("relu", x, 6, 1)]
    assert ksg.ksg_layers(layers, y, inputs=x) == [(ref_ksg_ixt(x, t), ref_ross_ity(t, y)) for t in layers]


def test_estimate_layers_and_the_thread_count_change_nothing():
    x = binary_inputs(500)
    y = np.random.default_rng(4).integers(0, 2, 500)
    layers = [torch.from_numpy(layer("tanh", x, w, w)) for w in (10, 7, 2)]
    want = [(ref_ksg_ixt(x, t.numpy()), ref_ross_ity(t.numpy(), y)) for t in layers]
    before = torch.get_num_threads()
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            got = estimators.estimate_layers(layers, y, ["ksg"], inputs=torch.from_numpy(x))["ksg"]
            assert [tuple(v) for v in got] == want, threads
    finally:
        torch.set_num_threads(before)


def test_every_class_of_one_gives_zero_for_ity_and_ksg_still_runs():
    x = binary_inputs(50)
    t = layer("tanh", x, 2, 0)
    y = np.arange(50)
    assert ksg.ksg_mi(t, y, inputs=x) == (ref_ksg_ixt(x, t), 0.0)


@pytest.mark.parametrize("kind", ["normal", "ties", "tanh", "relu"])
def test_edge_kth_distance_on_a_line_equals_the_tree(kind):
    """EDGE's bucket widths: the sorted-window k-th neighbour distance is bitwise cKDTree's."""
    from ibtui.estimators.edge import _kth_distance_1d

    rng = np.random.default_rng({"normal": 0, "ties": 1, "tanh": 2, "relu": 3}[kind])
    for n, k in ((1, 1), (7, 7), (300, 1), (300, 40), (1000, 999)):
        col = rng.normal(size=n) * 3.0
        col = {"normal": col, "ties": np.round(col, 1), "tanh": np.tanh(col), "relu": 4000.0 * np.maximum(col, 0.0)}[kind]
        queries = np.random.RandomState(3334).choice(col, size=500)
        tree = cKDTree(col[:, None]).query(queries[:, None], k=k)[0].reshape(500, -1)[:, -1]
        assert np.array_equal(_kth_distance_1d(col, queries, k), tree), (n, k)
