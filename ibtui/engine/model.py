"""Which training backend a run gets: one per device.

- "compiled" (CPU): step_cpu.py's numba kernels, the whole step of every seed in one call.
- "torch" (CUDA; and the CPU's fallback when the compiled kernels cannot load, with one
  RuntimeWarning): backend_torch.py.

Both share StackedMLP's parameters, forward pass and state (mlp.py), so snapshots, checkpoints
and the optimiser state look the same whichever trained.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from ibtui.config import ModelConfig
from ibtui.engine.mlp import StackedMLP
from ibtui.errors import ConfigError, unknown_name

BACKENDS = ("auto", "compiled", "torch")


def compiled_available() -> bool:
    """Whether the compiled kernels load here (numba imports and compiles); warns once if not."""
    try:
        from ibtui.engine import step_cpu  # noqa: F401
    except ImportError as error:  # numba missing or broken on this platform
        warnings.warn(f"the compiled training step is unavailable ({error}); training with torch, much slower",
                      RuntimeWarning, stacklevel=3)
        return False
    return True


def stacked_mlp(n_inputs: int, n_outputs: int, config: ModelConfig, seeds: Sequence[int], device: torch.device,
                backend: str = "auto") -> StackedMLP:
    """S = len(seeds) networks of widths [n_inputs, *config.hidden, n_outputs] on `device`, with
    the training step of `backend` ("auto": compiled on the CPU where it loads, else torch)."""
    if backend not in BACKENDS:
        raise ConfigError(unknown_name("backend", backend, BACKENDS))
    if backend == "auto":
        backend = "compiled" if device.type == "cpu" and compiled_available() else "torch"
    if backend == "compiled":
        if device.type != "cpu":
            raise ConfigError("the compiled training step runs on the CPU only")
        from ibtui.engine.backend_cpu import CompiledMLP

        return CompiledMLP(n_inputs, n_outputs, config, seeds, device)
    from ibtui.engine.backend_torch import TorchMLP

    return TorchMLP(n_inputs, n_outputs, config, seeds, device)


def module_ensemble(factory: str, image_shape: tuple[int, ...] | None, n_features: int, n_classes: int,
                    seeds: Sequence[int], device: torch.device, measure_output: bool = True):
    """S = len(seeds) modules made by the factory of a model file ("file.py:make_model"), trained
    with autograd and torch.optim on any device (backend_module.py). Image sets give the
    factory their image shape, so a CNN can be used."""
    from ibtui.engine.backend_module import ModuleEnsemble, input_shape

    return ModuleEnsemble(factory, input_shape(image_shape, n_features), n_classes, seeds, device, measure_output)
