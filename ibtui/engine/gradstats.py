"""Gradient statistics of an epoch, for the signal-to-noise plot (Shwartz-Ziv & Tishby's drift
and diffusion phases).

Over the epoch's minibatch gradients g_1..g_K of a layer's weights, per seed:
mean = ||E[g]||_2 and std = sqrt(sum over weights of Var[g]), Var[g] = E[g^2] - E[g]^2.
The sums are float64: at high SNR, E[g^2] and E[g]^2 agree in more digits than float32 holds,
and in float32 their difference cancels to rounding noise (or to zero).
"""

from __future__ import annotations

import torch


def new(weights: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    """Empty sums for weights shaped like `weights` (per layer, (S, fan_in, fan_out))."""
    return {
        "sum": [torch.zeros_like(w, dtype=torch.float64) for w in weights],
        "sq": [torch.zeros_like(w, dtype=torch.float64) for w in weights],
        "count": [torch.zeros(1, dtype=torch.float64)],
    }


def add(stats: dict[str, list[torch.Tensor]], grads: list[torch.Tensor]) -> None:
    """Count one step's gradients (per layer, shaped as the weights)."""
    for total, squares, grad in zip(stats["sum"], stats["sq"], grads):
        grad = grad.double()
        total.add_(grad)
        squares.addcmul_(grad, grad)
    stats["count"][0] += 1


def summary(stats: dict[str, list[torch.Tensor]]) -> dict[str, list[list[float]]] | None:
    """{"mean": seed -> layer -> ||E[g]||, "std": seed -> layer -> sqrt(sum Var[g])}, or None
    when no step was counted."""
    if not stats or not stats.get("count") or not float(stats["count"][0]):
        return None
    count = float(stats["count"][0])
    means, stds = [], []
    for total, squares in zip(stats["sum"], stats["sq"]):
        mean = total / count
        variance = (squares / count - mean * mean).clamp_(min=0)
        means.append(mean.flatten(1).norm(dim=1))
        stds.append(variance.flatten(1).sum(1).sqrt())
    return {"mean": torch.stack(means, 1).tolist(), "std": torch.stack(stds, 1).tolist()}
