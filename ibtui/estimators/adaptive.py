"""Adaptive (maximum-entropy) binning of Chelombiev, Houghton & O'Donnell (ICLR 2019), in bits.

Per layer and snapshot, the bin edges come from the sorted distinct values u_1 < ... < u_U of the
whole layer (pooled over units and samples), leaving out a fixed lowest edge `low`:

    edges = [low, u_{floor(0 U/n)+1}, u_{floor(1 U/n)+1}, ..., u_{floor((n-1) U/n)+1}, u_U]

and each value is mapped to the lower edge of its bin (np.digitize), so every bin holds about the
same number of distinct values and ReLU's zeros (low = 0) are a bin of their own. Then, as for
binning, each distinct row of bins is a state of T: I(X;T) = H(T), I(T;Y) = H(T) - H(T|Y).
This is `information_process.set_up_bins` (the maxentropy, per-layer branch) and
`calc_information_sampling` of their code (github.com/ivansche/adaptive_estimators).

`low` defaults to theirs: -1.000001 when the layer has a negative value (tanh-like), else 0
(ReLU-like). One extension: a layer with values below -1.000001 (linear, unbounded) takes its own
minimum as `low`, where their code would send such values to the last bin.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ibtui.errors import ConfigError
from ibtui.estimators import _validate
from ibtui.estimators.binning import codes_mi

DEFAULT_BINS = 30
TANH_LOW = -1.000001


def adaptive_edges(values: np.ndarray, n_bins: int, low: float) -> np.ndarray:
    """Their bin edges for all of one layer's values (any shape), non-decreasing."""
    edges = [low]
    unique = np.setdiff1d(np.unique(values.reshape(-1)), edges)  # sorted, without `low`
    if unique.size > 0:
        for k in range(n_bins):
            edges.append(unique[int(k * (unique.size / n_bins))])
        edges.append(unique[-1])
    return np.asarray(edges, dtype=np.float64)


def default_low(values: np.ndarray) -> float:
    smallest = float(values.min())
    if smallest >= 0.0:
        return 0.0
    return min(TANH_LOW, smallest)


def adaptive_codes(values: np.ndarray, n_bins: int, low: float | None = None) -> np.ndarray:
    """(N, d) int64 codes: the index of each value's lower bin edge among the distinct edges."""
    n_bins = _validate.positive("adaptive n_bins", n_bins, integer=True, most=_validate.MAX_BINS)
    values = np.asarray(values, dtype=np.float64)
    if low is None:
        low = default_low(values)
    else:
        low = float(low)
        if not (math.isfinite(low) and low <= float(values.min())):
            raise ConfigError(f"adaptive low must be a finite number no larger than the layer's smallest value {float(values.min()):g}, got {low!r}.")
    edges = adaptive_edges(values, n_bins, low)
    lower = edges[np.digitize(values, edges) - 1]  # each value's lower edge, as they take it
    return np.searchsorted(np.unique(edges), lower).astype(np.int64)


def adaptive_mi(activations, labels, *, inputs=None, n_bins: int = DEFAULT_BINS, low: float | None = None) -> tuple[float, float]:
    """Adaptive binning estimate (I(X;T), I(T;Y)) in bits (Chelombiev et al. 2019)."""
    del inputs  # I(X;T) = H(T) for a deterministic network
    t, codes_y, n_classes, _ = _validate.prepared(activations, labels)
    codes = torch.from_numpy(adaptive_codes(t.to(torch.float64).cpu().numpy(), n_bins, low))
    return codes_mi(codes, codes_y.cpu(), n_classes)
