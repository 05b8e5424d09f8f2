"""The KDE's product path for wide layers (ibtui.estimators._kde_gram) against float64 formulas,
against the coordinate-difference kernel, and its path choice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ibtui import estimators
from ibtui.estimators import _kde_gram, kde

BOTH = ["kde_upper", "kde_lower"]


def float64_kde(t: torch.Tensor, labels: torch.Tensor, s2: float, w: float) -> tuple[float, float]:
    """(I(X;T), I(T;Y)) in bits straight from the formulas, in float64."""
    t = t.to(torch.float64)
    n = t.shape[0]
    logk = -torch.cdist(t, t) ** 2 / (w * s2)
    ixt = -(torch.logsumexp(logk, dim=1) - math.log(n)).mean()
    cond = 0.0
    for c in torch.unique(labels):
        m = labels == c
        nc = int(m.sum())
        cond += nc / n * -(torch.logsumexp(logk[m][:, m], dim=1) - math.log(nc)).mean()
    return float(ixt) / math.log(2.0), float(ixt - cond) / math.log(2.0)


def clustered_relu(n: int, d: int, scale: float, spread: float, classes: int = 5, seed: int = 0):
    """ReLU-like activations in class clusters: many pairs near, many far, some exactly zero."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=gen)
    centres = torch.randn(classes, d, generator=gen)
    t = torch.relu(centres[labels] * scale + torch.randn(n, d, generator=gen) * spread * scale)
    return t, labels


@pytest.fixture
def gram_always(monkeypatch):
    """Every layer at least 64 wide takes the product path, however many of its pairs are near."""
    monkeypatch.setattr(kde, "_uses_gram", lambda width, candidates: True)


def difference_kernel_only(monkeypatch):
    monkeypatch.setattr(kde, "_GRAM_MIN_WIDTH", 10**9)


@pytest.mark.parametrize("scale,spread,s2,tolerance", [
    (1.0, 0.05, 1e-1, 1e-6), (1.0, 0.01, 1e-3, 1e-6), (150.0, 0.003, 1e-1, 1e-6),
    # Values near 2,000 with neighbours 0.2 apart: the kernels' float32 coordinates (ulp 1e-4
    # there) alone move the estimate by a few 1e-6 bits, in the difference kernel too.
    (2000.0, 1e-4, 1e-1, 1e-5),
])
def test_product_path_matches_float64_formulas(gram_always, monkeypatch, scale, spread, s2, tolerance):
    # Clusters at ReLU scale are where a plain float32 product of |t_i|^2 + |t_j|^2 - 2 t_i.t_j
    # would lose up to 1e-2 bits; the refine must keep the float32 coordinates' accuracy.
    t, y = clustered_relu(600, 96, scale, spread)
    got = estimators.estimate_layers([t], y, BOTH, noise_variance=s2)
    difference_kernel_only(monkeypatch)
    difference = estimators.estimate_layers([t], y, BOTH, noise_variance=s2)
    for name, w in (("kde_upper", 2.0), ("kde_lower", 8.0)):
        want = float64_kde(t, y, s2, w)
        assert got[name][0] == pytest.approx(want, abs=tolerance), name
        assert got[name][0] == pytest.approx(difference[name][0], abs=tolerance), name


def test_product_path_agrees_with_the_difference_kernel(gram_always, monkeypatch):
    t, y = clustered_relu(700, 80, 1.0, 0.05)
    product = estimators.estimate_layers([t], y, BOTH, noise_variance=0.1)
    difference_kernel_only(monkeypatch)
    difference = estimators.estimate_layers([t], y, BOTH, noise_variance=0.1)
    for name in BOTH:
        assert product[name][0] == pytest.approx(difference[name][0], abs=1e-7)
        assert product[name][0][0] > 1.0  # a case where the near pairs carry the estimate


def test_exact_duplicates_are_refined_to_a_term_of_one(gram_always, monkeypatch):
    # Four copies of each point: every copy's pair has D = 0 exactly, which the product rounds.
    gen = torch.Generator().manual_seed(3)
    base = torch.relu(torch.randn(150, 70, generator=gen)) * 300.0
    t = base.repeat(4, 1)
    y = torch.arange(150).repeat(4) % 3
    got = estimators.estimate_layers([t], y, BOTH, noise_variance=1e-3)
    # The points are far apart at this scale, so each row sum is its 4 copies: I(X;T) = log2(600/4).
    assert got["kde_upper"][0][0] == pytest.approx(math.log2(150), abs=1e-9)
    difference_kernel_only(monkeypatch)
    assert got == estimators.estimate_layers([t], y, BOTH, noise_variance=1e-3)


def test_result_does_not_depend_on_the_thread_count(gram_always):
    t, y = clustered_relu(900, 64, 1.0, 0.05, seed=4)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = estimators.estimate_layers([t], y, BOTH, noise_variance=0.1)
        torch.set_num_threads(2)
        two = estimators.estimate_layers([t], y, BOTH, noise_variance=0.1)
    finally:
        torch.set_num_threads(before)
    assert one == two


def test_rounding_bound_holds_for_every_pair():
    # L~ - m <= L <= D for every pair is what makes skipping the refine safe: checked against the
    # exact squared distances of the float32 points, narrow (p = a) and projected layers alike.
    for d, scale in ((20, 1.0), (64, 1.0), (1024, 30.0), (300, 5000.0)):
        t, _ = clustered_relu(300, d, scale, 0.01, seed=d)
        points = _kde_gram.prepare(t.numpy(), 1e-3)
        p = torch.from_numpy(points.projected)
        dr = points.residual[:, None] - points.residual[None, :]
        approx = points.projected_sq[:, None] + points.projected_sq[None, :] - np.float32(2.0) * (p @ p.T).numpy() + dr * dr
        a64 = points.full.astype(np.float64)
        exact = ((a64[:, None, :] - a64[None, :, :]) ** 2).sum(-1)
        margin = float(points.kap) * (points.sq[:, None].astype(np.float64) + points.sq[None, :])
        assert (approx - margin <= exact).all(), d
        if d <= _kde_gram.PROJECTED:
            assert (np.abs(approx - exact) <= margin).all(), d


def test_projection_keeps_only_the_pairs_that_matter():
    # A trained layer's variance lies in few directions: the projected bound refines few pairs.
    t, _ = clustered_relu(800, 512, 1.0, 0.2, classes=10)
    points = _kde_gram.prepare(t.numpy(), 1e-2)
    assert points.projected.shape == (800, _kde_gram.PROJECTED)
    assert _kde_gram.candidate_fraction(points) < 0.15


def test_path_choice_follows_width_and_nearness(monkeypatch):
    calls = []
    real = _kde_gram.layer_sums
    monkeypatch.setattr(_kde_gram, "layer_sums", lambda *a, **k: calls.append(a[0].full.shape) or real(*a, **k))
    y = torch.arange(500) % 2
    far, _ = clustered_relu(500, 128, 1.0, 1.0)           # spread out: few near pairs
    near = torch.full((500, 128), 0.5) + 1e-4 * torch.randn(500, 128)  # one tight cluster
    narrow, _ = clustered_relu(500, 10, 1.0, 1.0)         # narrower than _GRAM_MIN_WIDTH
    estimators.estimate_layers([far, near, narrow], y, ["kde_upper"], noise_variance=1e-3)
    assert calls == [(500, 128)]


def test_importing_the_estimators_loads_no_compiled_kernel():
    # numba's import costs most of a second, and where it cannot load the torch path must still
    # work: the kernels are imported only when a CPU estimate runs; scipy (KSG's digamma and
    # fallback tree) only when KSG runs.
    import subprocess
    import sys

    code = "import sys, ibtui.estimators; assert 'numba' not in sys.modules, 'numba'; assert 'scipy' not in sys.modules, 'scipy'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
