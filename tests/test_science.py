"""End-to-end science: batched seeds equal separate runs, report, estimate and reproduce on tiny runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sweep_helpers import cli

from ibtui.runs.runner import execute, prepare_run
from ibtui.runs.record import load_run
from ibtui.engine.trainer import Trainer

from helpers import tiny_config

pytestmark = pytest.mark.slow




def fast_config(**overrides):
    base = {"train.epochs": 6, "train.batch_size": 1024, "info.estimators": ("binning",), "info.every": 3}
    base.update(overrides)
    return tiny_config(**base)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A 2-seed run with saved activations and both estimator families."""
    config = fast_config(**{"train.seeds": 2, "info.estimators": ("binning", "kde_upper"), "info.save_activations": True})
    run_dir = tmp_path_factory.mktemp("runs") / "saved"
    outcome = execute(*prepare_run(config, run_dir))
    assert outcome.status == "finished"
    return run_dir


def test_batched_seeds_equal_separate_seeded_runs():
    config = tiny_config(**{"train.epochs": 6, "train.batch_size": 1024, "info.estimators": ("binning",),
                            "info.every": 3, "model.hidden": (10, 7, 5, 4, 3)})
    batched = [e for e in Trainer(config.with_overrides({"train.seeds": 3})).run() if type(e).__name__ == "Snapshot"]
    for seed in range(3):
        single = [e for e in Trainer(config.with_overrides({"train.seed": seed})).run() if type(e).__name__ == "Snapshot"]
        assert [s.epoch for s in single] == [s.epoch for s in batched] == [0, 3, 6]
        for one, many in zip(single, batched):
            for field in ("train_loss", "test_loss", "train_acc", "test_acc"):
                assert getattr(one, field)[0] == pytest.approx(getattr(many, field)[seed], rel=1e-5, abs=1e-6)
            assert np.allclose(one.mi["binning"][0], many.mi["binning"][seed], atol=1e-6)
            assert np.allclose(one.grad["mean"][0] if one.grad else 0, many.grad["mean"][seed] if many.grad else 0, rtol=1e-4)


def test_summary_stores_the_analysis(saved_run):
    summary = json.loads((saved_run / "summary.json").read_text())
    analysis = summary["analysis"]
    assert "error" not in analysis
    assert set(analysis["estimators"]) == {"binning", "kde_upper"}
    assert [e["layer"] for e in analysis["estimators"]["binning"]] == summary["layers"]
    assert analysis["seeds"] == 2
    # The stored verdicts are those of the logged snapshots, judged again here from the log.
    from ibtui.runs.analysis import analyse_snapshots
    from ibtui.runs.record import read_snapshot_lines

    records, _ = read_snapshot_lines(saved_run / "snapshots.jsonl")
    again = analyse_snapshots(records, summary["layers"])
    for estimator in ("binning", "kde_upper"):
        stored = [(e["ixt"]["verdict"], e["ixt"]["drop_bits"]) for e in analysis["estimators"][estimator]]
        assert stored == [(e["ixt"]["verdict"], e["ixt"]["drop_bits"]) for e in again["estimators"][estimator]]


def test_report_prints_the_verdict_table(saved_run, monkeypatch, capsys):
    code, out, _ = cli(monkeypatch, capsys, "report", str(saved_run))
    assert code == 0
    assert "I(X;T) peak" in out and "kde_upper" in out and "L1 tanh 6" in out and "±" in out
    assert "Gradient SNR" in out
    code, out, err = cli(monkeypatch, capsys, "report", str(saved_run / "nowhere"))
    assert code == 2 and "not a run directory" in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("in_processes", [False, True])
def test_estimate_with_the_same_parameters_equals_the_training_estimate(saved_run, monkeypatch, capsys, in_processes):
    if in_processes:  # as for a big run: the snapshots are estimated in estimator processes
        from ibtui.engine import workers

        monkeypatch.setattr(workers, "PROCESS_MIN_PAIRS", 0)
    code, out, _ = cli(monkeypatch, capsys, "estimate", str(saved_run), "--label", "same", "--overwrite")
    assert code == 0
    original, again = load_run(saved_run), load_run(saved_run / "estimates" / "same")
    assert [s.epoch for s in again.snapshots] == [s.epoch for s in original.snapshots]
    for a, b in zip(original.snapshots, again.snapshots):
        assert a.train_loss == b.train_loss and a.test_acc == b.test_acc and a.grad == b.grad
        # With --save-activations the engine estimates from the same float16 values it saves.
        assert np.allclose(a.mi["kde_upper"], b.mi["kde_upper"], rtol=0, atol=1e-9)
        assert a.mi["binning"] == b.mi["binning"]
    assert (saved_run / "estimates" / "same" / "info_plane.png").stat().st_size > 1000


def test_estimate_with_another_bin_size_changes_the_numbers_and_writes_the_png(saved_run, monkeypatch, capsys):
    code, out, _ = cli(monkeypatch, capsys, "estimate", str(saved_run), "--estimator", "binning", "--bin-size", "0.5")
    assert code == 0
    folder = saved_run / "estimates" / "binning-bs0.5"
    assert out.strip() == str(folder)
    new, old = load_run(folder), load_run(saved_run)
    assert new.config.info.bin_size == 0.5 and new.config.info.estimators == ("binning",)
    assert list(new.snapshots[0].mi) == ["binning"]
    coarse = np.array([s.mi["binning"] for s in new.snapshots])
    fine = np.array([s.mi["binning"] for s in old.snapshots])
    assert (coarse[..., 0] < fine[..., 0] - 0.1).all()  # coarser bins: fewer states, less I(X;T)
    assert (folder / "info_plane.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["estimators"] == ["binning"] and "analysis" in summary
    code, _, err = cli(monkeypatch, capsys, "estimate", str(saved_run), "--estimator", "binning", "--bin-size", "0.5")
    assert code == 2 and "already exists" in err and "--overwrite" in err


@pytest.mark.parametrize("label", ["..", ".", "../x", "-a"])
def test_estimate_labels_cannot_leave_the_estimates_folder(saved_run, monkeypatch, capsys, label):
    before = (saved_run / "snapshots.jsonl").read_bytes()
    code, _, err = cli(monkeypatch, capsys, "estimate", str(saved_run), "--bin-size", "0.3", "--label", label, "--overwrite")
    assert code == 2 and "label" in err and "Traceback" not in err
    assert (saved_run / "snapshots.jsonl").read_bytes() == before


def test_estimate_refuses_options_no_chosen_estimator_uses(saved_run, monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, "estimate", str(saved_run), "--estimator", "adaptive", "--bin-size", "0.3")
    assert code == 2 and "--bin-size applies to binning" in err


def test_estimate_without_activations_fails_with_one_sentence(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "plain"
    execute(*prepare_run(fast_config(**{"train.epochs": 2, "info.every": 1}), run_dir))
    code, out, err = cli(monkeypatch, capsys, "estimate", str(run_dir), "--bin-size", "0.1")
    assert code == 2
    assert "no saved activations" in err and "--save-activations" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (run_dir / "estimates").exists()


def test_reproduce_saxe_on_a_tiny_config_writes_the_report(tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "saxe"
    code, out, err = cli(
        monkeypatch, capsys, "reproduce", "saxe", "--epochs", "4", "--seeds", "2", "--out", str(out_dir), "--quiet",
        "--set", 'info.estimators=["binning"]', "--set", "info.schedule=every", "--set", "train.batch_size=2048",
        "--set", "model.hidden=[6,4,3]",
    )
    assert code == 0, err
    report = (out_dir / "REPORT.md").read_text()
    assert out.strip() == str(out_dir / "REPORT.md")
    for preset in ("tanh", "relu"):
        assert (out_dir / preset / "info_plane.png").exists() and (out_dir / preset / "loss.png").exists()
        assert f"]({preset}/info_plane.png)" in report and f"]({preset}/loss.png)" in report
        assert load_run(out_dir / preset).config.train.seeds == 2
    assert "| tanh | finished | 2 | 4 |" in report
    assert "Claim 1: with tanh" in report and "Claim 2: with ReLU" in report
    assert "| L1 tanh 6 | binning |" in report
    import re

    claims = re.findall(r"\*\*Claim \d[^*]*\*\* With \w+: (NOT SUPPORTED|PARTLY SUPPORTED|SUPPORTED)\b", report)
    assert len(claims) >= 2, report  # each claim line carries one of the three judgements


def test_reproduce_pokemon_runs_the_four_presets(tmp_path):
    from ibtui.runs.reproduce import run_paper

    report = run_paper("pokemon", tmp_path / "pk", seeds=1, epochs=2,
                       overrides={"info.estimators": ("binning",), "info.schedule": "every", "model.hidden": (6, 4)})
    text = report.read_text()
    for preset in ("pokemon-relu", "pokemon-tanh", "pokemon-relu-l2", "pokemon-tanh-l2"):
        assert f"| {preset} | finished | 1 | 2 |" in text
        assert (tmp_path / "pk" / preset / "info_plane.png").exists()
    assert "SYNTHETIC" in text
    for claim in ("Claim 1: mutual information rises", "Claim 2 (pokemon-relu)", "Claim 2 (pokemon-tanh)",
                  "Claim 3 (pokemon-relu-l2)", "Claim 4 (pokemon-tanh-l2)"):
        assert claim in text


def test_reproduce_rejects_an_unknown_paper(monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, "reproduce", "tishbyy", "--epochs", "1")
    assert code == 2 and "unknown paper 'tishbyy'" in err
