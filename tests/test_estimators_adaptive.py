"""Adaptive binning against a transcription of Chelombiev et al.'s own bin rule
(ivansche/adaptive_estimators: information_process.set_up_bins, maxentropy per-layer branch, and
calc_information_sampling)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ibtui import estimators
from ibtui.errors import ConfigError


def theirs(data: np.ndarray, labels: np.ndarray, num_of_bins: int, low: float) -> tuple[float, float]:
    """Their code, line for line where it matters (bins as float32, np.digitize, rows as void)."""
    layer_bins = [low]
    unique = np.unique(np.squeeze(data.reshape(1, -1)))
    unique = np.sort(np.setdiff1d(unique, layer_bins))
    if unique.size > 0:
        for k in range(num_of_bins):
            ind = int(k * (unique.size / num_of_bins))
            layer_bins.append(unique[ind])
        layer_bins.append(unique[-1])
    bins = np.asarray(layer_bins).astype(np.float32)
    digitized = bins[np.digitize(np.squeeze(data.reshape(1, -1)), bins) - 1].reshape(len(data), -1)
    b2 = np.ascontiguousarray(digitized).view(np.dtype((np.void, digitized.dtype.itemsize * digitized.shape[1])))
    _, inverse, counts = np.unique(b2, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    p_ts = counts / counts.sum()
    h_t = -np.sum(p_ts * np.log2(p_ts))
    h_t_y = 0.0
    for c in np.unique(labels):
        members = inverse[labels == c]
        p = np.bincount(members) / members.size
        p = p[p > 0]
        h_t_y += members.size / len(labels) * -np.sum(p * np.log2(p))
    return float(h_t), float(h_t - h_t_y)


@pytest.mark.parametrize("n_bins", [30, 7, 2])
def test_tanh_layer_matches_their_rule(n_bins):
    rng = np.random.default_rng(0)
    data = np.tanh(rng.normal(size=(600, 4)) * 1.5).astype(np.float32)
    data[:50] = np.float32(1.0)  # saturated units: ties, as tanh layers have
    y = rng.integers(0, 2, 600)
    got = estimators.adaptive_mi(data, y, n_bins=n_bins)
    assert got == pytest.approx(theirs(data, y, n_bins, -1.000001), abs=1e-12)


@pytest.mark.parametrize("n_bins", [30, 12])
def test_relu_layer_matches_their_rule_and_zeros_get_a_bin_of_their_own(n_bins):
    rng = np.random.default_rng(1)
    data = np.maximum(rng.normal(size=(500, 3)) * 3.0, 0.0).astype(np.float32)  # about half zeros
    y = rng.integers(0, 3, 500)
    got = estimators.adaptive_mi(data, y, n_bins=n_bins)
    assert got == pytest.approx(theirs(data, y, n_bins, 0.0), abs=1e-12)
    from ibtui.estimators.adaptive import adaptive_codes

    codes = adaptive_codes(data, n_bins)
    zero_codes = set(codes[data == 0].tolist())
    assert zero_codes == {0} and 0 not in set(codes[data > 0].tolist())
    # the positive values fill n_bins bins by distinct values, and the largest value (their last
    # edge) is one more state of its own
    assert len(set(codes[data > 0].tolist())) == n_bins + 1
    assert (codes == codes.max()).sum() == 1


def test_one_unit_distinct_values_give_log2n():
    t = (np.arange(64, dtype=np.float64)[:, None] + 1.0) * 0.01
    y = np.arange(64) % 2
    assert estimators.adaptive_mi(t, y, n_bins=64)[0] == pytest.approx(6.0, abs=1e-12)
    # 4 bins of 16, 16, 16 and 15 values, and the largest value alone (their rule's last edge)
    p = np.array([16, 16, 16, 15, 1]) / 64
    assert estimators.adaptive_mi(t, y, n_bins=4)[0] == pytest.approx(float(-(p * np.log2(p)).sum()), abs=1e-12)


def test_unbounded_layer_takes_its_minimum_as_low_and_low_is_checked():
    rng = np.random.default_rng(2)
    t = rng.normal(size=(300, 2)) * 5.0  # values below -1.000001
    y = rng.integers(0, 2, 300)
    ixt, ity = estimators.adaptive_mi(t, y)
    assert math.isfinite(ixt) and 0 < ixt <= math.log2(300)
    with pytest.raises(ConfigError, match="no larger than the layer's smallest value"):
        estimators.adaptive_mi(t, y, low=0.0)
    with pytest.raises(ConfigError, match="100000"):
        estimators.adaptive_mi(t, y, n_bins=10**9)
