"""The backend for any PyTorch model: `model.factory = "path/to/file.py:make_model"`.

The factory is called as ``make_model(input_shape, n_classes)`` and returns a ``torch.nn.Module``
that maps a batch ``(B, *input_shape)`` to logits ``(B, n_classes)``. ``input_shape`` is the
dataset's ``image_shape`` (channels, height, width) for image sets (digits, mnist,
fashion-mnist), so a CNN can be used, and ``(n_features,)`` otherwise.

Seeds. Seed s of an ensemble is the run with seed s: its module is built by the factory inside
``torch.random.fork_rng()`` after ``torch.manual_seed(s)``, and the generator state that building
leaves is that seed's own stream, used (and saved in checkpoints) for everything random in its
training steps (dropout modules); the process-wide generator is never changed. Seeds train one
after the other on the same minibatch positions of their own sample orders (shuffle.py), so an
ensemble's seed s equals a single run with seed s.

Training. Autograd and ``torch.optim`` (Adam, or SGD with ``train.momentum``), one optimiser per
seed. The loss is the mean cross-entropy; L2 (``train.l2``) applies to the weights, every
parameter with two or more dimensions (Linear and Conv kernels; biases and norm scales are
excluded, as Keras' kernel_regularizer), either as the loss term ``l2 * sum(W^2)``
(``train.l2_mode = "loss"``, what the built-in MLP does) or as decoupled weight decay
``W <- (1 - lr * l2) W`` before each optimiser update (``"weight_decay"``: AdamW's rule, Loshchilov
& Hutter 2019; for SGD it is SGDW). On the CPU the steps run on a fixed number of torch threads
(the cores less one, taken when the model is built), because convolutions sum in an order that
depends on the thread count: resuming then equals an uninterrupted run bit for bit.

Measuring. Snapshots run each seed's module in eval mode without grad; the layers measured are
those ``ibtui.Recorder`` picks by default (every Linear/Conv output and every activation module,
in the order the forward pass reaches them, each output flattened per sample), taken by forward
hooks. With ``info.measure_output`` the softmax of the logits is the last layer, and a hooked
output that *is* the model's output tensor (the final Linear's logits) is left out for it.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ibtui.engine.backend_torch import cpu_copy
from ibtui.engine.layer_hooks import LayerError, call_keys, capturing, choose_modules
from ibtui.errors import ConfigError

#: Samples per forward pass when measuring.
MEASURE_BATCH = 1024
#: Samples in the forward pass that checks the model while the run is prepared.
CHECK_BATCH = 2


class ModelFileError(ConfigError, ValueError):
    """A model file, its factory or the module it makes cannot be used (one sentence)."""


def split_factory(spec: str) -> tuple[Path, str]:
    """"path/to/file.py:make_model" -> (path, "make_model")."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise ModelFileError(f"a model is given as FILE.py:FUNCTION (e.g. models/cnn.py:make_model), not '{spec}'")
    return Path(path).expanduser(), name


def load_factory(spec: str) -> Callable[..., Any]:
    """Import the model file and return its factory function."""
    path, name = split_factory(spec)
    if not path.is_file():
        raise ModelFileError(f"the model file {path} does not exist")
    module_name = f"ibtui_model_{abs(hash(str(path.resolve())))}"
    try:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError("not a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
        writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ beside the user's file
        try:
            module_spec.loader.exec_module(module)
        finally:
            sys.dont_write_bytecode = writes_bytecode
    except Exception as exc:  # noqa: BLE001 - the user's file, any error: one sentence
        sys.modules.pop(module_name, None)
        raise ModelFileError(f"the model file {path} fails to load ({type(exc).__name__}: {exc})") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == module_name)
        has = f"; it defines: {', '.join(defined)}" if defined else ""
        raise ModelFileError(f"the model file {path} has no function {name}{has}")
    return factory


def _is_weight(param: torch.Tensor) -> bool:
    return param.ndim >= 2


class ModuleOptimizer:
    """One torch.optim optimiser per seed; decoupled weight decay when asked."""

    def __init__(self, modules: Sequence[nn.Module], kind: str, lr: float, momentum: float, decay: float):
        self.kind, self.lr, self.decay = kind, lr, decay
        self.inner = [torch.optim.Adam(m.parameters(), lr=lr) if kind == "adam"
                      else torch.optim.SGD(m.parameters(), lr=lr, momentum=momentum) for m in modules]
        self._weights = [[p for p in m.parameters() if _is_weight(p)] for m in modules]

    def step(self) -> None:
        for optimizer, weights in zip(self.inner, self._weights):
            if self.decay > 0 and weights:
                with torch.no_grad():
                    torch._foreach_mul_(weights, 1.0 - self.lr * self.decay)
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        # Copies on the CPU: a checkpoint may wait in the snapshot pipeline while training goes on,
        # and must load where there is no GPU.
        return {"kind": self.kind, "seeds": [cpu_copy(o.state_dict()) for o in self.inner]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind or len(state.get("seeds", ())) != len(self.inner):
            raise ValueError("optimizer state of another kind or for other seeds")
        for optimizer, seed_state in zip(self.inner, state["seeds"]):
            optimizer.load_state_dict(seed_state)


class ModuleEnsemble:
    """S modules from one factory, with the training contract of StackedMLP's backends:
    bind_data, shuffle, train_step, make_optimizer, measure, state/load_state, finite, and
    weights / weight_grads for the gradient statistics."""

    backend = "module"
    trains_many_steps = False

    def __init__(self, factory_spec: str, input_shape: tuple[int, ...], n_classes: int, seeds: Sequence[int],
                 device: torch.device, measure_output: bool = True):
        self.factory_spec = factory_spec
        self.input_shape = tuple(int(d) for d in input_shape)
        self.n_classes = n_classes
        self.n_seeds = len(seeds)
        self.device = device
        self.measure_output = measure_output
        self.threads = 1  # set by the trainer; unused: the step's thread count is fixed (see the docstring)
        self.step_threads = max(1, torch.get_num_threads() - 1)
        factory = load_factory(factory_spec)
        self.name = f"{split_factory(factory_spec)[0].name}:{split_factory(factory_spec)[1]}"
        self.modules: list[nn.Module] = []
        self.rng: list[torch.Tensor] = []
        self.cuda_rng: list[torch.Tensor | None] = []
        for seed in seeds:
            with self._fork():
                torch.manual_seed(seed)
                try:
                    module = factory(self.input_shape, n_classes)
                except Exception as exc:  # noqa: BLE001 - the user's code
                    raise ModelFileError(f"{self.name}({self.input_shape}, {n_classes}) fails "
                                         f"({type(exc).__name__}: {exc})") from None
                if not isinstance(module, nn.Module):
                    raise ModelFileError(f"{self.name} returned a {type(module).__name__}, not a torch.nn.Module")
                self.rng.append(torch.get_rng_state())
                self.cuda_rng.append(torch.cuda.get_rng_state(device) if device.type == "cuda" else None)
            self.modules.append(module.to(device))
        try:
            self._chosen = [choose_modules(m, None) for m in self.modules]
        except LayerError as exc:
            raise ModelFileError(str(exc).rstrip(".")) from None
        self._check()
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None
        self._perms: torch.Tensor | None = None

    def _fork(self):
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    # -- preparation ---------------------------------------------------------------------------

    def _check(self) -> None:
        """One forward pass on a tiny batch: the model fits the input shape, returns (B, C)
        logits, and its measured layers (names and widths) are known."""
        x = torch.zeros((CHECK_BATCH, *self.input_shape), device=self.device)
        try:
            logits, layers, keys = self._measured_pass(0, x)
        except ModelFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's model, any error
            raise ModelFileError(f"the model from {self.name} fails on inputs of shape {tuple(x.shape)} "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (CHECK_BATCH, self.n_classes):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ModelFileError(f"the model from {self.name} returns {shape} for inputs of shape {tuple(x.shape)}; "
                                 f"it must return logits of shape (batch, {self.n_classes})")
        if not keys and not self.measure_output:
            raise ModelFileError(f"the model from {self.name} has no Linear, Conv or activation module to measure")
        self.layer_keys = keys
        names = [f"{label} {type(module).__name__} {layer.shape[1]}" for (_, module, label), layer in zip(keys, layers)]
        widths = [int(layer.shape[1]) for layer in layers]
        if self.measure_output:
            names.append(f"out softmax {self.n_classes}")
            widths.append(self.n_classes)
        self.layer_names, self.layer_widths = tuple(names), tuple(widths)
        self.weights = [torch.stack([p.detach() for p in params]) for params in
                        zip(*[[p for p in m.parameters() if _is_weight(p)] for m in self.modules])]

    @torch.no_grad()
    def _measured_pass(self, seed: int, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list]:
        """Seed `seed`'s module on x in eval mode: its logits and the measured layers (B, width)."""
        module = self.modules[seed]
        # Each output is flattened and copied inside its hook, before a later in-place module
        # (nn.ReLU(inplace=True)) can overwrite it; the raw tensor is kept to recognise the logits.
        keep = lambda out: (out, out.reshape(out.shape[0], -1).float().clone())  # noqa: E731
        with capturing(module, self._chosen[seed], keep=keep) as captured, self._fork():
            logits = module(x)
        if self.measure_output:  # the softmax stands for the output layer
            captured = [c for c in captured if c[2][0] is not logits]
        keys = call_keys([(n, m) for n, m, _ in captured])
        return logits, [copy for _, _, (_, copy) in captured], keys

    # -- training --------------------------------------------------------------------------------

    def make_optimizer(self, kind: str, lr: float, momentum: float = 0.0, decay: float = 0.0) -> ModuleOptimizer:
        return ModuleOptimizer(self.modules, kind, lr, momentum, decay)

    def bind_data(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The training set: x (N, features) as (N, *input_shape), integer labels y (N,)."""
        self._x = x.float().reshape(len(x), *self.input_shape).to(self.device)
        self._y = y.to(self.device)
        self._perms = None

    def shuffle(self, perms: torch.Tensor) -> None:
        """One epoch: perms (S, N) is each seed's order of the training samples."""
        if self._x is None:
            raise RuntimeError("bind_data() before shuffle()")
        self._perms = perms.to(self.device)

    def train_step(self, start: int, stop: int, l2: float, want_loss: bool) -> torch.Tensor | None:
        """For every seed, the gradient of mean cross-entropy (+ l2 * sum(W^2) when l2 > 0) on
        samples [start, stop) of its order into the parameters' .grad. Returns the per-seed
        cross-entropy (S,) when asked."""
        if self._perms is None:
            raise RuntimeError("shuffle() before train_step()")
        if self.device.type == "cpu" and torch.get_num_threads() != self.step_threads:
            torch.set_num_threads(self.step_threads)
        losses = []
        for s, module in enumerate(self.modules):
            idx = self._perms[s, start:stop]
            with self._fork():
                torch.set_rng_state(self.rng[s])
                if self.cuda_rng[s] is not None:
                    torch.cuda.set_rng_state(self.cuda_rng[s], self.device)
                module.train()
                module.zero_grad(set_to_none=False)
                ce = F.cross_entropy(module(self._x[idx]), self._y[idx])
                loss = ce
                if l2 > 0:
                    loss = loss + l2 * sum(p.square().sum() for p in module.parameters() if _is_weight(p))
                loss.backward()
                self.rng[s] = torch.get_rng_state()
                if self.cuda_rng[s] is not None:
                    self.cuda_rng[s] = torch.cuda.get_rng_state(self.device)
            losses.append(ce.detach())
        return torch.stack(losses).float().cpu() if want_loss else None

    @property
    def weight_grads(self) -> list[torch.Tensor]:
        """Per weight parameter, the seeds' gradients stacked (S, *shape)."""
        per_seed = [[p.grad if p.grad is not None else torch.zeros_like(p) for p in m.parameters() if _is_weight(p)]
                    for m in self.modules]
        return [torch.stack(grads) for grads in zip(*per_seed)]

    def finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for m in self.modules for p in m.parameters())

    # -- measuring -------------------------------------------------------------------------------

    @torch.no_grad()
    def measure(self, x: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (N, features): logits (S, N, C) on every sample and each measured layer's
        activations (S, len(keep), width) on the samples `keep` (the MI set)."""
        x = x.reshape(len(x), *self.input_shape)
        everything = len(keep) == len(x) and bool((keep == torch.arange(len(x), device=keep.device)).all())
        all_logits, all_layers = [], []
        for s in range(self.n_seeds):
            logits, layers = [], []
            for begin in range(0, len(x), MEASURE_BATCH):
                out, hidden, _ = self._measured_pass(s, x[begin:begin + MEASURE_BATCH])
                logits.append(out.float())
                if everything:
                    layers.append(hidden)
            if not everything:
                for begin in range(0, len(keep), MEASURE_BATCH):
                    layers.append(self._measured_pass(s, x[keep[begin:begin + MEASURE_BATCH]])[1])
            all_logits.append(torch.cat(logits))
            all_layers.append([torch.cat(parts) for parts in zip(*layers)] if layers else [])
        return torch.stack(all_logits), [torch.stack(per_layer) for per_layer in zip(*all_layers)]

    # -- state -----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"backend": self.backend, "factory": self.name,
                "modules": [cpu_copy(m.state_dict()) for m in self.modules],
                "rng": [r.clone() for r in self.rng],
                "cuda_rng": [None if r is None else r.cpu().clone() for r in self.cuda_rng]}

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("backend") != self.backend or len(state.get("modules", ())) != self.n_seeds:
            raise ConfigError("the checkpoint's network does not match the run's configuration")
        for module, module_state in zip(self.modules, state["modules"]):
            try:
                module.load_state_dict(module_state)
            except RuntimeError:  # torch lists every key, over many lines
                raise ConfigError(f"the checkpoint's network does not match the module {self.name} makes now "
                                  "(was the model file changed?)") from None
        self.rng = [r.clone() for r in state["rng"]]
        if self.device.type == "cuda":
            self.cuda_rng = [torch.cuda.get_rng_state(self.device) if r is None else r.clone() for r in state["cuda_rng"]]


def input_shape(image_shape: tuple[int, ...] | None, n_features: int) -> tuple[int, ...]:
    """What the factory gets: the image shape of an image set, else (n_features,)."""
    if image_shape is not None and math.prod(image_shape) == n_features:
        return tuple(image_shape)
    return (n_features,)
