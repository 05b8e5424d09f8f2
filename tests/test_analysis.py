"""Compression verdicts on synthetic information-plane curves with known shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ibtui.runs.analysis import CompressionRule, analyse_curve, analyse_snapshots, smooth, snr_transition

EPOCHS = np.arange(0, 2001, 10, dtype=float)  # 201 snapshots


def rise_then_fall(seed: int, noise: float = 0.05, drop: float = 1.5, peak_at: float = 500.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rise = 4.0 * (1.0 - np.exp(-EPOCHS / 100.0))
    fall = drop * np.clip((EPOCHS - peak_at) / (EPOCHS[-1] - peak_at), 0.0, 1.0)
    return rise - fall + rng.normal(0.0, noise, EPOCHS.size)


def test_smooth_is_a_centred_average_that_shrinks_at_the_ends():
    assert smooth([1, 2, 3, 4, 5], 3).tolist() == [1.5, 2.0, 3.0, 4.0, 4.5]
    assert smooth([2.0, 2.0], 1).tolist() == [2.0, 2.0]


def test_rise_then_fall_single_seed_is_compression_with_the_right_peak_and_drop():
    result = analyse_curve(EPOCHS, rise_then_fall(0))
    assert result["verdict"] == "compression"
    # The clean curve peaks at epoch 500 with 4(1 - e^-5) = 3.973 bits and ends 1.5 bits lower.
    assert 400 <= result["peak_epoch"] <= 600
    assert result["drop_bits"] == pytest.approx(1.5, abs=0.1)
    assert result["drop_fraction"] == pytest.approx(1.5 / 3.973, abs=0.03)
    assert result["compression_epochs"] == [result["peak_epoch"], 2000]
    assert result["fitting_epochs"][0] == 0 and result["rise_bits"] > 3.0


def test_ensemble_reports_the_spread_over_seeds():
    values = np.array([rise_then_fall(s, drop=1.0 + 0.2 * s) for s in range(5)])
    result = analyse_curve(EPOCHS, values)
    assert result["verdict"] == "compression"
    assert result["n_seeds"] == 5 and len(result["peak_epochs"]) == 5
    assert result["drop_bits"] == pytest.approx(1.4, abs=0.1)  # mean of 1.0 .. 1.8
    assert result["drop_std"] == pytest.approx(np.std([1.0, 1.2, 1.4, 1.6, 1.8], ddof=1), abs=0.05)
    assert result["drop_se"] >= result["drop_std"] / np.sqrt(5) - 1e-12


def test_monotone_rise_is_none():
    rng = np.random.default_rng(1)
    values = np.array([4.0 * (1 - np.exp(-EPOCHS / 300.0)) + rng.normal(0, 0.03, EPOCHS.size) for _ in range(3)])
    result = analyse_curve(EPOCHS, values)
    assert result["verdict"] == "none"
    assert result["compression_epochs"] is None
    clean = analyse_curve(EPOCHS, 4.0 * (1 - np.exp(-EPOCHS / 300.0)))
    assert clean["drop_bits"] == 0.0 and clean["peak_epoch"] == 2000 and clean["verdict"] == "none"


@pytest.mark.parametrize("n_seeds", [1, 5, 20])
def test_pure_noise_is_never_compression(n_seeds):
    # Large noise: the maximum of a noisy flat curve sits above its end, but that is noise.
    rng = np.random.default_rng(2)
    values = 3.0 + rng.normal(0.0, 0.3, (n_seeds, EPOCHS.size))
    assert analyse_curve(EPOCHS, values)["verdict"] == "inconclusive"
    # Small noise: any drop is confidently below the threshold.
    quiet = 3.0 + rng.normal(0.0, 0.005, (n_seeds, EPOCHS.size))
    assert analyse_curve(EPOCHS, quiet)["verdict"] == "none"


def test_a_small_drop_within_large_noise_is_inconclusive_not_compression():
    values = np.array([rise_then_fall(s, noise=0.4, drop=0.15) for s in range(2)])
    assert analyse_curve(EPOCHS, values)["verdict"] == "inconclusive"


def test_the_threshold_is_part_of_the_rule():
    clean = 1.0 + np.concatenate([np.linspace(0, 1, 101), np.linspace(1, 0.99, 100)])  # drop 0.01 bits
    assert analyse_curve(EPOCHS, clean)["verdict"] == "none"
    strict = CompressionRule(min_drop_bits=0.001, min_drop_fraction=0.0)
    assert analyse_curve(EPOCHS, clean, strict)["verdict"] == "compression"


def test_snr_transition_where_the_smoothed_snr_falls_below_one():
    mean = 10.0 * np.exp(-EPOCHS / 300.0)  # SNR 10 e^(-e/300) < 1 from e = 300 ln 10 = 690.8
    result = snr_transition(EPOCHS, mean[None], np.ones((1, EPOCHS.size)))
    assert 680 <= result["epoch"] <= 710
    assert snr_transition(EPOCHS, np.full((1, EPOCHS.size), 5.0), np.ones((1, EPOCHS.size)))["epoch"] is None
    full_batch = snr_transition(EPOCHS, mean[None], np.zeros((1, EPOCHS.size)))
    assert full_batch["epoch"] is None and "full-batch" in full_batch["reason"]


def test_analyse_snapshots_is_json_able_and_per_layer():
    ixt = np.array([rise_then_fall(s) for s in range(2)])  # (seeds, S)
    flat = 0.5 + 0.0 * EPOCHS
    records = []
    for i, epoch in enumerate(EPOCHS):
        mi = [[[float(ixt[s, i]), 0.5], [float(flat[i]), 0.4]] for s in range(2)]
        records.append({"epoch": int(epoch), "train_loss": [1.0, 1.0], "mi": {"binning": mi},
                        **({"grad": {"mean": [[2.0, 1.0]] * 2, "std": [[1.0, 1.0]] * 2}} if epoch else {})})
    analysis = analyse_snapshots(records, ["L1", "L2"])
    json.dumps(analysis, allow_nan=False)
    layers = analysis["estimators"]["binning"]
    assert [e["layer"] for e in layers] == ["L1", "L2"]
    assert layers[0]["ixt"]["verdict"] == "compression"
    assert layers[1]["ixt"]["verdict"] == "none" and layers[1]["ity"]["verdict"] == "none"
    assert analysis["seeds"] == 2 and len(analysis["snr"]) == 2
    assert analyse_snapshots([], ["L1"])["estimators"] == {}
