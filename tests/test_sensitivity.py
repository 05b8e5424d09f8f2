"""ibtui sensitivity: re-estimation at several settings, its refusal without saved activations."""

from __future__ import annotations

import json

import pytest

from ibtui.errors import ConfigError, StoreError
from ibtui.runs import sensitivity as sens
from ibtui.runs.reestimate import activation_files
from ibtui.runs.runner import execute, prepare_run
from tests.helpers import run_cli, tiny_config


def _run(tmp_path, save: bool):
    config = tiny_config(**{"train.epochs": 12, "train.batch_size": 1024, "info.estimators": ("binning", "kde_upper"),
                            "info.schedule": "every", "info.save_activations": save, "model.hidden": (5, 3)})
    run_dir = tmp_path / ("saved" if save else "plain")
    assert execute(*prepare_run(config, run_dir)).status == "finished"
    return run_dir


def test_sensitivity_writes_every_setting_and_one_sentence_per_layer(tmp_path, monkeypatch):
    run_dir = _run(tmp_path, save=True)
    seen = []
    doc = sens.measure(run_dir, ("kde_upper", "kde_lower", "binning"), noise_variances=(1e-3, 1e-1), bin_sizes=(0.07,),
                       progress=lambda done, total: seen.append((done, total)))
    assert [(s["estimator"], s["value"]) for s in doc["settings"]] == [("kde_upper", 1e-3), ("kde_upper", 1e-1), ("kde_lower", 1e-3), ("kde_lower", 1e-1), ("binning", 0.07)]
    files = len(activation_files(run_dir))
    assert files >= 5 and doc["snapshots"] == files
    assert seen[-1] == (files * 3, files * 3)  # snapshots x (2 noise variances + 1 bin size)
    n_layers = len(doc["settings"][0]["layers"])
    assert n_layers == 3 and len(doc["sentences"]) == n_layers
    for s in doc["settings"]:
        for entry in s["layers"]:
            assert entry["ixt"]["verdict"] in ("compression", "none", "inconclusive")
    # the setting the run used reproduces the run's own numbers
    same = sens.measure(run_dir, ("binning",), bin_sizes=(0.07,))
    from ibtui.runs.analysis import analyse_run
    from ibtui.runs.record import load_run

    own = analyse_run(load_run(run_dir))["estimators"]["binning"]
    assert [e["ixt"]["peak_bits"] for e in same["settings"][0]["layers"]] == pytest.approx([e["ixt"]["peak_bits"] for e in own], abs=1e-12)
    # in estimator processes (as for a full run), the same numbers
    import torch

    from ibtui.engine import workers

    monkeypatch.setattr(workers, "PROCESS_MIN_PAIRS", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert sens.measure(run_dir, ("kde_upper", "kde_lower", "binning"), noise_variances=(1e-3, 1e-1), bin_sizes=(0.07,)) == doc
    result = run_cli("sensitivity", str(run_dir), "--noise-variance", "1e-2", "--bin-size", "0.1")
    assert result.returncode == 0, result.stderr
    written = json.loads((run_dir / "sensitivity" / "sensitivity.json").read_text())
    assert len(written["settings"]) == 2 and (run_dir / "sensitivity" / "sensitivity.png").stat().st_size > 0
    assert written["sentences"][-1] in result.stdout


def test_sensitivity_refuses_without_activations_and_bad_settings(tmp_path):
    run_dir = _run(tmp_path, save=False)
    with pytest.raises(StoreError, match="--save-activations"):
        sens.measure(run_dir)
    with pytest.raises(ConfigError, match="neither"):
        sens.settings(("adaptive",), (1e-3,), (0.07,))
    result = run_cli("sensitivity", str(run_dir), "--noise-variance", "abc")
    assert result.returncode == 2 and "comma-separated" in result.stderr
    assert not (run_dir / "sensitivity").exists()


def test_every_run_writes_mi_curves(tmp_path):
    from ibtui.export.png import export_run

    run_dir = _run(tmp_path, save=False)
    written = [p.name for p in export_run(run_dir)]
    assert "mi_curves.png" in written and (run_dir / "mi_curves.png").stat().st_size > 10_000
