"""The compiled backend's optimisers: every parameter of every seed as one flat buffer.

The update is step_cpu's (adam_step, sgd_step), the same arithmetic that step_cpu.train_steps
applies inside its loop, so a step made here equals a step made there bit for bit. Adam is the
textbook update of Kingma & Ba, as torch.optim.Adam without weight decay (default eps 1e-8):
m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps).
The update is elementwise, so seeds stay independent. The torch backend uses torch.optim.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ibtui.engine import step_cpu


class FlatAdam:
    def __init__(self, param: torch.Tensor, grad: torch.Tensor, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.param = param
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self._arrays = tuple(t.numpy() for t in (param, grad, self.exp_avg, self.exp_avg_sq))

    def kernel_args(self) -> tuple:
        """(code, lr, beta1, beta2, eps, steps so far, exp_avg, exp_avg_sq) for step_cpu.train_steps."""
        _, _, exp_avg, exp_avg_sq = self._arrays
        return (step_cpu.OPTIMIZER_CODES["adam"], self.lr, self.beta1, self.beta2, self.eps, self.step_count, exp_avg, exp_avg_sq)

    def advance(self, steps: int) -> None:
        """Count `steps` updates made elsewhere (by step_cpu.train_steps)."""
        self.step_count += steps

    def step(self) -> None:
        self.step_count += 1
        step_cpu.adam_step(*self._arrays, self.lr, self.beta1, self.beta2, self.eps, self.step_count)

    def state_dict(self) -> dict[str, Any]:
        # Copies: a checkpoint may wait in the snapshot pipeline while training goes on.
        return {"kind": "adam", "step": self.step_count, "exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "adam" or state["exp_avg"].shape != self.param.shape:
            raise ValueError("optimizer state of another kind or shape")
        self.step_count = int(state["step"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])


class FlatSGD:
    """p -= lr g; with momentum m (torch.optim.SGD's rule, no dampening): b = m b + g, p -= lr b.
    Momentum's buffer lives here, so only plain SGD runs inside step_cpu.train_steps (in_kernel)."""

    def __init__(self, param: torch.Tensor, grad: torch.Tensor, lr: float, momentum: float = 0.0):
        self.lr = lr
        self.momentum = momentum
        self.in_kernel = momentum == 0
        self._param, self._grad = param, grad
        self.buffer = torch.zeros_like(param) if momentum else None
        self._arrays = (param.numpy(), grad.numpy())
        self._no_state = np.zeros(0, np.float32)  # train_steps' Adam moments, unused by SGD

    def kernel_args(self) -> tuple:
        if not self.in_kernel:
            raise RuntimeError("SGD with momentum steps outside the compiled multi-step call")
        return (step_cpu.OPTIMIZER_CODES["sgd"], self.lr, 0.0, 0.0, 0.0, 0, self._no_state, self._no_state)

    def advance(self, steps: int) -> None:
        pass

    def step(self) -> None:
        if self.buffer is None:
            step_cpu.sgd_step(*self._arrays, self.lr)
            return
        self.buffer.mul_(self.momentum).add_(self._grad)
        self._param.add_(self.buffer, alpha=-self.lr)

    def state_dict(self) -> dict[str, Any]:
        if self.buffer is None:
            return {"kind": "sgd"}
        return {"kind": "sgd", "momentum_buffer": self.buffer.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "sgd":
            raise ValueError("optimizer state of another kind")
        if self.buffer is not None:
            if "momentum_buffer" not in state or state["momentum_buffer"].shape != self.buffer.shape:
                raise ValueError("the optimizer state has no momentum buffer of this network's size")
            self.buffer.copy_(state["momentum_buffer"])
