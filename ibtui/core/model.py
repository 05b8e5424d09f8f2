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
        # All parameters live in one flat leaf tensor so the optimiser updates them in a few
        # vector operations; the per-layer weights and biases are views into it.
        shapes = []
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:]):
            shapes += [(self.n_seeds, fan_in, fan_out), (self.n_seeds, 1, fan_out)]
        self._shapes = shapes
        self._offsets = [0]
        for shape in shapes:
            self._offsets.append(self._offsets[-1] + math.prod(shape))
        flat = torch.empty(self._offsets[-1])
        for layer in range(len(self.widths) - 1):
            w = torch.stack([net[layer][0] for net in per_seed])
            b = torch.stack([net[layer][1] for net in per_seed]).unsqueeze(1)
            for k, tensor in ((2 * layer, w), (2 * layer + 1, b)):
                flat[self._offsets[k] : self._offsets[k + 1]] = tensor.reshape(-1)
        # The flat buffer is updated in place by the optimiser; autograd sees one leaf per layer
        # tensor, each a view into it, with its .grad a view into one flat gradient buffer, so
        # backward accumulates straight into self.flat_grad with no per-tensor bookkeeping.
        self.flat = flat.to(device)
        self.flat_grad = torch.zeros_like(self.flat)
        self._params = [v.detach().requires_grad_() for v in self._views(self.flat)]
        for param, grad in zip(self._params, self._views(self.flat_grad)):
            param.grad = grad

    def _views(self, source: torch.Tensor) -> list[torch.Tensor]:
        return [source[a:b].view(shape) for a, b, shape in zip(self._offsets[:-1], self._offsets[1:], self._shapes)]

    @property
    def weights(self) -> list[torch.Tensor]:
        return self._params[0::2]

    @property
    def biases(self) -> list[torch.Tensor]:
        return self._params[1::2]

    def weight_grads(self) -> list[torch.Tensor]:
        return [w.grad for w in self.weights]

    def zero_grad(self) -> None:
        self.flat_grad.zero_()

    def forward(self, x: torch.Tensor, *, train: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (S, B, n_inputs) -> logits (S, B, n_outputs) and each hidden layer's activations."""
        hidden = []
        h = x
        last = len(self._params) // 2 - 1
        for layer, (w, b) in enumerate(zip(self._params[0::2], self._params[1::2])):
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

    def state(self) -> dict[str, torch.Tensor]:
        return {"flat": self.flat.detach().cpu().clone(), "widths": torch.tensor(self.widths)}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        if tuple(state["widths"].tolist()) != self.widths or state["flat"].shape != self.flat.shape:
            raise ConfigError("the checkpoint's network does not match the run's configuration")
        with torch.no_grad():
            self.flat.copy_(state["flat"].to(self.flat.device))
