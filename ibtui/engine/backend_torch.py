"""The torch backend: the training step in torch operations, for CUDA (and for the CPU when the
compiled kernels cannot load). The optimiser is torch.optim's, over the one flat tensor.

The step back-propagates by hand, feature-major like the compiled step: per layer z = W^T h + b
as one batched product (bmm) over seeds, delta = (softmax - onehot) / B at the output, and
delta_{l-1} = (W_l delta_l) * f'(z_{l-1}) below, with f' taken from z and h = f(z) in place
(ACTIVATION_GRADS). On these tiny matrices autograd's per-operation bookkeeping would cost more
than the arithmetic; the tests check every activation against autograd.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ibtui.config import ACTIVATIONS
from ibtui.engine.mlp import StackedMLP


def _gelu_slope(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    # d/dz [z * Phi(z)] = Phi(z) + z * phi(z)
    cdf = 0.5 * (1.0 + torch.erf(z * 0.7071067811865476))
    return cdf + z * torch.exp(-0.5 * z * z) * 0.3989422804014327


def _times(slope: Callable) -> Callable:
    return lambda delta, z, h: delta.mul_(slope(z, h))


# name -> backprop(delta, z, h): delta *= f'(z), in place, from z and h = f(z).
ACTIVATION_GRADS: dict[str, Callable] = {
    "tanh": lambda delta, z, h: delta.addcmul_(delta * h, h, value=-1.0),
    "relu": lambda delta, z, h: delta.mul_(h > 0),
    "sigmoid": _times(lambda z, h: h * (1.0 - h)),
    "softsign": _times(lambda z, h: (1.0 - h.abs()).square()),
    "softplus": _times(lambda z, h: torch.sigmoid(z)),
    "elu": _times(lambda z, h: torch.where(z > 0, 1.0, h + 1.0)),
    "gelu": _times(_gelu_slope),
    "linear": lambda delta, z, h: delta,
    "hard-tanh": _times(lambda z, h: ((z > -1) & (z < 1)).to(h.dtype)),
}
assert set(ACTIVATION_GRADS) == set(ACTIVATIONS)


def cpu_copy(value: Any) -> Any:
    """A detached CPU copy of a (nested) optimiser state: what a checkpoint stores."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {key: cpu_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(cpu_copy(item) for item in value)
    return copy.deepcopy(value)


class TorchOptimizer:
    """torch.optim.Adam or SGD over the flat parameter tensor, whose .grad is flat_grad."""

    def __init__(self, flat: torch.Tensor, flat_grad: torch.Tensor, kind: str, lr: float, momentum: float = 0.0):
        flat.grad = flat_grad
        self.kind = kind
        self.inner = torch.optim.Adam([flat], lr=lr) if kind == "adam" else torch.optim.SGD([flat], lr=lr, momentum=momentum)

    def step(self) -> None:
        self.inner.step()

    def state_dict(self) -> dict[str, Any]:
        # A copy on the CPU: a checkpoint may wait in the snapshot pipeline while training goes
        # on, and must load where there is no GPU (load_state_dict moves it to the parameter's device).
        return {"kind": self.kind, "torch": cpu_copy(self.inner.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind or "torch" not in state:
            raise ValueError("optimizer state of another kind")
        self.inner.load_state_dict(state["torch"])


class TorchMLP(StackedMLP):
    backend = "torch"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._backprop = ACTIVATION_GRADS[self.activation_name]
        self._table: torch.Tensor | None = None
        self._epoch: torch.Tensor | None = None
        self._buffers: dict[int, list[torch.Tensor]] = {}

    def make_optimizer(self, kind: str, lr: float, momentum: float = 0.0) -> TorchOptimizer:
        return TorchOptimizer(self.flat, self.flat_grad, kind, lr, momentum)

    def bind_data(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The training set: x (N, n_inputs), integer labels y (N,), as rows [x, 1, onehot(y)]."""
        ones = torch.ones(len(x), 1, device=x.device)
        self._table = torch.cat([x.float(), ones, F.one_hot(y, self.widths[-1]).float()], 1).to(self.device)
        self._epoch = None

    def shuffle(self, perms: torch.Tensor) -> None:
        """Lay out one epoch feature-major, (S, features, N), in each seed's order perms (S, N)."""
        if self._table is None:
            raise RuntimeError("bind_data() before shuffle()")
        self._epoch = self._table[perms.to(self.device)].transpose(1, 2).contiguous()

    def _layer_buffers(self, batch: int) -> list[torch.Tensor]:
        """Per hidden layer an (S, width + 1, batch) buffer whose last row stays 1."""
        if batch not in self._buffers:
            self._buffers[batch] = [torch.ones((self.n_seeds, width + 1, batch), device=self.device) for width in self.widths[1:-1]]
        return self._buffers[batch]

    def train_step(self, start: int, stop: int, l2: float, want_loss: bool) -> torch.Tensor | None:
        """As CompiledMLP.train_step: the gradient into flat_grad, the per-seed loss when asked."""
        if self._epoch is None:
            raise RuntimeError("shuffle() before train_step()")
        batch = self._epoch[:, :, start:stop]
        n = batch.shape[2]
        n_in = self.widths[0] + 1
        masks = None
        if self.dropout > 0:
            masks = torch.empty(self.n_seeds, sum(self.widths[1:-1]), n, device=self.device)
            self.draw_masks(masks)
        h = batch[:, :n_in]
        inputs, pre, keeps = [h], [], []
        row = 0
        for param, buffer in zip(self.params[:-1], self._layer_buffers(n)):
            z = torch.bmm(param, h)
            h = buffer
            activated = self.activation(z)
            pre.append((z, activated))
            if masks is not None:
                keep = masks[:, row : row + z.shape[1]]
                row += z.shape[1]
                keeps.append(keep)
                activated = activated * keep
            h[:, :-1].copy_(activated)
            inputs.append(h)
        logits = torch.bmm(self.params[-1], h)
        log_p = torch.log_softmax(logits, dim=1)
        onehot = batch[:, n_in:]
        loss = -(log_p * onehot).sum(1).mean(1) if want_loss else None
        delta = log_p.exp_().sub_(onehot).div_(n)
        for layer in range(len(self.params) - 1, -1, -1):
            torch.bmm(delta, inputs[layer].transpose(1, 2), out=self.param_grads[layer])
            if l2 > 0:
                self.param_grads[layer][:, :, :-1].add_(self.params[layer][:, :, :-1], alpha=2.0 * l2)
            if layer == 0:
                break
            delta = torch.bmm(self.params[layer][:, :, :-1].transpose(1, 2), delta)
            self._backprop(delta, *pre[layer - 1])
            if keeps:
                delta.mul_(keeps[layer - 1])
        return loss
