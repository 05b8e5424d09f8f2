"""Any PyTorch model in ibtui's own trainer (model.factory / --model FILE.py:make_model), and the
command-line knobs that came with it (--label-noise, --measure-on, --optimizer, --momentum,
--l2-mode, --snapshots, --mi-samples, --data-dir)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ibtui.config import RunConfig, load_toml, what_ran
from ibtui.engine.backend_module import ModelFileError
from ibtui.engine.control import RunControl
from ibtui.engine.events import Progress, RunStarted, Snapshot
from ibtui.engine.optim import FlatSGD
from ibtui.engine.trainer import Trainer
from ibtui.errors import ConfigError
from ibtui.runs.runner import execute, prepare_resume, prepare_run
from ibtui.runs.store import load_run

from helpers import REPO, run_cli, snapshot_lines_without_timing, tiny_config

TINY_MODEL = """
from torch import nn

def make_model(input_shape, n_classes):
    (features,) = input_shape
    return nn.Sequential(nn.Linear(features, 6), nn.Tanh(), nn.Dropout(0.2), nn.Linear(6, 4), nn.ReLU(),
                         nn.Linear(4, n_classes))

def not_a_module(input_shape, n_classes):
    return [1, 2, 3]

def wrong_width(input_shape, n_classes):
    return nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, n_classes))

def wrong_output(input_shape, n_classes):
    return nn.Sequential(nn.Linear(input_shape[0], 3), nn.ReLU())

def raises(input_shape, n_classes):
    raise ValueError("no such architecture")
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "tiny_model.py"
    path.write_text(TINY_MODEL)
    return path


def own_config(model_file, function="make_model", **overrides) -> RunConfig:
    """A few epochs of the tiny module on the 12-bit task, MI on the 819 test inputs."""
    base = {"model.factory": f"{model_file}:{function}", "train.epochs": 6, "info.every": 2,
            "info.checkpoint_every": 1, "train.batch_size": 512, "train.lr": 0.01}
    base.update(overrides)
    return tiny_config(**base)


class StopAfter:
    """Ask the run to stop after n Progress events (one per epoch): the stop lands at epoch n + 1."""

    def __init__(self, control, n):
        self.control, self.n, self.seen = control, n, 0

    def __call__(self, event):
        if isinstance(event, Progress):
            self.seen += 1
            if self.seen == self.n:
                self.control.request_stop()


def test_a_tiny_module_trains_end_to_end(model_file, tmp_path, monkeypatch):
    from ibtui.engine import trainer as train
    from ibtui.export.png import export_run

    monkeypatch.setattr(train, "PROGRESS_INTERVAL_S", 0.0)
    rng_before = torch.get_rng_state()
    events = []
    outcome = execute(*prepare_run(own_config(model_file, **{"train.epochs": 20, "info.every": 5}), tmp_path / "run"),
                      [events.append])
    assert outcome.status == "finished"
    assert torch.equal(torch.get_rng_state(), rng_before)  # the process-wide generator is untouched
    started = events[0]
    assert isinstance(started, RunStarted)
    # every Linear output and activation (the Dropout is neither); the final Linear is the softmax's
    assert started.layer_names == ("0 Linear 6", "1 Tanh 6", "3 Linear 4", "4 ReLU 4", "out softmax 2")
    assert started.layer_widths == (6, 6, 4, 4, 2)
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    assert [s.epoch for s in snapshots] == [0, 5, 10, 15, 20]
    for snapshot in snapshots:
        assert len(snapshot.mi["kde_upper"][0]) == 5
        for ixt, ity in snapshot.mi["binning"][0]:
            assert 0 <= ixt <= math.log2(819) + 1e-9 and 0 <= ity <= 1 + 1e-9
    assert snapshots[1].grad is not None and len(snapshots[1].grad["mean"][0]) == 3  # three weight matrices
    assert snapshots[-1].train_loss[0] < snapshots[0].train_loss[0] - 0.05
    record = load_run(tmp_path / "run")
    assert record.summary["status"] == "finished" and len(record.snapshots) == 5
    figures = export_run(tmp_path / "run")
    assert {f.name for f in figures} >= {"info_plane.png", "loss.png"}
    assert all(f.stat().st_size > 1000 for f in figures)


@pytest.mark.parametrize("stop_after", [1, 3])
def test_resume_after_a_stop_equals_the_uninterrupted_run(model_file, tmp_path, monkeypatch, stop_after):
    from ibtui.engine import trainer as train

    monkeypatch.setattr(train, "PROGRESS_INTERVAL_S", 0.0)
    # dropout (its generator state travels in the checkpoint), SGD with momentum (its buffer too)
    config = own_config(model_file, **{"train.optimizer": "sgd", "train.momentum": 0.9, "train.batch_size": 256})
    execute(*prepare_run(config, tmp_path / "whole"))
    control = RunControl()
    outcome = execute(*prepare_run(config, tmp_path / "cut"), [StopAfter(control, stop_after)], control)
    assert outcome.status == "interrupted" and outcome.epoch == stop_after
    resumed = execute(*prepare_resume(tmp_path / "cut"))
    assert resumed.status == "finished"
    cut = snapshot_lines_without_timing(tmp_path / "cut" / "snapshots.jsonl")
    assert cut == snapshot_lines_without_timing(tmp_path / "whole" / "snapshots.jsonl") and len(cut) == 4


def test_resume_refuses_a_changed_model_file_in_one_sentence(model_file, tmp_path):
    from ibtui.errors import StoreError

    config = own_config(model_file, **{"train.epochs": 2})
    execute(*prepare_run(config, tmp_path / "run"))
    model_file.write_text(TINY_MODEL.replace("nn.Linear(features, 6), nn.Tanh(), nn.Dropout(0.2), nn.Linear(6, 4)",
                                             "nn.Linear(features, 5), nn.Tanh(), nn.Dropout(0.2), nn.Linear(5, 4)"))
    (tmp_path / "run" / "summary.json").write_text(
        (tmp_path / "run" / "summary.json").read_text().replace('"status": "finished"', '"status": "interrupted"'))
    with pytest.raises(StoreError, match="was the model file changed") as caught:
        prepare_resume(tmp_path / "run")
    assert "\n" not in str(caught.value)


def test_ensemble_seed_equals_the_single_run_with_that_seed(model_file, tmp_path):
    def snapshots(config):
        return [e for e in Trainer(config).run() if isinstance(e, Snapshot)]

    ensemble = snapshots(own_config(model_file, **{"train.seeds": 2, "train.l2": 1e-3}))
    single = snapshots(own_config(model_file, **{"train.seed": 1, "train.l2": 1e-3}))
    assert len(ensemble) == len(single) == 4
    for both, one in zip(ensemble, single):
        assert both.train_loss[1] == one.train_loss[0] and both.test_acc[1] == one.test_acc[0]
        assert both.mi["kde_upper"][1] == one.mi["kde_upper"][0]
        assert both.mi["binning"][1] == one.mi["binning"][0]
    assert ensemble[-1].train_loss[0] != ensemble[-1].train_loss[1]  # the seeds are different networks


def test_weight_decay_is_decoupled_and_l2_as_loss_is_not():
    from torch import nn

    from ibtui.engine.backend_module import ModuleOptimizer

    def one_step(decay: float, loss_l2: float):
        torch.manual_seed(0)
        module = nn.Linear(3, 2)
        w0, b0 = module.weight.detach().clone(), module.bias.detach().clone()
        optimizer = ModuleOptimizer([module], "sgd", lr=0.1, momentum=0.0, decay=decay)
        module.zero_grad()
        loss = module(torch.ones(1, 3)).sum() + loss_l2 * module.weight.square().sum()
        loss.backward()
        grad_w, grad_b = module.weight.grad.clone(), module.bias.grad.clone()
        optimizer.step()
        return w0, b0, grad_w, grad_b, module

    w0, b0, g, gb, module = one_step(decay=0.5, loss_l2=0.0)
    assert torch.allclose(module.weight, (1 - 0.1 * 0.5) * w0 - 0.1 * g)
    assert torch.allclose(module.bias, b0 - 0.1 * gb)  # biases are not decayed
    w0, _, g, _, module = one_step(decay=0.0, loss_l2=0.5)
    assert torch.allclose(g, torch.ones(2, 3) + 2 * 0.5 * w0)  # the loss term's gradient 2 l2 W
    assert torch.allclose(module.weight, w0 - 0.1 * g)


def test_the_mlp_sgd_momentum_is_torch_sgd():
    param = torch.randn(50)
    grad = torch.zeros(50)
    reference = torch.nn.Parameter(param.clone())
    torch_sgd = torch.optim.SGD([reference], lr=0.05, momentum=0.9)
    flat = FlatSGD(param, grad, lr=0.05, momentum=0.9)
    assert not flat.in_kernel
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        g = torch.randn(50, generator=generator)
        grad.copy_(g)
        reference.grad = g.clone()
        flat.step()
        torch_sgd.step()
    assert torch.equal(param, reference.detach())
    again = FlatSGD(torch.zeros(50), torch.zeros(50), lr=0.05, momentum=0.9)
    again.load_state_dict(flat.state_dict())
    assert torch.equal(again.buffer, flat.buffer)


def test_the_mlp_trains_with_sgd_momentum(tmp_path):
    events = list(Trainer(tiny_config(**{"train.optimizer": "sgd", "train.momentum": 0.9, "train.lr": 0.05,
                                         "train.epochs": 4})).run())
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    assert len(snapshots) == 3 and all(math.isfinite(s.train_loss[0]) for s in snapshots)


@pytest.mark.parametrize(("function", "file", "words"), [
    ("make_model", "missing.py", "does not exist"),
    ("make_modle", None, "has no function make_modle; it defines: make_model, not_a_module"),
    ("not_a_module", None, "returned a list, not a torch.nn.Module"),
    ("raises", None, "fails (ValueError: no such architecture)"),
    ("wrong_width", None, "fails on inputs of shape (2, 12)"),
    ("wrong_output", None, "returns (2, 3) for inputs of shape (2, 12); it must return logits of shape (batch, 2)"),
])
def test_a_bad_model_is_one_sentence_before_anything_is_written(model_file, tmp_path, function, file, words):
    path = tmp_path / file if file else model_file
    with pytest.raises(ModelFileError) as caught:
        prepare_run(own_config(path, function), tmp_path / "run")
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_bad_model_on_the_command_line_exits_2(model_file, tmp_path):
    result = run_cli("run", "--model", f"{model_file}:not_a_module", "--epochs", "2", "--out", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    assert "returned a list, not a torch.nn.Module" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_config_checks_and_titles(model_file, tmp_path):
    base = tiny_config()
    for overrides, words in [
        ({"train.momentum": 0.9}, "train.momentum applies to SGD"),
        ({"train.optimizer": "sgd", "train.momentum": 1.0}, "train.momentum must be in [0, 1)"),
        ({"train.l2_mode": "weight_decay"}, "needs a model file"),
        ({"train.l2_mode": "decay"}, "unknown L2 mode 'decay'"),
        ({"model.factory": "model.py"}, "FILE.py:FUNCTION"),
        ({"model.factory": f"{model_file}:make_model", "model.dropout": 0.5}, "put dropout in the model file"),
    ]:
        with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            base.with_overrides(overrides)
    config = base.with_overrides({"model.factory": f"{model_file}:make_model", "train.optimizer": "sgd",
                                  "train.momentum": 0.9, "train.l2": 1e-3, "train.l2_mode": "weight_decay"})
    assert what_ran(config, "mine") == ["mine", "model tiny_model.py:make_model", "SGD momentum 0.9",
                                        "weight decay 1e-3", "MI on test set"]
    assert what_ran(tiny_config(**{"train.l2": 0.01, "info.on": "all"}), "tanh") == ["tanh", "hidden 6-4-3", "L2 0.01"]


def test_a_relative_model_path_in_a_toml_file_is_relative_to_that_file(model_file, tmp_path):
    (tmp_path / "mine.toml").write_text('name = "mine"\n[model]\nfactory = "tiny_model.py:make_model"\n')
    config = load_toml(tmp_path / "mine.toml")
    assert config.model.factory == f"{model_file.resolve()}:make_model"
    # and config.toml in a run directory reads back the same absolute path
    assert load_toml(_written(config, tmp_path)).model.factory == config.model.factory


def _written(config, tmp_path):
    path = tmp_path / "written" / "config.toml"
    path.parent.mkdir()
    path.write_text(config.to_toml())
    return path


def test_the_command_line_knobs_reach_the_config(model_file, monkeypatch, tmp_path):
    from ibtui.cli.common import build_config

    monkeypatch.chdir(tmp_path)
    config = build_config("tanh", model="tiny_model.py:make_model", label_noise=0.25, measure_on="test",
                          optimizer="sgd", momentum=0.5, l2_mode="weight_decay", snapshots=30, mi_samples=500)
    assert config.model.factory == f"{model_file.resolve()}:make_model"
    assert (config.data.label_noise, config.info.on, config.train.optimizer, config.train.momentum) == (0.25, "test", "sgd", 0.5)
    assert (config.train.l2_mode, config.info.schedule, config.info.snapshots, config.data.mi_samples) == ("weight_decay", "log", 30, 500)
    config = build_config("mnist-relu", data_dir=tmp_path)
    assert config.data.data_dir == str(tmp_path.resolve())


@pytest.mark.slow
def test_the_digits_cnn_preset_runs_end_to_end(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from helpers import call_main

    preset = load_toml(REPO / "presets" / "digits-cnn.toml")
    assert preset.model.factory == f"{(REPO / 'presets' / 'models' / 'digits_cnn.py').resolve()}:make_model"
    out = tmp_path / "cnn"
    code, text = call_main("run", "--preset", "digits-cnn", "--epochs", "3", "--snapshots", "3", "--mi-samples", "300",
                           "--device", "cpu", "--out", str(out), "--quiet", capsys=capsys)
    assert code == 0, text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["n_mi_samples"] == 300
    assert summary["layers"] == ["0 Conv2d 512", "1 ReLU 512", "3 Conv2d 256", "4 ReLU 256", "7 Linear 32", "8 ReLU 32",
                                 "out softmax 10"]
    lines = (out / "snapshots.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 3]  # 3 log-spaced epochs of 3, and epoch 0
    assert (out / "info_plane.png").stat().st_size > 1000


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_module_trains_on_cuda(model_file, tmp_path):
    events = list(Trainer(own_config(model_file, **{"train.device": "cuda", "train.seeds": 2})).run())
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    assert events[-1].status == "finished" and len(snapshots) == 4
    assert all(math.isfinite(loss) for s in snapshots for loss in s.train_loss)
