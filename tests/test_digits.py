"""Tests for the digits dataset (scikit-learn's 8x8 images) and its presets."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from ibtui import data as D
from ibtui.errors import DataError
from ibtui.runs.presets import load_preset


def test_digits_loads_scaled_with_a_seeded_split():
    pytest.importorskip("sklearn")
    ds = D.load_dataset("digits", test_fraction=0.2, split_seed=3)
    assert ds.n_samples == 1797 and ds.n_features == 64 and ds.image_shape == (1, 8, 8)
    assert ds.n_classes == 10 and np.bincount(ds.y).min() >= 174
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0  # pixels 0..16 / 16, not standardised
    assert (len(ds.train_idx), len(ds.test_idx)) == (1438, 359)
    np.testing.assert_array_equal(ds.test_idx, D.split_indices(1797, 0.2, 3)[1])
    from sklearn.datasets import load_digits

    np.testing.assert_allclose(ds.x[5], load_digits().data[5] / 16.0, rtol=1e-6)


def test_digits_without_scikit_learn_is_one_sentence(monkeypatch):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(DataError, match=r"needs scikit-learn; install it with pip install 'ibtui\[datasets\]'"):
        D.load_dataset("digits")


@pytest.mark.parametrize("name, activation", [("digits-tanh", "tanh"), ("digits-relu", "relu")])
def test_digits_presets(name, activation):
    config = load_preset(name)
    assert config.data.name == "digits" and config.model.activation == activation
    assert config.name == name


def test_mnist_relu_preset_is_saxes_network():
    config = load_preset("mnist-relu")
    assert config.data.name == "mnist" and config.model.hidden == (1024, 20, 20, 20)
    assert config.model.activation == "relu" and config.train.optimizer == "sgd"
    assert (config.train.lr, config.train.batch_size) == (0.001, 128)
    assert config.info.on == "test" and config.info.noise_variance == 0.1


def test_digits_tanh_runs_end_to_end(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from helpers import call_main

    code, text = call_main("run", "--preset", "digits-tanh", "--epochs", "3", "--out", str(tmp_path / "r"), "--quiet",
                           capsys=capsys)
    assert code == 0, text
    import json

    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["snapshots"] == 4
    assert summary["n_mi_samples"] == 1797 and "8x8 handwritten digits" in summary["dataset"]
