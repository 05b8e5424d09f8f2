"""Input checks shared by every estimator, written once: each bad input is one ConfigError or
DataError sentence (the CLI's exit 2), never a traceback from deep inside a kernel."""

from __future__ import annotations

import math

import numpy as np
import torch

from ibtui.config import MAX_BINS, MAX_NOISE_VARIANCE, MIN_NOISE_VARIANCE  # noqa: F401 (the limits, shared)
from ibtui.errors import ConfigError, DataError

_INTEGER_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)


def as_tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{what} must be a numpy array or torch tensor ({exc}).") from None


def activations(values, what: str = "activations") -> torch.Tensor:
    """A 2-D (N, d) real matrix as a tensor (on its own device, its own dtype)."""
    t = as_tensor(values, what)
    if t.ndim != 2:
        raise ConfigError(f"{what} must be a 2-D (N, d) matrix, got shape {tuple(t.shape)}.")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ConfigError(f"{what} must have at least one row and column, got shape {tuple(t.shape)}.")
    if not (t.is_floating_point() or t.dtype in _INTEGER_DTYPES):
        raise ConfigError(f"{what} must be real numbers, got dtype {t.dtype}.")
    return t


def labels(values, n: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """Labels as int64 codes 0..C-1 on `device`, and C."""
    y = as_tensor(values, "labels")
    if y.ndim != 1 or y.shape[0] != n:
        raise ConfigError(f"labels must be a 1-D array of length N={n}, got shape {tuple(y.shape)}.")
    if y.is_floating_point() or y.is_complex():
        raise ConfigError(f"labels must be integers, got dtype {y.dtype}.")
    y = y.to(device=device, dtype=torch.int64)
    classes, codes = torch.unique(y, return_inverse=True)
    return codes, int(classes.numel())


def check_finite(t: torch.Tensor, what: str = "activations") -> None:
    # Finite exactly when the largest and the smallest value are: max and min propagate NaN, and
    # two reductions cost a tenth of isfinite's full-size boolean matrix.
    if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t.amax()) & torch.isfinite(t.amin())):
        raise DataError(f"{what} contain NaN or infinite values.")


def positive(name: str, value, integer: bool = False, most: float | None = None):
    """`value` as a positive float (or int), at most `most` when given."""
    limit = f" no larger than {most:g}" if most is not None else ""
    bad = ConfigError(f"{name} must be a positive {'integer' if integer else 'number'}{limit}, got {value!r}.")
    if integer:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise bad
        v = int(value)
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if not (v > 0.0 and math.isfinite(v)):
            raise bad
    if most is not None and v > most:
        raise bad
    return v


def noise_variance(value) -> float:
    try:
        s2 = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"noise_variance must be a number, got {value!r}.") from None
    if not (MIN_NOISE_VARIANCE <= s2 <= MAX_NOISE_VARIANCE):
        raise ConfigError(f"noise_variance must be between {MIN_NOISE_VARIANCE:g} and {MAX_NOISE_VARIANCE:g} "
                          f"(smaller ones overflow the kernel's float32 arithmetic), got {value!r}.")
    return s2


def finite_result(name: str, values: tuple[float, float]) -> tuple[float, float]:
    """`values` as floats, or a DataError: no estimate returns NaN silently."""
    ixt, ity = float(values[0]), float(values[1])
    if not (math.isfinite(ixt) and math.isfinite(ity)):
        raise DataError(f"the {name} estimate is not a finite number (I(X;T) = {ixt}, I(T;Y) = {ity}); "
                        f"the activations are probably too large for its settings.")
    return ixt, ity


def entropy_bits(counts: torch.Tensor) -> float:
    """Entropy in bits of the empirical distribution given by positive counts."""
    c = counts.to(torch.float64)
    n = c.sum()
    return float(((c / n) * torch.log2(n / c)).sum().item())


def label_entropy(values) -> float:
    """H(Y) in bits of the empirical label distribution."""
    y = as_tensor(values, "labels")
    if y.ndim != 1 or y.shape[0] < 1:
        raise ConfigError(f"labels must be a non-empty 1-D array, got shape {tuple(y.shape)}.")
    if y.is_floating_point() or y.is_complex():
        raise ConfigError(f"labels must be integers, got dtype {y.dtype}.")
    _, counts = torch.unique(y, return_counts=True)
    return entropy_bits(counts)


def prepared(values, labels_in, *, inputs=None, needs_inputs: bool = False, name: str = ""):
    """(t, label codes, n_classes, inputs or None) checked for one estimator call."""
    t = activations(values)
    codes, n_classes = labels(labels_in, t.shape[0], t.device)
    check_finite(t)
    x = None
    if inputs is not None or needs_inputs:
        if inputs is None:
            raise ConfigError(f"the {name} estimator measures I(X;T) from the inputs: pass inputs=, the (N, features) matrix X.")
        x = activations(inputs, "inputs")
        if x.shape[0] != t.shape[0]:
            raise ConfigError(f"inputs must have the activations' N={t.shape[0]} rows, got {x.shape[0]}.")
        check_finite(x, "inputs")
    return t, codes, n_classes, x
