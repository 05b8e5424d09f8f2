"""Tests for ibtui.Recorder: a user's own model and loop recorded into an ordinary run directory."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

import ibtui
from ibtui import estimators
from ibtui.config import load_toml
from ibtui.engine.processes import _main_hidden
from ibtui.recorder import Recorder, RecorderError
from ibtui.runs.analysis import analyse_run
from ibtui.runs.record import load_run
from tests.helpers import REPO, call_main


def probe_set(n: int = 120, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Four blobs of 1x6x6 'images', n samples, labels 0..3 in turn."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 1, 6, 6, generator=g) * 0.3 + y.view(-1, 1, 1, 1).float()
    return x, y


def small_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2),  # 2 x 3 x 3 = 18
        nn.Flatten(), nn.Linear(18, 6), nn.ReLU(), nn.Linear(6, 4),
    )


def train_epoch(model, optimizer, x, y) -> float:
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def manual_plane(model, x, y, modules, info) -> dict:
    """What the recorder should have measured: the modules' outputs computed by hand."""
    outputs = []
    hooks = [m.register_forward_hook(lambda mod, a, out: outputs.append(out.reshape(len(x), -1).float())) for m in modules]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return estimators.estimate_info_plane([o.numpy()[None] for o in outputs], y.numpy(), info)


@pytest.mark.slow
def test_a_small_cnn_recorded_end_to_end_is_an_ordinary_run(tmp_path, capsys):
    x, y = probe_set()
    model = small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    model[1].eval()  # a submodule the user keeps in eval mode must stay so
    out = tmp_path / "mine"
    taken = []
    with Recorder(model, inputs=x, labels=y, out=out, epochs=3, processes=1) as rec:
        for epoch in range(3):
            loss = train_epoch(model, optimizer, x, y)
            taken.append(rec.epoch_end(epoch, train_loss=loss, test_acc=torch.tensor(0.5)))
    assert taken == [True, True, True]
    # the hooks are gone and the train/eval flags are as the user left them
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training and model[0].training and not model[1].training

    record = load_run(out)
    assert record.summary["status"] == "finished"
    assert [s.epoch for s in record.snapshots] == [0, 1, 2, 3]
    # every Linear/Conv output and activation, in forward order; pooling and flatten are not measured
    assert record.config.model.layers == ("0", "1", "4", "5", "6")
    assert record.config.model.hidden == (72, 72, 6, 6, 4)
    assert record.config.model.activation in ("tanh", "relu")
    assert record.config.data.name == "recorded"
    assert record.summary["layers"][:2] == ["0 Conv2d 72", "1 Tanh 72"] and record.summary["n_mi_samples"] == 120
    first, last = record.snapshots[0], record.snapshots[-1]
    assert math.isnan(first.train_loss[0]) and math.isnan(first.test_acc[0])
    assert last.train_loss[0] == pytest.approx(loss) and last.test_acc[0] == 0.5
    assert math.isnan(last.test_loss[0])
    for snap in record.snapshots:
        assert set(snap.mi) == {"kde_upper", "binning"}
        assert len(snap.mi["kde_upper"][0]) == 5
    # the numbers are the estimates of the modules' outputs at the last epoch, made in the process
    expected = manual_plane(model, x, y, [model[i] for i in (0, 1, 4, 5, 6)], record.config.info)
    for name in ("kde_upper", "binning"):
        np.testing.assert_allclose(np.array(last.mi[name]), np.array(expected[name]), rtol=1e-6, atol=1e-9)
    # what report, export and the analysis read
    assert (out / "info_plane.png").stat().st_size > 0 and (out / "loss.png").exists()
    assert "error" not in record.summary["analysis"]
    assert analyse_run(record) == record.summary["analysis"]
    code, text = call_main("report", str(out), capsys=capsys)
    assert code == 0 and "Traceback" not in text, text


def test_only_scheduled_epochs_are_measured_and_an_early_end_is_interrupted(tmp_path):
    x, y = probe_set(40)
    model = small_cnn()
    with Recorder(model, x, y, tmp_path / "r", layers=["4"], epochs=30, processes=0, png=False) as rec:
        taken = [rec.epoch_end(e) for e in range(25)]
    # Saxe's schedule over 30 epochs: 0..19, 20, 25, 30
    assert [e + 1 for e, t in enumerate(taken) if t] == [*range(1, 21), 25]
    record = load_run(tmp_path / "r")
    assert [s.epoch for s in record.snapshots] == [*range(21), 25]
    assert record.summary["status"] == "interrupted" and record.summary["epoch"] == 25
    assert record.config.model.layers == ("4",)


def test_an_exception_in_the_block_marks_the_run_failed_and_keeps_the_snapshots(tmp_path):
    x, y = probe_set(40)
    model = small_cnn()
    with pytest.raises(ZeroDivisionError), \
            Recorder(model, x, y, tmp_path / "r", layers=[model[4], model[6]], epochs=10, processes=0, png=False) as rec:
        rec.epoch_end(0, train_loss=1.0)
        rec.epoch_end(1, train_loss=0.9)
        raise ZeroDivisionError("the user's loop fails")
    record = load_run(tmp_path / "r")
    assert record.summary["status"] == "failed"
    assert "ZeroDivisionError" in record.summary["reason"]
    assert [s.epoch for s in record.snapshots] == [0, 1, 2]
    assert record.snapshots[2].train_loss == [0.9]


def test_a_module_called_twice_is_two_layers(tmp_path):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.act = nn.Linear(36, 5), nn.Linear(5, 4), nn.Tanh()

        def forward(self, x):
            return self.act(self.b(self.act(self.a(x.flatten(1)))))

    x, y = probe_set(40)
    with Recorder(Twice(), x, y, tmp_path / "r", epochs=1, processes=0, png=False) as rec:
        rec.epoch_end(0)
    assert rec.layer_names == ("a", "act", "b", "act#2")
    assert load_run(tmp_path / "r").config.model.hidden == (5, 5, 4, 4)


def test_a_large_probe_set_is_measured_on_a_stratified_subset(tmp_path):
    x, y = probe_set(120)
    with Recorder(small_cnn(), x, y, tmp_path / "r", layers=["6"], epochs=1, mi_samples=40,
                  mi_subset_seed=3, processes=0, png=False) as rec:
        rec.epoch_end(0)
    record = load_run(tmp_path / "r")
    assert record.summary["n_mi_samples"] == 40
    assert record.config.data.mi_samples == 40 and record.config.data.mi_subset_seed == 3
    assert np.bincount(rec.mi_labels).tolist() == [10, 10, 10, 10]


@pytest.mark.parametrize("kwargs, match", [
    ({"layers": ["4", "fc9"]}, r"has no module named 'fc9'; it has: 0, 1, 2, 3, 4, 5, 6\."),
    ({"labels": torch.arange(39) % 4}, r"40 inputs but 39 labels"),
    ({"labels": torch.rand(40)}, r"integer class labels"),
    ({"estimators": ("kde_uper",)}, r"did you mean 'kde_upper'"),
    ({"epochs": 0}, r"epochs must be"),
    ({"layers": [nn.Linear(2, 2)]}, r"not part of the model"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, kwargs, match):
    x, y = probe_set(40)
    args = {"inputs": x, "labels": y, "out": tmp_path / "r", "epochs": 5, "processes": 0, **kwargs}
    with pytest.raises(RecorderError, match=match) as err, Recorder(small_cnn(), **args):
        pass
    assert isinstance(err.value, ValueError) and isinstance(err.value, ibtui.errors.IbtuiError)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "r").exists()


def test_a_model_that_fails_on_the_probe_inputs_is_one_sentence(tmp_path):
    x, y = probe_set(40)
    with pytest.raises(RecorderError, match=r"Sequential fails on the probe inputs \(RuntimeError"), \
            Recorder(small_cnn(), x.flatten(1), y, tmp_path / "r", epochs=2, processes=0):
        pass
    assert not (tmp_path / "r").exists()


def test_a_directory_holding_another_run_is_refused_and_left_alone(tmp_path):
    x, y = probe_set(40)
    with Recorder(small_cnn(), x, y, tmp_path / "r", layers="6", epochs=1, processes=0, png=False) as rec:
        rec.epoch_end(0)
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    with pytest.raises(RecorderError, match="holds another run"):
        Recorder(small_cnn(), x, y, tmp_path / "r", epochs=1)
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before


def test_epochs_must_increase(tmp_path):
    x, y = probe_set(40)
    with pytest.raises(RecorderError, match="epochs must increase"), \
            Recorder(small_cnn(), x, y, tmp_path / "r", layers="6", epochs=5, processes=0, png=False) as rec:
        rec.epoch_end(2)
        rec.epoch_end(1)
    assert load_run(tmp_path / "r").summary["status"] == "failed"


def test_the_recorded_config_reads_back_and_cannot_be_trained(tmp_path):
    from ibtui.data import load_dataset
    from ibtui.errors import DataError

    x, y = probe_set(40)
    with Recorder(small_cnn(), x, y, tmp_path / "r", layers="6", epochs=1, processes=0, png=False,
                  train={"optimizer": "sgd", "lr": 0.1}) as rec:
        rec.epoch_end(0)
    config = load_toml(tmp_path / "r" / "config.toml")
    assert config.train.optimizer == "sgd" and config.train.lr == 0.1
    assert "(lr, optimizer)" in config.description
    with pytest.raises(DataError, match="recorded run's data lives in the script"):
        load_dataset(config.data.name)


def test_main_is_hidden_from_spawned_processes_and_restored():
    main = sys.modules["__main__"]
    had_file, spec = getattr(main, "__file__", None), getattr(main, "__spec__", None)
    with _main_hidden():
        assert not hasattr(main, "__file__") and main.__spec__ is None
    assert getattr(main, "__file__", None) == had_file and getattr(main, "__spec__", None) is spec


def test_import_ibtui_stays_light_and_recorder_is_lazy():
    code = "import sys, ibtui; assert 'torch' not in sys.modules; assert ibtui.Recorder.__name__ == 'Recorder'; assert 'torch' in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={"PYTHONPATH": str(REPO), "PATH": ""}, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_the_example_script_records_a_cnn_on_digits(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "own"
    # no __main__ guard in the example: the estimator process must not run it again
    result = subprocess.run([sys.executable, str(REPO / "examples" / "own_model.py"), str(out), "1"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=240,
                            env={"PYTHONPATH": str(REPO), "PATH": "", "PYTHONHASHSEED": "0"}, check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["snapshots"] == 2  # epochs 0 and 1
    assert summary["n_mi_samples"] == 1797
    assert (out / "info_plane.png").exists()


def test_saved_activations_re_estimate_to_the_recorded_numbers(tmp_path):
    from ibtui.runs.reestimate import activation_files, estimate_file

    x, y = probe_set(60)
    model = small_cnn()
    with Recorder(model, x, y, tmp_path / "r", layers=["1", "6"], epochs=2, processes=0, png=False,
                  save_activations=True) as rec:
        rec.epoch_end(0)
        rec.epoch_end(1)
    record = load_run(tmp_path / "r")
    labels = np.load(tmp_path / "r" / "activations" / "labels.npy")
    np.testing.assert_array_equal(labels, y.numpy())
    files = activation_files(tmp_path / "r")
    assert [e for e, _ in files] == [0, 1, 2]
    for (epoch, path), snap in zip(files, record.snapshots):
        again = estimate_file(path, labels, record.config.info)
        assert again == snap.mi


def test_numpy_float64_probe_inputs_and_labels_are_accepted(tmp_path):
    x, y = probe_set(40)
    with Recorder(small_cnn(), x.numpy().astype(np.float64), y.numpy().astype(np.float64), tmp_path / "r",
                  layers="6", epochs=1, processes=0, png=False) as rec:
        rec.epoch_end(0)
    assert load_run(tmp_path / "r").summary["status"] == "finished"


def test_an_estimate_that_fails_drops_its_snapshot_and_marks_the_run_failed(tmp_path):
    class Poisoned(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.poison = nn.Linear(36, 4), 0.0

        def forward(self, x):
            return self.fc(x.flatten(1) + self.poison)

    x, y = probe_set(40)
    model = Poisoned()
    with warnings.catch_warnings(record=True) as caught, \
            Recorder(model, x, y, tmp_path / "r", layers="fc", epochs=3, processes=0, png=False) as rec:
        warnings.simplefilter("always")
        rec.epoch_end(0)
        model.poison = float("nan")
        rec.epoch_end(1)
        model.poison = 0.0
        rec.epoch_end(2)
    assert [str(w.message)[:32] for w in caught] == ["the estimate at epoch 2 failed ("]
    record = load_run(tmp_path / "r")
    assert [s.epoch for s in record.snapshots] == [0, 1, 3]
    assert record.summary["status"] == "failed" and "epoch 2" in record.summary["reason"]


def test_an_in_place_activation_does_not_overwrite_the_layer_before_it(tmp_path):
    # nn.ReLU(inplace=True) writes into the Linear's output tensor after the Linear's hook ran:
    # the Linear must be measured as it was, negative values included.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.ReLU(inplace=True), nn.Linear(8, 4))
    x, y = probe_set(40)
    with Recorder(model, x, y, tmp_path / "r", epochs=1, processes=0, png=False, save_activations=True) as rec:
        rec.epoch_end(0)
    assert rec.layer_names == ("1", "2", "3")
    saved = np.load(tmp_path / "r" / "activations" / "epoch_0000000.npz")
    linear, relu = saved["layer0"].astype(np.float32), saved["layer1"].astype(np.float32)
    assert (linear < 0).any()
    np.testing.assert_array_equal(np.maximum(linear, 0), relu)


def test_at_the_end_this_thread_estimates_the_newest_snapshots_beside_the_busy_process(tmp_path):
    # A one-thread pool stands in for an estimator process that is busy: the estimates queued
    # behind its blocked task are taken over by the caller's thread at the end, newest first;
    # every snapshot is written once, in epoch order, with the numbers a plain run gives.
    x, y = probe_set(40)
    gate = threading.Event()
    pool = ThreadPoolExecutor(1)
    pool.submit(gate.wait, 60)
    local: list[int] = []
    with Recorder(small_cnn(), x, y, tmp_path / "r", layers=["4", "6"], epochs=6, processes=0, png=False) as rec:
        rec._pool = pool
        estimate_here = rec._estimate_here

        def here(pending):
            local.append(pending.epoch)
            estimate_here(pending)
            gate.set()  # the pool may run the oldest ones now

        rec._estimate_here = here
        for epoch in range(6):
            rec.epoch_end(epoch)
    with Recorder(small_cnn(), x, y, tmp_path / "plain", layers=["4", "6"], epochs=6, processes=0, png=False) as plain:
        for epoch in range(6):
            plain.epoch_end(epoch)
    assert local[0] == 6 and local == sorted(local, reverse=True)
    assert rec.timings["estimating"] > 0 and rec.timings["figures"] == 0.0  # png=False
    snapshots = load_run(tmp_path / "r").snapshots
    assert [s.epoch for s in snapshots] == list(range(7))
    assert [s.mi for s in snapshots] == [s.mi for s in load_run(tmp_path / "plain").snapshots]


class _FailingPool:
    """Stands in for the estimator process at close: every task's future fails with `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error, self.tasks, self.shut = error, [], False

    def submit(self, fn, *args, **kwargs):
        from concurrent.futures import Future

        self.tasks.append(getattr(fn, "__name__", fn))
        future = Future()
        future.set_exception(self.error)
        return future

    def shutdown(self, wait=True, cancel_futures=False):
        self.shut = True


def test_figures_a_broken_process_leaves_undone_are_drawn_here(tmp_path):
    from concurrent.futures.process import BrokenProcessPool

    x, y = probe_set(40)
    pool = _FailingPool(BrokenProcessPool("gone"))
    with Recorder(small_cnn(), x, y, tmp_path / "r", layers=["4", "6"], epochs=2, processes=0) as rec:
        for epoch in range(2):
            rec.epoch_end(epoch)
        rec._pool = pool  # the estimates are done; only the figures go to the (broken) process
    assert pool.tasks == ["export_figure"] * 4 and pool.shut
    for name in ("info_plane.png", "loss.png", "mi_curves.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    assert rec.timings["figures"] > 0


def test_a_figure_failing_in_the_process_never_hides_the_users_exception(tmp_path):
    x, y = probe_set(40)
    pool = _FailingPool(ValueError("no figure"))
    with pytest.raises(ZeroDivisionError), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Recorder(small_cnn(), x, y, tmp_path / "r", layers=["4", "6"], epochs=5, processes=0) as rec:
            rec.epoch_end(0)
            rec._pool = pool
            raise ZeroDivisionError
    assert pool.shut
    assert any("could not draw the figures" in str(w.message) and "no figure" in str(w.message) for w in caught)
    record = load_run(tmp_path / "r")
    assert record.summary["status"] == "failed" and [s.epoch for s in record.snapshots] == [0, 1]


@pytest.mark.slow
def test_the_estimator_process_draws_the_figures_and_the_users_process_never_imports_matplotlib(tmp_path):
    code = (
        "import sys, torch\n"
        "from tests.test_recorder import probe_set, small_cnn\n"
        "import ibtui\n"
        "x, y = probe_set(40)\n"
        f"with ibtui.Recorder(small_cnn(), x, y, {str(tmp_path / 'r')!r}, layers=['4', '6'], epochs=3, processes=1) as rec:\n"
        "    for epoch in range(3):\n"
        "        rec.epoch_end(epoch)\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported in the recording process'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=240,
                            env={"PYTHONPATH": str(REPO), "PATH": "", "PYTHONHASHSEED": "0"}, check=False)
    assert result.returncode == 0, result.stderr
    for name in ("info_plane.png", "loss.png", "mi_curves.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    assert not (tmp_path / "r" / "snr.png").exists()  # no gradients recorded


def test_the_recorder_gives_the_loop_the_cores_its_busy_estimator_process_leaves_and_restores_torch_threads(tmp_path, monkeypatch):
    # "auto": at each epoch_end a CPU model's loop gets the cores the busy estimator processes
    # leave (at least one), all of them while the processes idle, and the caller's count is
    # back when the block ends; None leaves it alone.
    import os
    from concurrent.futures import Future, wait

    import torch
    from torch import nn

    import ibtui

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
        x, y = torch.randn(40, 4), torch.arange(40) % 2
        seen = []
        with ibtui.Recorder(model, x, y, tmp_path / "auto", epochs=10, processes=1, png=False,
                            schedule="every", every=5) as rec:
            seen.append(torch.get_num_threads())  # the process warms up and estimates epoch 0
            wait(rec._busy)
            rec.epoch_end(0)  # nothing scheduled, the process idles
            seen.append(torch.get_num_threads())
            estimate = Future()  # an estimate in flight
            rec._busy.append(estimate)
            rec.epoch_end(1)
            seen.append(torch.get_num_threads())
            estimate.set_result(None)
            rec.epoch_end(2)
            seen.append(torch.get_num_threads())
        assert seen == [1, 2, 1, 2] and torch.get_num_threads() == 2
        with ibtui.Recorder(model, x, y, tmp_path / "keep", epochs=2, processes=1, png=False, torch_threads=None) as rec:
            seen.append(torch.get_num_threads())
        assert seen == [1, 2, 1, 2, 2] and torch.get_num_threads() == 2
        with pytest.raises(ibtui.RecorderError, match="torch_threads"):
            ibtui.Recorder(model, x, y, tmp_path / "bad", epochs=2, torch_threads=0)
    finally:
        torch.set_num_threads(before)
