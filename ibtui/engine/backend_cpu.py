"""The CPU backend: the compiled training step (step_cpu.py) on StackedMLP's flat parameters.

The numpy arrays handed to the kernels are views of the torch buffers (shared memory), so the
snapshot forward pass and checkpoints see the parameters the kernels write. The training set is
kept feature-major, (n_inputs + 1 + classes, N): inputs, a row of ones, one-hot labels; an epoch
is each seed's order of the samples, and the kernel gathers every minibatch through it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ibtui.config import ModelConfig
from ibtui.engine import step_cpu
from ibtui.engine.mlp import StackedMLP
from ibtui.engine.optim import FlatAdam, FlatSGD


class CompiledMLP(StackedMLP):
    backend = "compiled"

    def __init__(self, n_inputs: int, n_outputs: int, config: ModelConfig, seeds: Sequence[int], device: torch.device):
        super().__init__(n_inputs, n_outputs, config, seeds, device)
        self._np_flat, self._np_flat_grad = self.flat.numpy(), self.flat_grad.numpy()
        self._layout = (np.array(self._offsets[:-1], np.int64), np.array(self.widths, np.int64))
        self._activation_code = step_cpu.ACTIVATION_CODES[config.activation]
        self._losses = np.zeros(self.n_seeds, np.float32)
        self._table: np.ndarray | None = None
        self._epoch: np.ndarray | None = None
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def trains_many_steps(self) -> bool:
        """Without dropout (whose masks are drawn between steps), train_steps runs many steps."""
        return self.dropout == 0

    def make_optimizer(self, kind: str, lr: float, momentum: float = 0.0) -> FlatAdam | FlatSGD:
        if kind == "adam":
            return FlatAdam(self.flat, self.flat_grad, lr=lr)
        return FlatSGD(self.flat, self.flat_grad, lr=lr, momentum=momentum)

    def bind_data(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The training set: x (N, n_inputs), integer labels y (N,)."""
        table = torch.cat([x.float(), torch.ones(len(x), 1), F.one_hot(y, self.widths[-1]).float()], 1)
        self._table = table.T.contiguous().numpy()
        self._epoch = None

    def shuffle(self, perms: torch.Tensor) -> None:
        """Lay out one epoch: perms (S, N) is each seed's order of the training samples."""
        if self._table is None:
            raise RuntimeError("bind_data() before shuffle()")
        self._epoch = np.ascontiguousarray(perms.numpy(), dtype=np.int64)

    def _work(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """The kernel's scratch for a minibatch of `batch`, and the dropout masks (S, units, B)."""
        if batch not in self._buffers:
            per_seed = step_cpu.work_size(self.widths, batch, self.dropout > 0)
            units = sum(self.widths[1:-1]) if self.dropout > 0 else 0
            self._buffers[batch] = (np.zeros(self.n_seeds * per_seed, np.float32), np.zeros((self.n_seeds, units, batch), np.float32))
        return self._buffers[batch]

    @contextlib.contextmanager
    def _threads_for_step(self):
        threads = min(self.threads, self.n_seeds, step_cpu.MAX_THREADS)
        torch_threads = torch.get_num_threads()
        if step_cpu.threads() != threads:
            step_cpu.set_threads(threads)
        yield
        if torch.get_num_threads() != torch_threads:
            # numba's OpenMP layer runs on torch's libgomp, and setting its thread count sets this
            # thread's OpenMP count, which torch reads: give torch its own count back.
            torch.set_num_threads(torch_threads)

    def train_step(self, start: int, stop: int, l2: float, want_loss: bool) -> torch.Tensor | None:
        """Forward and backward for samples [start, stop) of the epoch's order, every seed: the
        gradient of mean cross-entropy + l2 * sum(W^2) into flat_grad (overwritten). Returns the
        per-seed cross-entropy (S,) when asked."""
        if self._epoch is None:
            raise RuntimeError("shuffle() before train_step()")
        work, masks = self._work(stop - start)
        if self.dropout > 0:
            self.draw_masks(torch.from_numpy(masks))
        offsets, widths = self._layout
        with self._threads_for_step():
            step_cpu.train_step(self._np_flat, self._np_flat_grad, offsets, widths, self._table, self._epoch, start,
                                stop, l2, self._activation_code, masks, work, self._losses, want_loss)
        return torch.from_numpy(self._losses.copy()) if want_loss else None

    def train_steps(self, first: int, stop: int, batch: int, l2: float, optimizer: FlatAdam | FlatSGD) -> torch.Tensor | None:
        """Steps first..stop-1 of the epoch (step k: samples [k * batch, (k + 1) * batch) of the
        order), each followed by the optimizer's update, in one call: the numbers of train_step +
        optimizer.step. Returns the per-seed cross-entropy of the epoch's last step when it is
        among them."""
        if not self.trains_many_steps:
            raise RuntimeError("train_steps needs a model without dropout")
        if self._epoch is None:
            raise RuntimeError("shuffle() before train_steps()")
        work, _ = self._work(batch)
        offsets, widths = self._layout
        code, lr, beta1, beta2, eps, done, exp_avg, exp_avg_sq = optimizer.kernel_args()
        with self._threads_for_step():
            step_cpu.train_steps(self._np_flat, self._np_flat_grad, exp_avg, exp_avg_sq, offsets, widths, self._table,
                                 self._epoch, first, stop, batch, l2, self._activation_code, code, lr, beta1, beta2,
                                 eps, done, work, self._losses)
        optimizer.advance(stop - first)
        last = math.ceil(self._epoch.shape[1] / batch) - 1
        return torch.from_numpy(self._losses.copy()) if first <= last < stop else None
