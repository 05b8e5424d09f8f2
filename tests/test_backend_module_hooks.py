"""ibtui's trainer measuring a model file's layers: outputs as they were, before any in-place
module of the same pass changed them."""

from __future__ import annotations

import torch

from ibtui.engine.backend_module import ModuleEnsemble

IN_PLACE_MODEL = """
from torch import nn

def make_model(input_shape, n_classes):
    return nn.Sequential(nn.Linear(input_shape[0], 8), nn.ReLU(inplace=True), nn.Linear(8, n_classes))
"""


def test_an_in_place_activation_does_not_overwrite_the_measured_linear(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(IN_PLACE_MODEL)
    torch.manual_seed(0)
    ensemble = ModuleEnsemble(f"{path}:make_model", (5,), 3, [0], torch.device("cpu"), measure_output=True)
    x = torch.randn(64, 5)
    logits, layers = ensemble.measure(x, torch.arange(64))
    assert ensemble.layer_names == ("0 Linear 8", "1 ReLU 8", "out softmax 3")
    linear, relu = layers[0][0], layers[1][0]
    assert (linear < 0).any()  # the ReLU wrote into this tensor after the Linear's hook ran
    assert torch.equal(torch.clamp(linear, min=0), relu)
    assert logits.shape == (1, 64, 3)
