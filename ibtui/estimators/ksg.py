"""k-nearest-neighbour estimates: KSG for I(X;T) (Kraskov, Stoegbauer & Grassberger 2004,
estimator 1) and Ross's mixed estimator for I(T;Y) (Ross 2014), in bits.

KSG, from the inputs X and the layer T: with eps_i the max-norm distance from (x_i, t_i) to its
k-th nearest neighbour in the joint space, n_x(i) and n_t(i) the numbers of other points strictly
closer than eps_i in the X and T spaces alone,

    I(X;T) = psi(k) + psi(N) - < psi(n_x(i) + 1) + psi(n_t(i) + 1) >_i.

Ross, for a discrete Y: with r_i the distance from t_i to its k-th nearest neighbour among the
N_{y_i} samples of its class and m_i the number of all samples within r_i (itself included),

    I(T;Y) = psi(N) + psi(k) - < psi(N_{y_i}) > - < psi(m_i) >.

Neighbours are found exactly, in memory O(N) per thread (never N^2): by ibtui.estimators._knn_cpu's
compiled row-by-row search (every layer of a snapshot and both estimators in one pass, the rows
split over torch.get_num_threads() threads), or, where numba cannot load, by scipy's cKDTree;
both give the same counts, hence the same estimates. With binary inputs (the Tishby set) every
other input is at max-norm distance 1 (give or take the jitter), so eps_i >= ~1 and n_x(i) counts
inputs at distance 1 by the jitter's chance: KSG's assumption of continuous X does not hold, and
its I(X;T) there is a number to compare with caution. As NPEET does, 1e-10 times uniform noise (a
fixed seed, so estimates repeat) breaks the ties of repeated values, which the estimators assume
away: X gets a draw of its own, and each layer one jittered copy that KSG and Ross both see, so
that the layer's distances in T serve both. T = f(X) is deterministic, so the true I(X;T) is
infinite for continuous X; KSG reports a finite, N-limited value (at most about log2 N), like
every estimator here.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import torch

from ibtui.errors import ConfigError
from ibtui.estimators import _validate

DEFAULT_K = 3
_NOISE = 1e-10  # NPEET's add_noise intensity
_SEED = 0
_MAX_WORKERS = 8


def _digamma(x):
    """scipy.special.digamma, imported on first use: scipy.special's import (with numpy.f2py
    through its array-API layer) costs 0.2-0.3 s of CPU in every estimator process otherwise."""
    from scipy.special import digamma

    return digamma(x)


def _jittered(values: np.ndarray, seed: int) -> np.ndarray:
    """values plus _NOISE times uniform noise from a generator of their own (a fixed seed, so a
    layer's estimates repeat and do not depend on the other arrays estimated with it)."""
    return values + _NOISE * np.random.default_rng(seed).random(values.shape)


def _jittered_inputs(x: np.ndarray) -> np.ndarray:
    return _jittered(x, _SEED)


def _jittered_layer(t: np.ndarray) -> np.ndarray:
    """The one jittered copy of a layer that both KSG and Ross see."""
    return _jittered(t, _SEED + 1)


_NOT_LOADED = object()
_compiled = _NOT_LOADED


def _compiled_kernel():
    """ibtui.estimators._knn_cpu, imported on first use; None where numba cannot load (the tree
    path runs instead, with a warning: same results, many times slower)."""
    global _compiled
    if _compiled is _NOT_LOADED:
        try:
            from ibtui.estimators import _knn_cpu as knn_cpu
        except Exception as exc:  # numba missing, or built for another numpy: any failure means fall back
            warnings.warn(f"the compiled KSG kernel is unavailable ({exc}); using scipy's slower cKDTree", RuntimeWarning, stacklevel=3)
            knn_cpu = None
        _compiled = knn_cpu
    return _compiled


def _over_rows(kernel_call, n: int) -> None:
    """kernel_call(lo, hi) for row ranges covering [0, n), on torch.get_num_threads() threads
    (at most _MAX_WORKERS; the kernels release the GIL and rows are independent)."""
    workers = max(1, min(torch.get_num_threads(), _MAX_WORKERS, n))
    cuts = [w * n // workers for w in range(workers + 1)]
    if workers == 1:
        kernel_call(0, n)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="ibtui-ksg") as pool:
        list(pool.map(kernel_call, cuts[:-1], cuts[1:]))


def _stacked(kernel, layers: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every layer's kernel columns in one array, and the offsets of each layer's rows."""
    cols = [kernel.columns(t) for t in layers]
    starts = np.cumsum([0] + [c.shape[0] for c in cols]).astype(np.int64)
    return np.concatenate(cols), starts


def _strictly_within(tree, points: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """How many of the tree's points lie at max-norm distance < radius of each point (itself too)."""
    return np.asarray(tree.query_ball_point(points, np.nextafter(radius, 0.0), p=np.inf, return_length=True, workers=-1))


def _class_order(codes: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The samples' order for the kernel, sorted by class with the classes Ross keeps first, and in
    that order each sample's class range [lo, hi)."""
    key = np.where(keep, 0, codes.max() + 1) + codes
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    lo, hi = (np.searchsorted(sorted_key, sorted_key, side=side).astype(np.int64) for side in ("left", "right"))
    return order, lo, hi


def _tree_counts(x, layers, codes, keep, k_used, k):
    """_counts by scipy's cKDTree (the fallback without numba)."""
    from scipy.spatial import cKDTree

    n = x.shape[0]
    n_x, n_t, m = (np.zeros((len(layers), n), dtype=np.int64) for _ in range(3))
    x_tree = cKDTree(x)
    for layer, t in enumerate(layers):
        joint = np.hstack([x, t])
        eps = cKDTree(joint).query(joint, k=k + 1, p=np.inf, workers=-1)[0][:, -1]
        n_x[layer], n_t[layer] = _strictly_within(x_tree, x, eps), _strictly_within(cKDTree(t), t, eps)
        if keep.any():
            radius = np.zeros(n)
            for c in np.unique(codes[keep]):
                members = np.flatnonzero(codes == c)
                points = t[members]
                radius[members] = cKDTree(points).query(points, k=int(k_used[members[0]]) + 1, p=np.inf, workers=-1)[0][:, -1]
            m[layer, keep] = _strictly_within(cKDTree(t[keep]), t[keep], radius[keep])
    return n_x, n_t, m


def _counts(x: np.ndarray, layers: Sequence[np.ndarray], codes: np.ndarray, keep: np.ndarray, k_used: np.ndarray, k: int):
    """(n_x(i) + 1, n_t(i) + 1, m_i), each (layers, N), from the jittered X and layers; m_i, for
    the samples Ross keeps, counts the kept points strictly closer to t_i than its k_used[i]-th
    nearest neighbour in its class (i itself at rank 0); it is 0 elsewhere (keep all False: KSG
    alone)."""
    kernel = _compiled_kernel()
    if kernel is None:
        return _tree_counts(x, layers, codes, keep, k_used, k)
    n = x.shape[0]
    order, class_lo, class_hi = _class_order(codes, keep)
    x_cols = kernel.columns(x[order])
    t_cols, starts = _stacked(kernel, [t[order] for t in layers])
    rank, n_kept = k_used[order].astype(np.int64), int(keep.sum())
    counts = np.zeros((3, len(layers), n), dtype=np.int64)
    _over_rows(lambda lo, hi: kernel.ksg_ross_counts(x_cols, t_cols, starts, k, class_lo, class_hi, rank, n_kept, lo, hi, *counts), n)
    unsorted = np.empty_like(counts)
    unsorted[:, :, order] = counts
    return tuple(unsorted)


def _ksg_bits(n_x: np.ndarray, n_t: np.ndarray, k: int) -> float:
    n = n_x.shape[0]
    return float((_digamma(k) + _digamma(n) - np.mean(_digamma(n_x) + _digamma(n_t))) / math.log(2.0))


def ksg_ixt_layers(x: np.ndarray, layers: Sequence[np.ndarray], k: int = DEFAULT_K) -> list[float]:
    """KSG estimator 1 of I(X;T) in bits for each (N, dt) layer T, from the (N, dx) inputs X."""
    n = x.shape[0]
    if n <= k:
        raise ConfigError(f"KSG with k={k} needs more than {k} samples, got {n}.")
    codes, nothing = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    n_x, n_t, _ = _counts(_jittered_inputs(x), [_jittered_layer(t) for t in layers], codes, nothing, codes, k)
    return [_ksg_bits(a, b, k) for a, b in zip(n_x, n_t)]


def ksg_ixt(x: np.ndarray, t: np.ndarray, k: int = DEFAULT_K) -> float:
    """KSG estimator 1 of I(X;T) in bits from (N, dx) and (N, dt) samples."""
    return ksg_ixt_layers(x, [t], k)[0]


def ksg_ross_layers(x: np.ndarray, layers: Sequence[np.ndarray], y: np.ndarray, k: int = DEFAULT_K) -> list[tuple[float, float]]:
    """[(KSG I(X;T), Ross I(T;Y)) in bits] for each (N, dt) layer T, from the (N, dx) inputs X and
    the integer codes Y (N,). A class of one sample has no neighbour in its class: it does not
    count in Ross's sums (as sklearn), and with no class of two or more I(T;Y) is 0."""
    n = x.shape[0]
    if n <= k:
        raise ConfigError(f"KSG with k={k} needs more than {k} samples, got {n}.")
    _, codes = np.unique(y, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    size = np.bincount(codes)[codes]
    keep = size >= 2
    k_used = np.minimum(k, size - 1)
    n_x, n_t, m = _counts(_jittered_inputs(x), [_jittered_layer(t) for t in layers], codes, keep, k_used, k)
    ixt = [_ksg_bits(a, b, k) for a, b in zip(n_x, n_t)]
    if not keep.any():
        return [(v, 0.0) for v in ixt]
    constant = _digamma(int(keep.sum())) + np.mean(_digamma(k_used[keep].astype(np.float64))) - np.mean(_digamma(size[keep].astype(np.float64)))
    # As computed: small negative values are estimation noise.
    return [(v, float((constant - np.mean(_digamma(row[keep]))) / math.log(2.0))) for v, row in zip(ixt, m)]


def ksg_layers(layers: Sequence, labels, *, inputs, k: int = DEFAULT_K) -> list[tuple[float, float]]:
    """[(KSG I(X;T), Ross I(T;Y)) in bits] per layer, all layers sharing the inputs and labels:
    the distances in X are computed once for them all."""
    k = _validate.positive("ksg k", k, integer=True, most=1000)
    if not layers:
        return []
    prepared = [_validate.prepared(t, labels, inputs=inputs, needs_inputs=True, name="ksg") for t in layers]
    ts = [t.detach().to("cpu").double().numpy() for t, _, _, _ in prepared]
    x64 = prepared[0][3].detach().to("cpu").double().numpy()
    y = prepared[0][1].cpu().numpy()
    return [_validate.finite_result("ksg", pair) for pair in ksg_ross_layers(x64, ts, y, k)]


def ksg_mi(activations, labels, *, inputs=None, k: int = DEFAULT_K) -> tuple[float, float]:
    """(KSG I(X;T), Ross I(T;Y)) in bits; `inputs` (the samples' X) is required."""
    return ksg_layers([activations], labels, inputs=inputs, k=k)[0]


ksg_mi.all_layers = ksg_layers
