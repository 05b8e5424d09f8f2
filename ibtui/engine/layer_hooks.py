"""Which modules of any PyTorch model are measured, and their outputs captured by forward hooks.

Shared by the recorder (a user's own loop) and backend_module (a model file in ibtui's trainer),
so both measure the same layers under the same names.

- ``choose_modules(model, layers)``: ``layers=None`` means every Linear and Conv module and every
  activation module (``ACTIVATION_NAMES``), in ``named_modules()`` order; otherwise module names
  as in ``model.named_modules()`` or the modules themselves. Bad choices raise ``LayerError``
  (a ``ValueError`` with one sentence naming what the model has).
- ``capturing(model, chosen)``: a context manager that puts the model in eval mode, hooks the
  chosen modules and yields the list their outputs are appended to, as ``(name, module,
  tensor)`` in call order; on exit the hooks are removed and every module's train/eval flag is
  restored, so the hooks exist only for the passes inside the block.
- ``call_keys(calls)``: a module called twice in one forward pass (one ``nn.ReLU`` reused) gives
  one layer per call, labelled "act" and "act#2". Activations applied as functions (``F.relu``)
  are not modules and are not seen; the Linear/Conv before them is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ibtui.errors import IbtuiError

LINEAR_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Activation modules measured by default; those ibtui's config can name map to that name.
ACTIVATION_NAMES: dict[type[nn.Module], str | None] = {
    nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Softsign: "softsign",
    nn.Softplus: "softplus", nn.ELU: "elu", nn.GELU: "gelu", nn.Hardtanh: "hard-tanh",
    nn.LeakyReLU: None, nn.ReLU6: None, nn.SiLU: None, nn.Mish: None, nn.PReLU: None,
    nn.SELU: None, nn.CELU: None, nn.Softmax: None, nn.LogSoftmax: None,
}
#: Module names listed in a "no such layer" message.
SHOWN_NAMES = 60

#: (name, module, output) per hooked call, in call order.
Captured = list[tuple[str, nn.Module, Any]]  # (name, module, output or keep(output))


class LayerError(IbtuiError, ValueError):
    """The layers to measure cannot be chosen as asked (one sentence)."""


def choose_modules(model: nn.Module, layers: Any = None) -> list[tuple[str, nn.Module]]:
    """(name, module) of each module to measure; see the module docstring for ``layers``."""
    named = list(model.named_modules())
    if layers is None:
        chosen = [(n, m) for n, m in named if n and (isinstance(m, LINEAR_TYPES) or type(m) in ACTIVATION_NAMES)]
        if not chosen:
            raise LayerError(f"{type(model).__name__} has no Linear, Conv or activation module to measure; "
                             "name the modules to measure with layers=[...].")
        return chosen
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    by_name = dict(named)
    by_id = {id(m): n for n, m in named}
    chosen = []
    for item in layers:
        if isinstance(item, str):
            if item not in by_name or not item:
                shown = [n for n, _ in named if n][:SHOWN_NAMES]
                more = f", ... ({len(named) - 1 - len(shown)} more)" if len(named) - 1 > len(shown) else ""
                raise LayerError(f"{type(model).__name__} has no module named '{item}'; "
                                 f"it has: {', '.join(shown)}{more}.")
            chosen.append((item, by_name[item]))
        elif isinstance(item, nn.Module):
            if id(item) not in by_id:
                raise LayerError(f"the {type(item).__name__} given in layers is not part of the model.")
            chosen.append((by_id[id(item)] or type(item).__name__, item))
        else:
            raise LayerError(f"layers must hold module names or modules, not {type(item).__name__}.")
    if len({id(m) for _, m in chosen}) != len(chosen):
        raise LayerError("layers names one module twice.")
    return chosen


@contextmanager
def capturing(model: nn.Module, chosen: list[tuple[str, nn.Module]],
              keep: Callable[[torch.Tensor], Any] | None = None) -> Iterator[Captured]:
    """Eval mode and hooks on ``chosen`` for the passes inside the block; yields the list each
    hooked call's tensor output is appended to, as ``keep(output)`` when given. ``keep`` runs
    inside the hook, before any later module of the pass can change the output in place."""
    captured: Captured = []

    def hook(name: str):
        def record(module: nn.Module, args: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                captured.append((name, module, output if keep is None else keep(output)))
        return record

    flags = [(m, m.training) for m in model.modules()]
    handles = [module.register_forward_hook(hook(name)) for name, module in chosen]
    try:
        model.eval()
        yield captured
    finally:
        for handle in handles:
            handle.remove()
        for module, training in flags:
            module.training = training


def call_keys(calls: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module, str]]:
    """(name, module, label) per hooked call, the k-th call of one module labelled 'name#k'."""
    seen: Counter[str] = Counter()
    keys = []
    for name, module in calls:
        seen[name] += 1
        keys.append((name, module, name if seen[name] == 1 else f"{name}#{seen[name]}"))
    return keys


def main_activation(modules: list[nn.Module]) -> str:
    """The ibtui name of the most used activation module among ``modules``; "linear" if none."""
    names = Counter(ACTIVATION_NAMES.get(type(m)) for m in modules)
    names.pop(None, None)
    return names.most_common(1)[0][0] if names else "linear"
