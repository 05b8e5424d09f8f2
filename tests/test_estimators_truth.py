"""The estimators against ground truth written from the formulas: correlated Gaussians, a
Gaussian mixture over classes, and the exact I(X; T + noise) of a finite sample by Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import logsumexp

from ibtui import estimators


def correlated_gaussians(n: int, rho: float, pairs: int, seed: int):
    """X, T with pairs of coordinates of correlation rho: I(X;T) = -pairs/2 log2(1 - rho^2)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, pairs))
    t = rho * x + math.sqrt(1.0 - rho * rho) * rng.normal(size=(n, pairs))
    return x, t, -pairs / 2.0 * math.log2(1.0 - rho * rho)


def mixture(n: int, mu: float, seed: int):
    """T | Y = c ~ N(+-mu, 1), Y uniform on {0, 1}; the true I(T;Y) by numerical integration."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = (np.where(y == 1, mu, -mu) + rng.normal(size=n))[:, None]
    pdf = lambda z: 0.5 * (np.exp(-(z - mu) ** 2 / 2) + np.exp(-(z + mu) ** 2 / 2)) / math.sqrt(2 * math.pi)  # noqa: E731
    h_t = integrate.quad(lambda z: -pdf(z) * math.log2(pdf(z)) if pdf(z) > 0 else 0.0, -mu - 12, mu + 12, limit=200)[0]
    h_t_given_y = 0.5 * math.log2(2 * math.pi * math.e)
    return t, y, h_t - h_t_given_y


@pytest.mark.parametrize("rho,pairs", [(0.6, 1), (0.9, 1), (0.8, 2)])
def test_ksg_on_correlated_gaussians(rho, pairs):
    x, t, truth = correlated_gaussians(2000, rho, pairs, seed=int(rho * 10) + pairs)
    ixt, _ = estimators.ksg_mi(t, np.zeros(2000, dtype=int), inputs=x)
    assert ixt == pytest.approx(truth, abs=0.06)


def test_ksg_independent_is_near_zero_and_dependent_is_not():
    rng = np.random.default_rng(5)
    x, t = rng.normal(size=(1500, 2)), rng.normal(size=(1500, 3))
    assert abs(estimators.ksg_mi(t, np.zeros(1500, dtype=int), inputs=x)[0]) < 0.08  # KSG bias at d = 5: ~0.045


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_ross_on_a_gaussian_mixture(mu):
    t, y, truth = mixture(4000, mu, seed=int(mu * 10))
    _, ity = estimators.ksg_mi(t, y, inputs=t)
    assert ity == pytest.approx(truth, abs=0.04)


def test_edge_orders_dependence_and_stays_in_range():
    low = correlated_gaussians(2000, 0.3, 1, seed=1)
    high = correlated_gaussians(2000, 0.95, 1, seed=2)
    y = np.zeros(2000, dtype=int)
    e_low, e_high = estimators.edge_mi(low[1], y, inputs=low[0])[0], estimators.edge_mi(high[1], y, inputs=high[0])[0]
    assert 0.0 <= e_low < e_high <= 10.0
    t, labels, truth = mixture(2000, 2.0, seed=3)
    assert estimators.edge_mi(t, labels, inputs=t)[1] == pytest.approx(truth, abs=0.25)


def true_ixt_of_noisy_layer(t: np.ndarray, s2: float, samples: int, seed: int) -> tuple[float, float]:
    """I(X; T + N(0, s2 I)) in bits for X uniform over the rows of t (T = f(X)), by Monte Carlo:
    H(T') - H(T'|X), H(T'|X) = d/2 log2(2 pi e s2), and H(T') = -E log2 p(z) for the mixture of
    N Gaussians. Returns (estimate, standard error)."""
    rng = np.random.default_rng(seed)
    n, d = t.shape
    z = t[rng.integers(0, n, samples)] + math.sqrt(s2) * rng.normal(size=(samples, d))
    d2 = ((z[:, None, :] - t[None, :, :]) ** 2).sum(axis=-1)
    log_p = logsumexp(-d2 / (2 * s2), axis=1) - math.log(n) - d / 2 * math.log(2 * math.pi * s2)
    h = -log_p / math.log(2)
    h_noise = d / 2 * math.log2(2 * math.pi * math.e * s2)
    return float(h.mean() - h_noise), float(h.std() / math.sqrt(samples))


@pytest.mark.parametrize("s2", [1e-3, 1e-2, 1e-1])
def test_kde_bounds_bracket_the_true_information_of_the_noisy_layer(s2):
    rng = np.random.default_rng(7)
    t = np.tanh(rng.normal(size=(300, 3)) * 2.0)
    y = rng.integers(0, 2, 300)
    truth, error = true_ixt_of_noisy_layer(t, s2, 6000, seed=8)
    lower = estimators.kde_lower_mi(t, y, noise_variance=s2)[0]
    upper = estimators.kde_upper_mi(t, y, noise_variance=s2)[0]
    assert lower - 4 * error <= truth <= upper + 4 * error
    assert lower < upper


# Values computed by the authors' own code on the same data (NPEET's entropy_estimators.mi with
# k=3; EDGE_4_4_1.EDGE with its defaults, and gamma=[1e-4, 1] for a label), run once beside these
# estimators: the transcriptions agree to 1e-13.
PUBLISHED = [
    # seed, (n, dx, dt), NPEET mi(X, T), EDGE(X, T), EDGE(sign of x_0, T)
    (0, (1000, 2, 2), 2.0224749526432473, 3.671384280811098, 0.47179811832238383),
    (1, (1500, 12, 5), 2.0489187314551853, 6.478692800565776, 0.3598090036739521),
    (2, (600, 3, 10), 3.5304770614775967, 5.274442641132817, 0.8057435909790984),
]


@pytest.mark.parametrize("seed,shape,npeet,edge_xt,edge_yt", PUBLISHED)
def test_ksg_and_edge_reproduce_the_published_code(seed, shape, npeet, edge_xt, edge_yt):
    from ibtui.estimators.edge import edge
    from ibtui.estimators.ksg import ksg_ixt

    n, dx, dt = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx))
    t = np.tanh(x @ rng.normal(size=(dx, dt)) + rng.normal(size=(n, dt)) * 0.5)
    assert ksg_ixt(x, t, 3) == pytest.approx(npeet, abs=1e-9)
    assert edge(x, t) == pytest.approx(edge_xt, abs=1e-9)
    assert edge((x[:, :1] > 0).astype(float), t, gamma=(1e-4, 1.0)) == pytest.approx(edge_yt, abs=1e-9)
