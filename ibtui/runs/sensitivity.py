"""Does the verdict survive the estimator? A run re-estimated from its saved activations at every
listed KDE noise variance and binning bin size, each setting judged by runs.analysis.

    RUN/sensitivity/sensitivity.json   per setting, seed mean and layer: peaks, drops, verdicts
    RUN/sensitivity/sensitivity.png    (ibtui.export.sensitivity) the heat map

Only the activations saved by --save-activations are read; the run itself is never changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ibtui import estimators
from ibtui.engine import workers
from ibtui.errors import ConfigError, StoreError
from ibtui.runs.analysis import analyse_snapshots
from ibtui.runs.reestimate import activation_files, load_activations, mi_labels
from ibtui.runs.files import write_atomic
from ibtui.runs.record import load_run

SENSITIVITY_DIR = "sensitivity"
SENSITIVITY_FILE = "sensitivity.json"
NOISE_VARIANCES = (1e-4, 1e-3, 1e-2, 1e-1)
BIN_SIZES = (0.01, 0.03, 0.07, 0.3)
KDE = ("kde_upper", "kde_lower")
BINNED = ("binning",)


def settings(estimator_names: Sequence[str], noise_variances: Sequence[float], bin_sizes: Sequence[float]) -> list[tuple[str, str, float]]:
    """(estimator, parameter, value) for every setting measured, in order."""
    out = []
    for name in dict.fromkeys(estimator_names):
        if name in KDE:
            out += [(name, "noise_variance", float(v)) for v in noise_variances]
        elif name in BINNED:
            out += [(name, "bin_size", float(v)) for v in bin_sizes]
        else:
            raise ConfigError(f"sensitivity varies the KDE noise variance and the binning bin size; {name!r} has neither (use kde_upper, kde_lower or binning).")
    if not out:
        raise ConfigError("sensitivity needs at least one setting to measure.")
    return out


def file_estimates(path: Path, labels: np.ndarray, infos: Sequence[Any]) -> list[dict]:
    """One saved snapshot estimated with each of `infos` (runs in an estimator process)."""
    layers = load_activations(path)
    return [estimators.estimate_info_plane(layers, labels, info) for info in infos]


def _estimates(paths: list[Path], labels: np.ndarray, infos: list) -> Any:
    """Each file's estimates, in order: in estimator processes (one file at a time each) when the
    KDE work pays for starting them (engine/workers.py's threshold), else here."""
    cores = torch.get_num_threads()
    if cores >= 2 and paths:
        with np.load(paths[0]) as first:
            shape = first["layer0"].shape if "layer0" in first.files else (1, len(labels), 1)
            n_layers = sum(k.startswith("layer") for k in first.files)
        pairs = sum(workers.kde_pairs(info, len(paths), shape[0], n_layers, len(labels)) for info in infos)
        if pairs >= workers.PROCESS_MIN_PAIRS:
            pool = workers.estimator_pool(min(workers.MAX_PROCESSES, cores), 1, infos[0])  # kernels loaded while the first file is read
            done = 0
            try:
                for estimate in pool.map(file_estimates, paths, [labels] * len(paths), [infos] * len(paths)):
                    done += 1
                    yield estimate
                return
            except BrokenExecutor:  # no processes here: go on in line
                paths = paths[done:]
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    for path in paths:
        yield file_estimates(path, labels, infos)


def _summary(curve: dict[str, Any]) -> dict[str, Any]:
    keys = ("verdict", "peak_epoch", "peak_bits", "end_bits", "drop_bits", "drop_fraction")
    return {k: curve.get(k) for k in keys}


def measure(run_dir: str | Path, estimator_names: Sequence[str] = ("kde_upper", "binning"), *,
            noise_variances: Sequence[float] = NOISE_VARIANCES, bin_sizes: Sequence[float] = BIN_SIZES,
            progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Every setting's verdicts for the run at `run_dir`, as the JSON document written."""
    record = load_run(run_dir)
    files = activation_files(run_dir)
    if not files:
        raise StoreError(f"{run_dir} has no saved activations (activations/epoch_*.npz); train it with --save-activations to measure sensitivity.")
    chosen = settings(estimator_names, noise_variances, bin_sizes)
    for _, parameter, value in chosen:
        if parameter == "noise_variance":
            estimators._validate.noise_variance(value)
        else:
            estimators._validate.positive("bin_size", value)
    by_epoch = {s.epoch: s for s in record.snapshots}
    files = [(epoch, path) for epoch, path in files if epoch in by_epoch]
    labels = mi_labels(record.config)
    # One estimate call per KDE noise variance serves both bounds; binning one call per size.
    calls: list[tuple[tuple[str, ...], str, float]] = []
    for value in dict.fromkeys(v for n, p, v in chosen if p == "noise_variance"):
        calls.append((tuple(n for n, p, v in chosen if p == "noise_variance" and v == value), "noise_variance", value))
    for value in dict.fromkeys(v for n, p, v in chosen if p == "bin_size"):
        calls.append((("binning",), "bin_size", value))
    records: dict[tuple[str, float], list[dict]] = {(n, v): [] for n, _, v in chosen}
    infos = [replace(record.config.info, estimators=names, n_bins=None, **{parameter: value}) for names, parameter, value in calls]
    for i, ((epoch, _), estimates) in enumerate(zip(files, _estimates([p for _, p in files], labels, infos))):
        for (names, _, value), estimate in zip(calls, estimates):
            for name in names:
                records[(name, value)].append({"epoch": epoch, "train_loss": by_epoch[epoch].train_loss, "mi": {name: estimate[name]}})
        if progress:
            progress((i + 1) * len(calls), len(files) * len(calls))
    layer_names = record.layer_names or None
    rows = []
    for name, parameter, value in chosen:
        analysis = analyse_snapshots(records[(name, value)], layer_names)
        layers_out = [{"layer": e["layer"], "ixt": _summary(e["ixt"]), "ity": _summary(e["ity"])} for e in analysis["estimators"].get(name, [])]
        rows.append({"estimator": name, "parameter": parameter, "value": value, "layers": layers_out})
    doc = {"run": str(Path(run_dir)), "snapshots": len(files), "seeds": record.config.train.seeds, "settings": rows}
    doc["sentences"] = sentences(doc)
    return doc


def _setting_text(parameter: str, value: float) -> str:
    return f"sigma^2 = {value:g}" if parameter == "noise_variance" else f"bin size {value:g}"


def sentences(doc: dict[str, Any]) -> list[str]:
    """One sentence per layer: at which settings its I(X;T) compresses."""
    if not doc["settings"]:
        return []
    names = [e["layer"] for e in doc["settings"][0]["layers"]]
    out = []
    for i, layer in enumerate(names):
        parts = []
        for estimator in dict.fromkeys(s["estimator"] for s in doc["settings"]):
            rows = [s for s in doc["settings"] if s["estimator"] == estimator]
            yes = [s for s in rows if s["layers"][i]["ixt"]["verdict"] == "compression"]
            if not yes:
                continue
            if len(yes) == len(rows):
                where = "at every " + ("sigma^2" if rows[0]["parameter"] == "noise_variance" else "bin size")
            else:
                where = "at " + ", ".join(_setting_text(s["parameter"], s["value"]) for s in yes)
            parts.append(f"under {estimator} {where}")
        out.append(f"{layer} compresses " + "; ".join(parts) + "." if parts else f"{layer} compresses at no setting.")
    return out


def write(run_dir: str | Path, doc: dict[str, Any]) -> Path:
    """RUN/sensitivity/sensitivity.json; returns the folder."""
    folder = Path(run_dir) / SENSITIVITY_DIR
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {folder}: {exc.strerror or exc}") from None
    write_atomic(folder / SENSITIVITY_FILE, (json.dumps(doc, indent=1) + "\n").encode())
    return folder
