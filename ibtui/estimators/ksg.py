"""k-nearest-neighbour estimates: KSG for I(X;T) (Kraskov, Stoegbauer & Grassberger 2004,
estimator 1) and Ross's mixed estimator for I(T;Y) (Ross 2014), in bits.

KSG, from the inputs X and the layer T: with eps_i the max-norm distance from (x_i, t_i) to its
k-th nearest neighbour in the joint space, n_x(i) and n_t(i) the numbers of other points strictly
closer than eps_i in the X and T spaces alone,

    I(X;T) = psi(k) + psi(N) - < psi(n_x(i) + 1) + psi(n_t(i) + 1) >_i.

Ross, for a discrete Y: with r_i the distance from t_i to its k-th nearest neighbour among the
N_{y_i} samples of its class and m_i the number of all samples within r_i (itself included),

    I(T;Y) = psi(N) + psi(k) - < psi(N_{y_i}) > - < psi(m_i) >.

Neighbours come from scipy's cKDTree on every core (memory O(N k), not N^2); a tree degrades
towards pairwise search in the joint space of wide layers, so KSG costs seconds per layer at
N = 4,096 where the KDE takes milliseconds. With binary inputs (the Tishby set) every other input
is at max-norm distance >= 1, so n_x is usually 0 and KSG's assumption of continuous X does not
hold: its I(X;T) there is a number to compare with caution. As NPEET does, 1e-10 times uniform
noise (a fixed seed, so estimates repeat) breaks the ties of repeated values, which the
estimators assume away. T = f(X) is deterministic, so the true I(X;T) is infinite for continuous
X; KSG reports a finite, N-limited value (at most about log2 N), like every estimator here.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma

from ibtui.errors import ConfigError
from ibtui.estimators import _validate

DEFAULT_K = 3
_NOISE = 1e-10  # NPEET's add_noise intensity
_SEED = 0


def _jitter(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return values + _NOISE * rng.random(values.shape)


def _strictly_within(tree: cKDTree, points: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """How many of the tree's points lie at max-norm distance < radius of each point (itself too)."""
    return np.asarray(tree.query_ball_point(points, np.nextafter(radius, 0.0), p=np.inf, return_length=True, workers=-1))


def ksg_ixt(x: np.ndarray, t: np.ndarray, k: int = DEFAULT_K) -> float:
    """KSG estimator 1 of I(X;T) in bits from (N, dx) and (N, dt) samples."""
    n = x.shape[0]
    if n <= k:
        raise ConfigError(f"KSG with k={k} needs more than {k} samples, got {n}.")
    rng = np.random.default_rng(_SEED)
    x, t = _jitter(x, rng), _jitter(t, rng)
    joint = np.hstack([x, t])
    eps = cKDTree(joint).query(joint, k=k + 1, p=np.inf, workers=-1)[0][:, -1]
    n_x = _strictly_within(cKDTree(x), x, eps)  # counts include the point itself: n_x(i) + 1
    n_t = _strictly_within(cKDTree(t), t, eps)
    nats = digamma(k) + digamma(n) - np.mean(digamma(n_x) + digamma(n_t))
    return float(nats / math.log(2.0))


def ross_ity(t: np.ndarray, y: np.ndarray, k: int = DEFAULT_K) -> float:
    """Ross's (2014) mixed estimator of I(T;Y) in bits, T continuous (N, d), Y integer codes (N,)."""
    rng = np.random.default_rng(_SEED + 1)
    t = _jitter(t, rng)
    n = t.shape[0]
    radius = np.zeros(n)
    k_used = np.zeros(n)
    class_size = np.zeros(n)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        size = members.size
        if size < 2:
            continue  # a lone sample has no neighbour in its class: it does not count (as sklearn)
        kc = min(k, size - 1)
        points = t[members]
        radius[members] = cKDTree(points).query(points, k=kc + 1, p=np.inf, workers=-1)[0][:, -1]
        k_used[members] = kc
        class_size[members] = size
    keep = class_size > 0
    if not keep.any():
        return 0.0
    m = _strictly_within(cKDTree(t[keep]), t[keep], radius[keep])
    count = int(keep.sum())
    nats = digamma(count) + np.mean(digamma(k_used[keep])) - np.mean(digamma(class_size[keep])) - np.mean(digamma(m))
    return float(nats / math.log(2.0))  # as computed: small negative values are estimation noise


def ksg_mi(activations, labels, *, inputs=None, k: int = DEFAULT_K) -> tuple[float, float]:
    """(KSG I(X;T), Ross I(T;Y)) in bits; `inputs` (the samples' X) is required."""
    k = _validate.positive("ksg k", k, integer=True, most=1000)
    t, codes, _, x = _validate.prepared(activations, labels, inputs=inputs, needs_inputs=True, name="ksg")
    t64 = t.detach().to("cpu").double().numpy()
    x64 = x.detach().to("cpu").double().numpy()
    y = codes.cpu().numpy()
    return _validate.finite_result("ksg", (ksg_ixt(x64, t64, k), ross_ity(t64, y, k)))
