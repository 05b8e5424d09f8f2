"""Binning estimates of I(X;T) and I(T;Y) (Shwartz-Ziv & Tishby 2017; Saxe et al. 2018), in bits.

Each unit's value is replaced by its bin, and each distinct row of bin codes is one state of the
discrete variable T. The network is deterministic and every input x is a distinct sample, so

    I(X;T) = H(T),      I(T;Y) = H(T) - sum_c p_c H(T | Y = c),

the plug-in entropies of the empirical distribution of states. Bins are either of a fixed size
(code = floor(t / bin_size), Saxe et al.'s 0.07 on tanh) or `n_bins` equal bins on a range
(Tishby's 30 on [-1, 1]; values outside are clipped into the edge bins; without a range, the
data's own min and max, because a fixed range is meaningless for unbounded activations). The
estimate is of the binned variable: smaller bins give larger values, up to log2 N.
"""

from __future__ import annotations

import math

import torch

from ibtui.errors import ConfigError
from ibtui.estimators import _validate

DEFAULT_BIN_SIZE = 0.07  # Saxe et al.
# Codes are exact int64 below this magnitude; beyond, rows are numbered from their float64 codes.
_EXACT_CODES = 2.0**52


def codes_mi(codes: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[float, float]:
    """(H(T), H(T) - sum_c p_c H(T|Y=c)) in bits, each distinct row of `codes` (N, d) one state."""
    n = codes.shape[0]
    _, state = torch.unique(_row_keys(codes), return_inverse=True)
    n_states = int(state.max().item()) + 1
    joint = torch.bincount(state * n_classes + labels, minlength=n_states * n_classes)
    joint = joint.view(n_states, n_classes).to(torch.float64)
    per_state = joint.sum(dim=1)
    per_class = joint.sum(dim=0)
    # Sums of non-negative terms, so one state gives exactly 0, never -4e-16.
    h_t = float((per_state * torch.log2(n / per_state)).sum().item()) / n
    ratio = torch.where(joint > 0, per_class[None, :] / joint.clamp(min=1), torch.ones_like(joint))
    h_t_given_y = float((joint * torch.log2(ratio)).sum().item()) / n
    return h_t, h_t - h_t_given_y


def _row_keys(codes: torch.Tensor) -> torch.Tensor:
    """One int64 key per row of codes, equal keys exactly for equal rows."""
    if codes.is_floating_point():  # codes too large for int64: number the distinct rows
        return torch.unique(codes, dim=0, return_inverse=True)[1]
    if codes.device.type == "cpu":  # numpy's column reductions of a row-major matrix are ~5x torch's
        columns = codes.numpy()
        lo = torch.from_numpy(columns.min(axis=0))
        span = (columns.max(axis=0) - lo.numpy() + 1).tolist()
    else:
        lo = codes.min(dim=0).values
        span = (codes.max(dim=0).values - lo + 1).tolist()
    total = 1
    for s in span:
        total *= s
    if total < 2**62:
        # Mixed radix: key = sum_k (code_k - lo_k) * prod_{m > k} span_m.
        strides = []
        acc = 1
        for s in reversed(span):
            strides.append(acc)
            acc *= s
        strides = torch.tensor(strides[::-1], dtype=torch.int64, device=codes.device)
        return ((codes - lo) * strides).sum(dim=1)
    return _hashed_keys(codes)


def _hashed_keys(codes: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Row keys of wide code rows: a random linear hash modulo 2^64 (int64 arithmetic wraps),
    checked row by row against each key's first row, so the keys are exact; on a collision (odds
    about N^2 / 2^64) the rows are sorted instead. Sorting 1,024-wide rows costs seconds where the
    hash costs milliseconds."""
    if weights is None:
        gen = torch.Generator().manual_seed(0)
        weights = torch.randint(-(2**62), 2**62, (codes.shape[1],), generator=gen, dtype=torch.int64).to(codes.device) | 1
    keys = (codes * weights).sum(dim=1)
    _, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), codes.shape[0], dtype=torch.int64, device=codes.device)
    first.scatter_reduce_(0, inverse, torch.arange(codes.shape[0], device=codes.device), reduce="amin")
    if bool((codes == codes[first[inverse]]).all()):
        return keys
    return torch.unique(codes, dim=0, return_inverse=True)[1]


def bin_codes(t: torch.Tensor, bin_size=None, n_bins=None, value_range=None) -> torch.Tensor:
    """Each value's bin: int64 codes, or float64 whole numbers where |t| / bin_size >= 2^52
    (a diverging network's values would overflow int64 and merge distinct bins)."""
    if (bin_size is None) == (n_bins is None):
        raise ConfigError("give exactly one of bin_size and n_bins for binning.")
    if bin_size is not None:
        size = _validate.positive("bin_size", bin_size)
        # The largest |t| / bin_size, from one pass over t (finite, checked by the caller).
        reach = float(t.abs().max()) / size if t.numel() else 0.0
        if not math.isfinite(reach):
            raise ConfigError(f"bin_size {size:g} is too small for activations of magnitude {float(t.abs().max()):.3g}: t / bin_size overflows.")
        codes = torch.floor(t.to(torch.float64) / size)
        if reach < _EXACT_CODES:
            return codes.to(torch.int64)
        return codes
    t = t.to(torch.float64)
    bins = _validate.positive("n_bins", n_bins, integer=True, most=_validate.MAX_BINS)
    if value_range is None:
        lo, hi = float(t.min().item()), float(t.max().item())
    else:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise ConfigError(f"value_range must be a pair (low, high), got {value_range!r}.") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"value_range must be finite with low < high, got {value_range!r}.")
    if hi <= lo:
        return torch.zeros(t.shape, dtype=torch.int64, device=t.device)
    codes = torch.floor((t - lo) * (bins / (hi - lo)))
    return codes.clamp_(0, bins - 1).to(torch.int64)


def binning_mi(activations, labels, *, inputs=None, bin_size: float | None = None, n_bins: int | None = None,
               value_range: tuple[float, float] | None = None) -> tuple[float, float]:
    """Binning estimate (I(X;T), I(T;Y)) in bits: exactly one of `bin_size` or `n_bins` (on
    `value_range`, or the data's range); bin_size 0.07 when neither is given."""
    del inputs  # I(X;T) = H(T) for a deterministic network
    if bin_size is None and n_bins is None:
        bin_size = DEFAULT_BIN_SIZE
    t, codes_y, n_classes, _ = _validate.prepared(activations, labels)
    return codes_mi(bin_codes(t, bin_size, n_bins, value_range), codes_y, n_classes)
