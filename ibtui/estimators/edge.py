"""EDGE, the hashing estimator of Noshad, Zeng & Hero (2019, "Scalable mutual information
estimation using dependence graphs"), in bits.

X and Y are hashed into buckets of width eps (after a random projection when either has more than
6 dimensions: p-stable hashing), and with N_i, M_j and N_ij the counts of bucket i of X, j of Y
and the pair (i, j),

    I(X;Y) = (1/N) sum_{ij} N_ij * max(min(log2(N_ij N / (N_i M_j)), U), 0.001),

the mean of the bucket graph's edge weights. The widths eps come from k-nearest-neighbour
distances of each projected coordinate times a smoothness gamma; an ensemble over L shifted
hashings takes the median, and the widths are rescaled once by the first estimate. This is
EDGE_4_4_1.py of github.com/mrtnoshad/EDGE with its defaults (U = 10, gamma = 1 for continuous
variables, L = 10, epsilon range factor 0.1, median) and their seeded draws (a private
RandomState(3334), so numpy's global generator is left alone); the class labels are one discrete
coordinate with gamma = 1e-4, as the authors' information-plane demo does.
"""

from __future__ import annotations

import math

import numpy as np

from ibtui.estimators import _validate

DEFAULT_U = 10.0
_ENSEMBLE = 10
_RANGE_FACTOR = 0.1
_SEED = 3334  # theirs
_KNN_QUERIES = 500


def _projection(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """p-stable hashing's projection W (dim x d'), d' = min(dim, floor(log2(N / 10)))."""
    n, dim = x.shape
    shrink = min(dim, math.floor(math.log(n / 10.0, 2)))
    std = x.std(axis=0)
    std[std < 1e-4] = 1.0
    sigma = 1.0 / (std[:, None] * math.sqrt(dim))
    return rng.normal(0.0, np.broadcast_to(sigma, (dim, shrink)))


def _kth_distance_1d(values: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Each query's distance to its k-th nearest value (the query's own copy included), exactly
    cKDTree(values[:, None]).query(queries[:, None], k)[0][:, -1], in O(Q log k) after a sort.

    On a line the k nearest values are k consecutive sorted values s[lo .. lo + k - 1], and a
    window's largest distance is at one of its ends, so the k-th distance is the least over lo of
    max(A(lo), B(lo)), A = q - s[lo] (non-increasing in lo), B = s[lo + k - 1] - q (non-decreasing;
    +inf past the end): at the first lo* with B >= A, the least is min(B(lo*), A(lo*-1)), found by
    bisection over lo in [i - k, i], i the query's sorted position. Rounded subtraction is
    monotone, so this holds for the floating-point distances; they are returned as sqrt(d * d), the
    tree's Euclidean arithmetic in one dimension."""
    s = np.sort(values)
    n = s.shape[0]
    s = np.concatenate([s, np.full(k, np.inf)])
    q = np.asarray(queries, dtype=np.float64)

    def ends(lo):
        return q - s[lo], s[lo + k - 1] - q

    low = np.clip(np.searchsorted(s[:n], q) - k, 0, n - k)
    first, high = low.copy(), low + k  # B >= A holds at high: s[high] >= q there, or past the end
    while np.any(low < high):
        mid = (low + high) // 2
        a, b = ends(mid)
        right = b >= a
        high = np.where(right, mid, high)
        low = np.where(right, low, mid + 1)
    _, b_star = ends(low)
    a_before, _ = ends(np.maximum(low - 1, 0))
    d = np.where(low > first, np.minimum(b_star, a_before), b_star)
    return np.sqrt(d * d)


def _knn_width(column: np.ndarray, dim: int) -> float:
    """Their find_knn: the mean distance from 500 random samples to their k-th neighbour (the
    samples drawn after seeding 3334 for every column, as theirs are)."""
    n = column.shape[0]
    k = math.floor(0.43 * n ** (2 / 3 + 0.17 * (dim / (dim + 1))) * math.exp(-1.0 / max(10000, dim**4)))
    k = max(1, min(k, n))
    queries = np.random.RandomState(_SEED).choice(column, size=_KNN_QUERIES)
    return float(np.mean(_kth_distance_1d(column, queries, k)))


def _buckets(values: np.ndarray, shift: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Bucket number of each row of floor((values + shift) / eps)."""
    scaled = np.floor((values + shift) / np.where(eps > 0, eps, 1.0))
    scaled = np.ascontiguousarray(np.where(eps > 0, scaled, values)) + 0.0  # + 0.0: -0.0 and 0.0 alike
    rows = scaled.view(np.dtype((np.void, scaled.dtype.itemsize * scaled.shape[1]))).reshape(-1)
    return np.unique(rows, return_inverse=True)[1].reshape(-1)  # one bytes key per row: fast


def _hash_mi(xw: np.ndarray, yv: np.ndarray, eps_x, eps_y, shift_x, shift_y, upper: float) -> float:
    n = xw.shape[0]
    bx, by = _buckets(xw, shift_x, eps_x), _buckets(yv, shift_y, eps_y)
    n_x, n_y = np.bincount(bx), np.bincount(by)
    keys, n_xy = np.unique(bx.astype(np.int64) * len(n_y) + by, return_counts=True)
    weights = np.log2(n_xy * n / (n_x[keys // len(n_y)] * n_y[keys % len(n_y)]))
    return float(np.sum(n_xy * np.clip(weights, 0.001, upper)) / n)


def edge(x: np.ndarray, y: np.ndarray, *, upper: float = DEFAULT_U, gamma=(1.0, 1.0), normalize: bool = True) -> float:
    """EDGE estimate of I(X;Y) in bits from (N, dx) and (N, dy) samples."""
    rng = np.random.RandomState(_SEED)  # theirs: np.random.seed(3334), then W and V drawn in turn
    gamma = np.asarray(gamma, dtype=np.float64) * 0.4
    dim_x, dim_y = x.shape[1], y.shape[1]
    if dim_x <= 6 and dim_y <= 6:  # "floor" hashing
        xw, yv = x, y
    else:  # p-stable hashing
        xw, yv = x @ _projection(x, rng), y @ _projection(y, rng)
    dx, dy = xw.shape[1], yv.shape[1]
    width_x = np.array([_knn_width(xw[:, i], dx) for i in range(dx)]) + 1e-4
    width_y = np.array([_knn_width(yv[:, i], dy) for i in range(dy)]) + 1e-4
    cx = 18 * dx / max(1 + math.log(dim_x), 1)
    cy = 18 * dy / max(1 + math.log(dim_y), 1)
    eps_x0, eps_y0 = width_x * cx * gamma[0], width_y * cy * gamma[1]
    scales = np.linspace(1.0, 1.0 + _RANGE_FACTOR, _ENSEMBLE)
    shifts = np.linspace(0.0, 1.0, _ENSEMBLE, endpoint=False)
    estimates = [
        _hash_mi(xw, yv, eps_x0 * s, eps_y0 * s, shift * eps_x0 * s, shift * eps_y0 * s, upper)
        for s, shift in zip(scales, shifts)
    ]
    value = float(np.median(estimates))
    if normalize:  # their one rescaling of the widths by the first estimate (gamma scaled again)
        gamma = gamma * 2.0 ** (-math.sqrt(value * 2.0) + 0.5 / value)
        return edge(x, y, upper=upper, gamma=gamma, normalize=False)
    return value


def edge_mi(activations, labels, *, inputs=None, upper: float = DEFAULT_U) -> tuple[float, float]:
    """(I(X;T), I(T;Y)) in bits by EDGE; `inputs` (the samples' X) is required for I(X;T)."""
    t, codes, _, x = _validate.prepared(activations, labels, inputs=inputs, needs_inputs=True, name="edge")
    t64 = t.detach().to("cpu").double().numpy()
    x64 = x.detach().to("cpu").double().numpy()
    y = codes.cpu().double().numpy()[:, None]
    ixt = edge(x64, t64, upper=upper)
    ity = edge(y, t64, upper=upper, gamma=(1e-4, 1.0))
    return _validate.finite_result("edge", (ixt, ity))
