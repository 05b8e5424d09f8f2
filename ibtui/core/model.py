"""The MLP, as a stack of S independent networks trained at once.

Weights are stored stacked, W_l of shape (S, fan_in, fan_out), so S seeds cost one batched
matrix product per layer instead of a Python loop over S models. Seed s of an ensemble is
initialised from its own generator exactly as a single run with that seed would be, and every
operation is independent across seeds, so member s matches the separate run to float tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ibtui.core.config import ACTIVATIONS, ModelConfig
from ibtui.core.errors import ConfigError, unknown_name

ACTIVATION_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "softsign": F.softsign,
    "softplus": F.softplus,
    "elu": F.elu,
    "gelu": F.gelu,
    "linear": lambda t: t,
    "hard-tanh": F.hardtanh,
}
assert set(ACTIVATION_FUNCTIONS) == set(ACTIVATIONS)


def activation_function(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        return ACTIVATION_FUNCTIONS[name]
    except KeyError:
        raise ConfigError(unknown_name("activation", name, ACTIVATION_FUNCTIONS)) from None


def init_weights(widths: Sequence[int], seed: int, scheme: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One network's (W, b) per layer, W of shape (fan_in, fan_out), drawn from its own generator."""
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        weight = torch.empty(fan_in, fan_out)
        if scheme == "truncated_normal":
            # Saxe et al. / Keras TruncatedNormal: std 1/sqrt(fan_out), cut at two standard deviations.
            std = 1.0 / math.sqrt(fan_out)
            torch.nn.init.trunc_normal_(weight, 0.0, std, -2 * std, 2 * std, generator=generator)
            bias = torch.zeros(fan_out)
        else:
            # torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
            bound = 1.0 / math.sqrt(fan_in)
            weight.uniform_(-bound, bound, generator=generator)
            bias = torch.empty(fan_out).uniform_(-bound, bound, generator=generator)
        layers.append((weight, bias))
    return layers


class StackedMLP:
    """S MLPs with widths [in, *hidden, out], sharing nothing but the batched kernels."""

    def __init__(self, n_inputs: int, n_outputs: int, config: ModelConfig, seeds: Sequence[int], device: torch.device):
        self.widths = (n_inputs, *config.hidden, n_outputs)
        self.activation = activation_function(config.activation)
        self.dropout = config.dropout
        self.n_seeds = len(seeds)
        per_seed = [init_weights(self.widths, seed, config.init) for seed in seeds]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for layer in range(len(self.widths) - 1):
            w = torch.stack([net[layer][0] for net in per_seed]).to(device)
            b = torch.stack([net[layer][1] for net in per_seed]).unsqueeze(1).to(device)
            self.weights.append(w.requires_grad_())
            self.biases.append(b.requires_grad_())

    def parameters(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def forward(self, x: torch.Tensor, *, train: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (S, B, n_inputs) -> logits (S, B, n_outputs) and each hidden layer's activations."""
        hidden = []
        h = x
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if layer == last:
                break
            h = self.activation(h)
            if train and self.dropout > 0:
                h = F.dropout(h, self.dropout, training=True)
            hidden.append(h)
        return h, hidden

    def l2_penalty(self) -> torch.Tensor:
        """Sum over seeds of each seed's sum of squared weights (biases excluded, as in Keras)."""
        return sum((w * w).sum() for w in self.weights)

    def state(self) -> dict[str, list[torch.Tensor]]:
        return {
            "weights": [w.detach().cpu().clone() for w in self.weights],
            "biases": [b.detach().cpu().clone() for b in self.biases],
        }

    def load_state(self, state: dict[str, list[torch.Tensor]]) -> None:
        with torch.no_grad():
            for mine, saved in zip(self.weights + self.biases, state["weights"] + state["biases"]):
                if mine.shape != saved.shape:
                    raise ConfigError("the checkpoint's network does not match the run's configuration")
                mine.copy_(saved.to(mine.device))
