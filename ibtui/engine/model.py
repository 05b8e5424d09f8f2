"""The MLP, as a stack of S independent networks trained at once.

The training step works feature-major: a layer's activations for a minibatch are a (width, B)
matrix per seed, so each row is contiguous, which is what makes numpy's elementwise operations
fast (a strided view costs 2-4x more). Each layer's parameters are one block of shape
(S, fan_out, fan_in + 1): W transposed, with the bias as the last column. Every layer's input
carries a last row of ones, so one batched product gives z = W^T h + b, and in the backward pass
one product gives the gradients of W and b together. S seeds cost one batched product per layer
instead of a Python loop over S models. Seed s of an ensemble is initialised from its own
generator exactly as a single run with that seed would be, and every operation is independent
across seeds, so member s matches the separate run to float tolerance.

Three implementations of the training step share that layout:

* compiled, the default on CPU: the whole step of every seed in one call to a loop compiled by
  numba (step_cpu.py), the seeds spread over the cores; train_steps runs many steps, the
  optimiser's update included, in one call (the trainer's usual path). These networks are tiny
  (a 256 x 12 by 12 x 10 product is 31k multiply-adds), so the other two spend most of a step on
  the dispatch of their ~40 calls; this one measured 2-3x faster than numpy (DEVELOPERS.md).
* numpy, on CPU for the activations the compiled step lacks (softplus, elu, gelu) or when numba
  cannot be imported. numpy's matmul (OpenBLAS small-matrix kernels) takes about 2 us where
  torch's bmm takes 7 us, its float32 tanh 1.3 us where torch's takes 8, and an elementwise
  operation 1 us against 2.5.
* torch, for CUDA (and selectable on CPU, which is how the tests check it without a GPU).

The numpy arrays of the first two are views of the torch buffers (shared memory), so everything
else (the optimiser, checkpoints, the snapshot forward pass) sees torch tensors.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ibtui.config import ACTIVATIONS, ModelConfig
from ibtui.errors import ConfigError, unknown_name

BACKENDS = ("auto", "compiled", "numpy", "torch")


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


# name -> (f(z), backprop(delta, z, h) multiplying delta in place by f'(z)), on torch tensors.
# The training step back-propagates by hand with these, which costs a third of autograd's
# per-op bookkeeping on the tiny matrices of these networks; tests check each against autograd.
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


def _np_tanh_backprop(delta: np.ndarray, z: np.ndarray, h: np.ndarray) -> None:
    slope = np.multiply(h, h)
    np.subtract(1.0, slope, out=slope)
    delta *= slope


# The same on numpy arrays: f(z, out) writes f(z) into out; backprop works in place. tanh and
# relu, the activations the papers compare, are native; the others run torch's functions on
# zero-copy views (a few microseconds more per layer).
NUMPY_ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "tanh": (lambda z, out: np.tanh(z, out=out), _np_tanh_backprop),
    "relu": (lambda z, out: np.maximum(z, 0.0, out=out), lambda delta, z, h: np.multiply(delta, h > 0, out=delta)),
    "linear": (lambda z, out: np.copyto(out, z), lambda delta, z, h: None),
}


def _numpy_via_torch(name: str) -> tuple[Callable, Callable]:
    f, backprop = ACTIVATIONS_WITH_GRADS[name]

    def forward(z: np.ndarray, out: np.ndarray) -> None:
        out[...] = f(torch.from_numpy(z)).numpy()

    def backward(delta: np.ndarray, z: np.ndarray, h: np.ndarray) -> None:
        backprop(torch.from_numpy(delta), torch.from_numpy(z), torch.from_numpy(h))

    return forward, backward


def _compiled_step_module():
    """ibtui.engine.step_cpu, or None (with a warning) when numba cannot be imported."""
    try:
        from ibtui.engine import step_cpu
    except ImportError as error:  # numba missing or broken on this platform
        warnings.warn(f"the compiled training step is unavailable ({error}); training with numpy, about 2x slower",
                      RuntimeWarning, stacklevel=3)
        return None
    return step_cpu


def _cpu_backend(activation: str) -> str:
    """What "auto" means on the CPU: compiled where it covers the activation and numba loads."""
    from_numba = activation in COMPILED_ACTIVATIONS and _compiled_step_module() is not None
    return "compiled" if from_numba else "numpy"


# The activations step_cpu computes (kept here so choosing a backend needs no numba import).
COMPILED_ACTIVATIONS = ("tanh", "relu", "linear", "sigmoid", "hard-tanh", "softsign")


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
    """S MLPs with widths [in, *hidden, out], sharing nothing but the batched kernels.

    A training epoch is `shuffle(perms)` (each seed's sample order) and then `train_step(start,
    stop, ...)` for consecutive slices of that order.
    """

    def __init__(self, n_inputs: int, n_outputs: int, config: ModelConfig, seeds: Sequence[int], device: torch.device, backend: str = "auto"):
        if backend not in BACKENDS:
            raise ConfigError(unknown_name("backend", backend, BACKENDS))
        self.widths = (n_inputs, *config.hidden, n_outputs)
        self.activation = activation_function(config.activation)
        self.dropout = config.dropout
        self.n_seeds = len(seeds)
        self.device = device
        if backend == "auto":
            backend = _cpu_backend(config.activation) if device.type == "cpu" else "torch"
        self.backend = backend
        if backend in ("compiled", "numpy") and device.type != "cpu":
            raise ConfigError(f"the {backend} training step runs on the CPU only")
        self._step_cpu = None
        if backend == "compiled":
            if config.activation not in COMPILED_ACTIVATIONS:
                raise ConfigError(f"the compiled training step has no {config.activation}; use the numpy backend")
            self._step_cpu = _compiled_step_module()
            if self._step_cpu is None:
                raise ConfigError("the compiled training step needs numba, which cannot be imported here")
        per_seed = [init_weights(self.widths, seed, config.init) for seed in seeds]
        self._shapes = [(self.n_seeds, fan_out, fan_in + 1) for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:])]
        self._offsets = [0]
        for shape in self._shapes:
            self._offsets.append(self._offsets[-1] + math.prod(shape))
        flat = torch.empty(self._offsets[-1])
        for layer in range(len(self._shapes)):
            block = torch.stack([torch.cat([net[layer][0].T, net[layer][1].unsqueeze(1)], 1) for net in per_seed])
            flat[self._offsets[layer] : self._offsets[layer + 1]] = block.reshape(-1)
        # All parameters live in one flat tensor so the optimiser updates them in a few vector
        # operations; the training step writes gradients into the matching views of flat_grad.
        self.flat = flat.to(device)
        self.flat_grad = torch.zeros_like(self.flat)
        self.params = self._blocks(self.flat)
        self.param_grads = self._blocks(self.flat_grad)
        pairs = self.weights_and_biases(self.flat)
        self.weights = [w for w, _ in pairs]
        self.biases = [b for _, b in pairs]
        self.weight_grads = [w for w, _ in self.weights_and_biases(self.flat_grad)]
        self._torch_backprop = ACTIVATIONS_WITH_GRADS[config.activation][1]
        self._np_activation = NUMPY_ACTIVATIONS.get(config.activation) or _numpy_via_torch(config.activation)
        if self.backend == "numpy":
            self._np_params = [p.numpy() for p in self.params]
            self._np_grads = [g.numpy() for g in self.param_grads]
        if self.backend == "compiled":
            self._np_flat, self._np_flat_grad = self.flat.numpy(), self.flat_grad.numpy()
            self._layout = (np.array(self._offsets[:-1], np.int64), np.array(self.widths, np.int64))
            self._activation_code = self._step_cpu.ACTIVATION_CODES[config.activation]
            self._losses = np.zeros(self.n_seeds, np.float32)
        self._table = None
        self._epoch = None
        self._buffers: dict[int, list] = {}
        self.threads = 1  # CPU threads the compiled step may use (the seeds are split over them)

    def _blocks(self, source: torch.Tensor) -> list[torch.Tensor]:
        return [source[a:b].view(shape) for a, b, shape in zip(self._offsets[:-1], self._offsets[1:], self._shapes)]

    def weights_and_biases(self, source: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, views (S, fan_in, fan_out) and (S, 1, fan_out) of a flat parameter buffer."""
        return [(block[:, :, :-1].transpose(1, 2), block[:, :, -1:].transpose(1, 2)) for block in self._blocks(source)]

    # -- data ----------------------------------------------------------------------------------

    def bind_data(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The training set the epochs are drawn from: x (N, n_inputs), integer labels y (N,).

        Kept as one table of rows [x, 1, onehot(y)]: a minibatch's first n_inputs + 1 features
        are the first layer's input with its ones row, the rest its targets."""
        table = torch.cat([x.float(), torch.ones(len(x), 1, device=x.device), F.one_hot(y, self.widths[-1]).float()], 1)
        if self.backend == "compiled":
            self._table = table.T.contiguous().numpy()  # feature-major: steps gather along rows
        else:
            self._table = table.numpy() if self.backend == "numpy" else table.to(self.device)
        self._epoch = None

    def shuffle(self, perms: torch.Tensor) -> None:
        """Lay out one epoch: perms (S, N) is each seed's order of the training samples.

        One gather per epoch; each step then reads a slice, with no per-step gather. numpy keeps
        the (S, N, features) rows as gathered and steps read them through a transposed view
        (matmul takes it as is; copying it feature-major cost 0.3 ms an epoch at 10 seeds, 9 %);
        torch lays the epoch out feature-major once."""
        if self._table is None:
            raise RuntimeError("bind_data() before shuffle()")
        if self.backend == "compiled":
            # No gather: each step reads its rows through the order, in the compiled loop.
            self._epoch = np.ascontiguousarray(perms.numpy(), dtype=np.int64)
        elif self.backend == "numpy":
            shape = (*perms.shape, self._table.shape[1])
            if self._epoch is None or self._epoch.shape != shape:
                self._epoch = np.empty(shape, dtype=np.float32)
            # Into the same buffer every epoch: a fresh 2 MB array (10 seeds) costs page faults.
            # torch's index_select copies the rows in 108 us at 10 seeds where np.take takes 176.
            rows = torch.from_numpy(self._epoch).view(-1, shape[-1])
            torch.index_select(torch.from_numpy(self._table), 0, perms.reshape(-1), out=rows)
        else:
            self._epoch = self._table[perms.to(self.device)].transpose(1, 2).contiguous()

    def _layer_buffers(self, batch: int) -> list:
        """Per hidden layer, an (S, width + 1, batch) buffer whose last row stays 1; for the
        compiled step, its scratch and its dropout masks (S, hidden units, batch)."""
        if batch not in self._buffers:
            shapes = [(self.n_seeds, width + 1, batch) for width in self.widths[1:-1]]
            if self.backend == "compiled":
                per_seed = self._step_cpu.work_size(self.widths, batch, self.dropout > 0)
                units = sum(self.widths[1:-1]) if self.dropout > 0 else 0
                self._buffers[batch] = [np.zeros(self.n_seeds * per_seed, np.float32), np.zeros((self.n_seeds, units, batch), np.float32)]
            elif self.backend == "numpy":
                self._buffers[batch] = [np.ones(shape, dtype=np.float32) for shape in shapes]
            else:
                self._buffers[batch] = [torch.ones(shape, device=self.device) for shape in shapes]
        return self._buffers[batch]

    # -- forward -------------------------------------------------------------------------------

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (S, B, n_inputs) -> logits (S, B, n_outputs) and each hidden layer's activations."""
        hidden = []
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = self.activation(torch.baddbmm(b, h, w))
            hidden.append(h)
        return torch.baddbmm(self.biases[-1], h, self.weights[-1]), hidden

    # -- training ------------------------------------------------------------------------------

    def train_step(self, start: int, stop: int, l2: float, want_loss: bool) -> torch.Tensor | None:
        """Forward and backward for samples [start, stop) of the epoch's order, every seed.

        Each seed's loss is the mean cross-entropy over its minibatch plus l2 * sum(W^2); the
        gradients land in self.flat_grad (overwritten, not accumulated). Returns the per-seed
        cross-entropy (S,) when asked.
        """
        if self._epoch is None:
            raise RuntimeError("shuffle() before train_step()")
        if self.backend == "compiled":
            return self._compiled_step(start, stop, l2, want_loss)
        if self.backend == "numpy":
            return self._numpy_step(self._epoch[:, start:stop].transpose(0, 2, 1), l2, want_loss)
        return self._torch_step(self._epoch[:, :, start:stop], l2, want_loss)

    def _dropout_mask(self, shape) -> torch.Tensor:
        # Drawn from torch's global generator on both backends, so checkpoints restore it.
        return torch.empty(shape, device=self.device).bernoulli_(1.0 - self.dropout).div_(1.0 - self.dropout)

    @property
    def trains_many_steps(self) -> bool:
        """Whether train_steps is available: the compiled step without dropout (whose masks come
        from torch's generator between steps)."""
        return self.backend == "compiled" and self.dropout == 0

    def train_steps(self, first: int, stop: int, batch: int, l2: float, optimizer) -> torch.Tensor | None:
        """Steps first..stop-1 of the epoch (step k: samples [k * batch, (k + 1) * batch) of the
        order), each followed by optimizer's update (a FlatAdam or FlatSGD made with
        compiled=True), in one call; the numbers are those of train_step + optimizer.step.
        Returns the per-seed cross-entropy of the epoch's last step when it is among them."""
        if not self.trains_many_steps:
            raise RuntimeError("train_steps needs the compiled backend and no dropout")
        if self._epoch is None:
            raise RuntimeError("shuffle() before train_steps()")
        work, _ = self._layer_buffers(batch)
        offsets, widths = self._layout
        code, lr, beta1, beta2, eps, done, exp_avg, exp_avg_sq = optimizer.kernel_args()
        with self._threads_for_step():
            self._step_cpu.train_steps(self._np_flat, self._np_flat_grad, exp_avg, exp_avg_sq, offsets, widths, self._table,
                                       self._epoch, first, stop, batch, l2, self._activation_code, code, lr, beta1, beta2,
                                       eps, done, work, self._losses)
        optimizer.advance(stop - first)
        last = math.ceil(self._epoch.shape[1] / batch) - 1
        return torch.from_numpy(self._losses.copy()) if first <= last < stop else None

    @contextlib.contextmanager
    def _threads_for_step(self):
        threads = min(self.threads, self.n_seeds, self._step_cpu.MAX_THREADS)
        torch_threads = torch.get_num_threads()
        if self._step_cpu.threads() != threads:
            self._step_cpu.set_threads(threads)
        yield
        if torch.get_num_threads() != torch_threads:
            # numba's OpenMP layer runs on torch's libgomp, and starting it or setting its count
            # sets this thread's OpenMP thread count, which torch reads: the optimiser's step
            # would then wake a second thread every time (5.5 -> 56 us under PASSIVE waiting).
            torch.set_num_threads(torch_threads)

    def _compiled_step(self, start: int, stop: int, l2: float, want_loss: bool) -> torch.Tensor | None:
        work, masks = self._layer_buffers(stop - start)
        if self.dropout > 0:
            # One (S, width, B) draw per hidden layer, in order, as the other backends draw them.
            row = 0
            for width in self.widths[1:-1]:
                torch.from_numpy(masks[:, row : row + width]).bernoulli_(1.0 - self.dropout).div_(1.0 - self.dropout)
                row += width
        offsets, widths = self._layout
        with self._threads_for_step():
            self._step_cpu.train_step(self._np_flat, self._np_flat_grad, offsets, widths, self._table, self._epoch, start,
                                      stop, l2, self._activation_code, masks, work, self._losses, want_loss)
        return torch.from_numpy(self._losses.copy()) if want_loss else None

    # A diverging run overflows to inf and NaN, which the engine detects and reports once per
    # epoch; numpy's per-operation warnings would only add noise to the terminal (cost: 1 us).
    @np.errstate(over="ignore", invalid="ignore", divide="ignore")
    def _numpy_step(self, batch: np.ndarray, l2: float, want_loss: bool) -> torch.Tensor | None:
        params, grads = self._np_params, self._np_grads
        forward, backprop = self._np_activation
        n = batch.shape[2]
        n_in = self.widths[0] + 1
        h = batch[:, :n_in]
        # inputs: each layer's input with its ones row; pre: (z, f(z)) before any dropout.
        inputs, pre, masks = [h], [], []
        for param, buffer in zip(params[:-1], self._layer_buffers(n)):
            z = np.matmul(param, h)
            h = buffer
            activated = h[:, :-1]
            forward(z, activated)
            if self.dropout > 0:
                keep = self._dropout_mask(z.shape).numpy()
                activated = activated.copy()
                h[:, :-1] *= keep
                masks.append(keep)
            pre.append((z, activated))
            inputs.append(h)
        logits = np.matmul(params[-1], h)  # (S, C, n)
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        total = probs.sum(1, keepdims=True)
        onehot = batch[:, n_in:]
        loss = None
        if want_loss:
            loss = torch.from_numpy((np.log(total[:, 0]) - (logits * onehot).sum(1)).mean(1))
        # d(mean CE)/d logits = (softmax - onehot) / B, for each seed separately.
        probs /= total
        probs -= onehot
        probs *= 1.0 / n
        delta = probs
        for layer in range(len(params) - 1, -1, -1):
            np.matmul(delta, inputs[layer].transpose(0, 2, 1), out=grads[layer])
            if l2 > 0:
                grads[layer][:, :, :-1] += (2.0 * l2) * params[layer][:, :, :-1]
            if layer == 0:
                break
            delta = np.matmul(params[layer][:, :, :-1].transpose(0, 2, 1), delta)
            backprop(delta, *pre[layer - 1])
            if masks:
                delta *= masks[layer - 1]
        return loss

    def _torch_step(self, batch: torch.Tensor, l2: float, want_loss: bool) -> torch.Tensor | None:
        n = batch.shape[2]
        n_in = self.widths[0] + 1
        h = batch[:, :n_in]
        inputs, pre, masks = [h], [], []
        for param, buffer in zip(self.params[:-1], self._layer_buffers(n)):
            z = torch.bmm(param, h)
            h = buffer
            activated = self.activation(z)
            pre.append((z, activated))
            if self.dropout > 0:
                keep = self._dropout_mask(z.shape)
                masks.append(keep)
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
            self._torch_backprop(delta, *pre[layer - 1])
            if masks:
                delta.mul_(masks[layer - 1])
        return loss

    # -- state ---------------------------------------------------------------------------------

    # Layout 1 (ibtui before the feature-major step) stored per layer W (S, fan_in, fan_out)
    # and then b (S, 1, fan_out); layout 2 is the blocks above.
    LAYOUT = 2

    def state(self) -> dict[str, torch.Tensor]:
        return {"flat": self.flat.detach().cpu().clone(), "widths": torch.tensor(self.widths), "layout": self.LAYOUT}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        flat = state["flat"]
        if tuple(state["widths"].tolist()) != self.widths or flat.shape != self.flat.shape:
            raise ConfigError("the checkpoint's network does not match the run's configuration")
        if state.get("layout", 1) == 1:
            flat = self._from_layout_1(flat)
        self.flat.copy_(flat.to(self.flat.device))

    def _from_layout_1(self, old: torch.Tensor) -> torch.Tensor:
        new = torch.empty_like(old)
        at = 0
        for block in self._blocks(new):
            s, fan_out, fan_in = block.shape[0], block.shape[1], block.shape[2] - 1
            w = old[at : at + s * fan_in * fan_out].view(s, fan_in, fan_out)
            at += w.numel()
            b = old[at : at + s * fan_out].view(s, 1, fan_out)
            at += b.numel()
            block.copy_(torch.cat([w, b], 1).transpose(1, 2))
        return new
