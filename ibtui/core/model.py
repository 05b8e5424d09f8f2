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

def _gelu_grad(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    # d/dz [z * Phi(z)] = Phi(z) + z * phi(z)
    cdf = 0.5 * (1.0 + torch.erf(z * 0.7071067811865476))
    return cdf + z * torch.exp(-0.5 * z * z) * 0.3989422804014327


def fast_tanh(z: torch.Tensor) -> torch.Tensor:
    """tanh(z) as 2 sigmoid(2z) - 1: torch's CPU sigmoid is about 5x faster than its tanh, which
    made tanh the largest cost of training 10 seeds at once. Agrees with torch.tanh to 2e-7."""
    return torch.sigmoid(z * 2.0).mul_(2.0).sub_(1.0)


def _times(derivative: Callable) -> Callable:
    return lambda delta, z, h: delta.mul_(derivative(z, h))


# name -> (f(z), backprop(delta, z, h) multiplying delta in place by f'(z)).
# The training step back-propagates by hand with these, which costs a third of autograd's
# per-op bookkeeping on the tiny matrices of these networks; tests check each against autograd.
# tanh and relu, the ones the papers compare, are written to use the fewest kernel launches.
ACTIVATIONS_WITH_GRADS: dict[str, tuple[Callable, Callable]] = {
    "tanh": (fast_tanh, lambda delta, z, h: delta.addcmul_(delta * h, h, value=-1.0)),
    "relu": (torch.relu, lambda delta, z, h: delta.mul_(h > 0)),
    "sigmoid": (torch.sigmoid, _times(lambda z, h: h * (1.0 - h))),
    "softsign": (F.softsign, _times(lambda z, h: (1.0 - h.abs()).square())),
    "softplus": (F.softplus, _times(lambda z, h: torch.sigmoid(z))),
    "elu": (F.elu, _times(lambda z, h: torch.where(z > 0, 1.0, h + 1.0))),
    "gelu": (F.gelu, _times(_gelu_grad)),
    "linear": (lambda z: z, lambda delta, z, h: delta),
    "hard-tanh": (F.hardtanh, _times(lambda z, h: ((z > -1) & (z < 1)).to(h.dtype))),
}
ACTIVATION_FUNCTIONS = {name: pair[0] for name, pair in ACTIVATIONS_WITH_GRADS.items()}
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
        # The optimiser updates the flat buffer in place and the training step writes gradients
        # straight into the matching views of one flat gradient buffer.
        self.flat = flat.to(device)
        self.flat_grad = torch.zeros_like(self.flat)
        views = self._views(self.flat)
        grad_views = self._views(self.flat_grad)
        self.weights, self.biases = views[0::2], views[1::2]
        self.weight_grads, self.bias_grads = grad_views[0::2], grad_views[1::2]
        _, self._backprop = ACTIVATIONS_WITH_GRADS[config.activation]

    def _views(self, source: torch.Tensor) -> list[torch.Tensor]:
        return [source[a:b].view(shape) for a, b, shape in zip(self._offsets[:-1], self._offsets[1:], self._shapes)]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (S, B, n_inputs) -> logits (S, B, n_outputs) and each hidden layer's activations."""
        hidden = []
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = self.activation(torch.baddbmm(b, h, w))
            hidden.append(h)
        return torch.baddbmm(self.biases[-1], h, self.weights[-1]), hidden

    @torch.no_grad()
    def train_step(self, x: torch.Tensor, y: torch.Tensor, l2: float, want_loss: bool) -> torch.Tensor | None:
        """Forward and backward for one minibatch: x (S, B, in), y (S, B).

        Each seed's loss is the mean cross-entropy over its minibatch plus l2 * sum(W^2); the
        gradients land in self.flat_grad (overwritten, not accumulated). Returns the per-seed
        cross-entropy when asked (it costs two extra operations).
        """
        inputs, pre = [], []
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            inputs.append(h)
            z = torch.baddbmm(b, h, w)
            h = self.activation(z)
            if self.dropout > 0:
                keep = torch.empty_like(h).bernoulli_(1.0 - self.dropout).div_(1.0 - self.dropout)
                pre.append((z, h, keep))
                h = h * keep
            else:
                pre.append((z, h, None))
        inputs.append(h)
        logits = torch.baddbmm(self.biases[-1], h, self.weights[-1])
        log_p = torch.log_softmax(logits, dim=-1)
        target = y.unsqueeze(-1)
        loss = None
        if want_loss:
            loss = -log_p.gather(-1, target).squeeze(-1).mean(1)
        # d(mean CE)/d logits = (softmax - onehot) / B, for each seed separately.
        delta = log_p.exp_()
        delta.scatter_add_(-1, target, torch.full_like(target, -1.0, dtype=delta.dtype))
        delta.div_(x.shape[1])
        for layer in range(len(self.weights) - 1, -1, -1):
            torch.bmm(inputs[layer].transpose(1, 2), delta, out=self.weight_grads[layer])
            if l2 > 0:
                self.weight_grads[layer].add_(self.weights[layer], alpha=2.0 * l2)
            torch.sum(delta, dim=1, keepdim=True, out=self.bias_grads[layer])
            if layer == 0:
                break
            z, h, keep = pre[layer - 1]
            delta = self._backprop(torch.bmm(delta, self.weights[layer].transpose(1, 2)), z, h)
            if keep is not None:
                delta.mul_(keep)
        return loss

    def state(self) -> dict[str, torch.Tensor]:
        return {"flat": self.flat.detach().cpu().clone(), "widths": torch.tensor(self.widths)}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        if tuple(state["widths"].tolist()) != self.widths or state["flat"].shape != self.flat.shape:
            raise ConfigError("the checkpoint's network does not match the run's configuration")
        self.flat.copy_(state["flat"].to(self.flat.device))
