"""`ibtui estimate --ksg-k / --adaptive-low`: a good value lands in the estimate's config.toml,
a bad one is exit 2 with one sentence and writes nothing."""

from __future__ import annotations

import tomllib

import pytest

from sweep_helpers import cli

from ibtui.runs.runner import execute, prepare_run

from helpers import tiny_config


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A run whose MI sample set is a stratified subset (256 of the 819 test inputs): `estimate`
    must pick the same subset's labels and inputs as training did."""
    config = tiny_config(**{"train.epochs": 2, "train.batch_size": 1024, "info.estimators": ("binning",),
                            "info.every": 2, "info.save_activations": True, "data.mi_samples": 256})
    run_dir = tmp_path_factory.mktemp("runs") / "saved"
    assert execute(*prepare_run(config, run_dir)).status == "finished"
    return run_dir


def _info(folder):
    return tomllib.loads((folder / "config.toml").read_text())["info"]


def test_ksg_k_lands_in_the_estimates_config(saved_run, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "estimate", str(saved_run), "--estimator", "ksg", "--ksg-k", "5")
    assert code == 0, err
    folder = saved_run / "estimates" / "ksg-k5"
    assert out.strip() == str(folder)
    info = _info(folder)
    assert info["ksg_k"] == 5 and info["estimators"] == ["ksg"]


def test_adaptive_low_lands_in_the_estimates_config_and_its_label(saved_run, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "estimate", str(saved_run), "--estimator", "adaptive", "--adaptive-low", "-2")
    assert code == 0, err
    folder = saved_run / "estimates" / "adaptive-30-low-2"
    assert out.strip() == str(folder)
    assert _info(folder)["adaptive_low"] == -2.0


@pytest.mark.parametrize("args,words", [
    (("--estimator", "ksg", "--ksg-k", "0"), "ksg_k must be between 1 and 1000"),
    (("--estimator", "ksg", "--ksg-k", "1001"), "ksg_k must be between 1 and 1000"),
    (("--estimator", "ksg", "--ksg-k", "three"), "--ksg-k"),
    (("--estimator", "binning", "--ksg-k", "4"), "--ksg-k applies to ksg"),
    (("--estimator", "adaptive", "--adaptive-low", "nan"), "--adaptive-low must be a finite number"),
    (("--estimator", "adaptive", "--adaptive-low", "inf"), "--adaptive-low must be a finite number"),
    (("--estimator", "kde_upper", "--adaptive-low", "0"), "--adaptive-low applies to adaptive"),
    (("--estimator", "adaptive", "--adaptive-low", "0.5"), "no larger than the layer's smallest value"),  # tanh < 0.5
])
def test_bad_values_are_one_sentence_and_exit_2(saved_run, monkeypatch, capsys, args, words):
    before = sorted(p.name for p in (saved_run / "estimates").iterdir()) if (saved_run / "estimates").exists() else []
    code, _, err = cli(monkeypatch, capsys, "estimate", str(saved_run), *args)
    assert code == 2 and words in " ".join(err.split()) and "Traceback" not in err
    after = sorted(p.name for p in (saved_run / "estimates").iterdir()) if (saved_run / "estimates").exists() else []
    assert after == before
