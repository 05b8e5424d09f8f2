"""Optimisers that update every parameter of every seed as one flat tensor.

torch.optim's Adam spends most of a tiny step on per-parameter bookkeeping (hundreds of
microseconds for the 12 tensors of the tanh network); here the whole model is one contiguous
buffer, so a step is half a dozen vector operations. The update is elementwise, so seeds stay
independent, and it is the textbook Adam of Kingma & Ba (as torch.optim.Adam, default eps 1e-8).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


class FlatAdam:
    """compiled: update with step_cpu's Adam (the compiled training step's, which train_steps also
    applies inside its loop, so that both give the same numbers) instead of torch's."""

    def __init__(self, param: torch.Tensor, grad: torch.Tensor, lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                 compiled: bool = False):
        self.param = param
        self.grad = grad
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        # torch's fused Adam kernel does the whole update in one pass (5.5 us instead of 15 us
        # for the seven vector operations below); it is private API, so fall back when absent.
        self._fused = hasattr(torch, "_fused_adam_")
        self._step_tensor = torch.zeros((), dtype=torch.float32, device=param.device)
        self._compiled = None
        if compiled:
            from ibtui.engine import step_cpu

            self._compiled = step_cpu
            self._arrays = tuple(t.numpy() for t in (param, grad, self.exp_avg, self.exp_avg_sq))

    def kernel_args(self) -> tuple:
        """(code, lr, beta1, beta2, eps, steps so far, exp_avg, exp_avg_sq) for step_cpu.train_steps."""
        _, _, exp_avg, exp_avg_sq = self._arrays
        return (0, self.lr, self.beta1, self.beta2, self.eps, self.step_count, exp_avg, exp_avg_sq)

    def advance(self, steps: int) -> None:
        """Count `steps` updates made elsewhere (by step_cpu.train_steps)."""
        self.step_count += steps

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        if self._compiled is not None:
            self._compiled.adam_step(*self._arrays, self.lr, self.beta1, self.beta2, self.eps, self.step_count)
            return
        if self._fused:
            try:
                self._step_tensor.fill_(self.step_count)
                torch._fused_adam_(
                    [self.param], [self.grad], [self.exp_avg], [self.exp_avg_sq], [], [self._step_tensor],
                    lr=self.lr, beta1=self.beta1, beta2=self.beta2, weight_decay=0.0, eps=self.eps,
                    amsgrad=False, maximize=False,
                )
                return
            except (RuntimeError, TypeError, NotImplementedError):
                self._fused = False  # an older or different build: the plain update below
        grad = self.grad
        bias1 = 1 - self.beta1**self.step_count
        bias2 = 1 - self.beta2**self.step_count
        self.exp_avg.lerp_(grad, 1 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        denom = self.exp_avg_sq.sqrt().div_(math.sqrt(bias2)).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-self.lr / bias1)

    def state_dict(self) -> dict[str, Any]:
        # Copies: a checkpoint may wait in the snapshot pipeline while training goes on.
        return {"kind": "adam", "step": self.step_count, "exp_avg": self.exp_avg.cpu().clone(), "exp_avg_sq": self.exp_avg_sq.cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "adam" or state["exp_avg"].shape != self.param.shape:
            raise ValueError("optimizer state of another kind or shape")
        self.step_count = int(state["step"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])


class FlatSGD:
    def __init__(self, param: torch.Tensor, grad: torch.Tensor, lr: float, compiled: bool = False):
        self.param = param
        self.grad = grad
        self.lr = lr
        self._compiled = None
        if compiled:  # as FlatAdam's
            from ibtui.engine import step_cpu

            self._compiled = step_cpu
            self._arrays = (param.numpy(), grad.numpy())
        self._no_state = np.zeros(0, np.float32)  # train_steps' Adam moments, unused by SGD

    def kernel_args(self) -> tuple:
        return (1, self.lr, 0.0, 0.0, 0.0, 0, self._no_state, self._no_state)

    def advance(self, steps: int) -> None:
        pass

    @torch.no_grad()
    def step(self) -> None:
        if self._compiled is not None:
            self._compiled.sgd_step(*self._arrays, self.lr)
            return
        self.param.add_(self.grad, alpha=-self.lr)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "sgd"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "sgd":
            raise ValueError("optimizer state of another kind")
