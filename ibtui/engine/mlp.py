"""The MLP as a stack of S independent networks trained at once: parameters, initialisation,
the forward pass the snapshots measure, dropout generators and state. The training steps are
the backends' (backend_cpu.py, backend_torch.py); model.py picks one.

Layout: each layer's parameters are one block (S, fan_out, fan_in + 1), W transposed with the
bias as the last column, so z = W^T h + b is one product with an input that carries a last row
of ones, and one product in the backward pass gives the gradients of W and b together. Every
block lives in one flat tensor (`flat`; gradients in `flat_grad`, same layout), so an optimiser
updates all seeds in a few vector operations and a checkpoint is one tensor.

Seed s of an ensemble is a run with seed s: its weights come from torch.Generator(seed), its
dropout masks from a generator of its own (dropout_seed(seed)), every operation is independent
across seeds. Library code never touches torch's process-wide generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ibtui.config import ACTIVATIONS, ModelConfig
from ibtui.errors import ConfigError, unknown_name


def fast_tanh(z: torch.Tensor) -> torch.Tensor:
    """tanh(z) as 2 sigmoid(2z) - 1 (torch's CPU sigmoid is several times faster than its tanh);
    agrees with torch.tanh to 2e-7."""
    return torch.sigmoid(z * 2.0).mul_(2.0).sub_(1.0)


# name -> f(z) on torch tensors: the forward pass of snapshots and of the torch step.
ACTIVATION_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": fast_tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "softsign": F.softsign,
    "softplus": F.softplus,
    "elu": F.elu,
    "gelu": F.gelu,
    "linear": lambda z: z,
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


def dropout_seed(seed: int) -> int:
    """The seed of seed `seed`'s dropout generator: another stream than its initialisation's."""
    return (seed + 0x9E3779B97F4A7C15) % 2**64


class StackedMLP:
    """S MLPs with widths [in, *hidden, out]. A backend adds the training step:
    bind_data(x, y), then per epoch shuffle(perms) and train_step(start, stop, l2, want_loss)
    over consecutive slices of the order, each followed by make_optimizer(...).step()."""

    backend = "none"
    trains_many_steps = False  # whether train_steps (many steps in one call) is available

    def __init__(self, n_inputs: int, n_outputs: int, config: ModelConfig, seeds: Sequence[int], device: torch.device):
        self.widths = (n_inputs, *config.hidden, n_outputs)
        self.activation = activation_function(config.activation)
        self.activation_name = config.activation
        self.dropout = config.dropout
        self.n_seeds = len(seeds)
        self.device = device
        per_seed = [init_weights(self.widths, seed, config.init) for seed in seeds]
        self._shapes = [(self.n_seeds, fan_out, fan_in + 1) for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:])]
        self._offsets = [0]
        for shape in self._shapes:
            self._offsets.append(self._offsets[-1] + math.prod(shape))
        flat = torch.empty(self._offsets[-1])
        for layer in range(len(self._shapes)):
            block = torch.stack([torch.cat([net[layer][0].T, net[layer][1].unsqueeze(1)], 1) for net in per_seed])
            flat[self._offsets[layer] : self._offsets[layer + 1]] = block.reshape(-1)
        self.flat = flat.to(device)
        self.flat_grad = torch.zeros_like(self.flat)
        self.params = self._blocks(self.flat)
        self.param_grads = self._blocks(self.flat_grad)
        pairs = self.weights_and_biases(self.flat)
        self.weights = [w for w, _ in pairs]
        self.biases = [b for _, b in pairs]
        self.weight_grads = [w for w, _ in self.weights_and_biases(self.flat_grad)]
        self.generators = [torch.Generator(device=device).manual_seed(dropout_seed(seed)) for seed in seeds]
        self.threads = 1  # CPU threads the step may use (the compiled step splits the seeds over them)

    def _blocks(self, source: torch.Tensor) -> list[torch.Tensor]:
        return [source[a:b].view(shape) for a, b, shape in zip(self._offsets[:-1], self._offsets[1:], self._shapes)]

    def weights_and_biases(self, source: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, views (S, fan_in, fan_out) and (S, 1, fan_out) of a flat parameter buffer."""
        return [(block[:, :, :-1].transpose(1, 2), block[:, :, -1:].transpose(1, 2)) for block in self._blocks(source)]

    def draw_masks(self, masks: torch.Tensor) -> None:
        """Fill masks (S, hidden units, B) with inverted-dropout masks, Bernoulli(1 - p) / (1 - p):
        seed s's rows from seed s's generator, layer after layer."""
        keep = 1.0 - self.dropout
        for generator, rows in zip(self.generators, masks):
            rows.bernoulli_(keep, generator=generator).div_(keep)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (S, B, n_inputs) -> logits (S, B, n_outputs) and each hidden layer's activations."""
        hidden = []
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = self.activation(torch.baddbmm(b, h, w))
            hidden.append(h)
        return torch.baddbmm(self.biases[-1], h, self.weights[-1]), hidden

    def state(self) -> dict:
        return {"flat": self.flat.detach().cpu().clone(), "widths": torch.tensor(self.widths),
                "dropout_rng": [g.get_state() for g in self.generators]}

    def load_state(self, state: dict) -> None:
        if tuple(state["widths"].tolist()) != self.widths or state["flat"].shape != self.flat.shape:
            raise ConfigError("the checkpoint's network does not match the run's configuration")
        if len(state["dropout_rng"]) != len(self.generators):
            raise ConfigError("the checkpoint's dropout generators do not match the run's seeds")
        self.flat.copy_(state["flat"].to(self.flat.device))
        for generator, rng in zip(self.generators, state["dropout_rng"]):
            generator.set_state(rng)
