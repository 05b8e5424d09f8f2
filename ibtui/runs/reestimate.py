"""Re-estimate the information plane of a finished run from its saved activations, without training.

A run trained with info.save_activations keeps every snapshot's activations in
RUN/activations/epoch_XXXXXXX.npz (keys layer0.., each (seeds, N, width) float16). This module
runs estimators.estimate_layers on them with other estimator settings and writes a new set beside the old:

    RUN/estimates/<label>/config.toml       the run's config with the changed [info] section
    RUN/estimates/<label>/snapshots.jsonl   the same record format; losses, accuracies and
                                            gradients copied from the original snapshots
    RUN/estimates/<label>/summary.json      the original summary, the new estimators, the analysis

The directory is a run directory of its own (load_run and the PNG export accept it). A run that
saves activations is measured during training from the same float16 values it saves, so a
re-estimation with unchanged settings reproduces the training-time numbers exactly.
"""

from __future__ import annotations

import math

import json
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ibtui import estimators
from ibtui.engine import workers
from ibtui.runs.analysis import analyse_snapshots
from ibtui.config import RunConfig, validate
from ibtui.errors import ConfigError, StoreError
from ibtui.runs.files import ACTIVATIONS_DIR, CONFIG_FILE, SNAPSHOTS_FILE, SUMMARY_FILE, check_writable, write_atomic
from ibtui.runs.lock import locked_run
from ibtui.runs.record import load_run

ESTIMATES_DIR = "estimates"
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.npz$")


def activation_files(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every saved activation file, in epoch order."""
    folder = Path(run_dir) / ACTIVATIONS_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _EPOCH_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def load_activations(path: Path) -> list[np.ndarray]:
    """The layers of one snapshot, each (seeds, N, width), as saved (float16)."""
    try:
        with np.load(path) as data:
            names = sorted((k for k in data.files if k.startswith("layer")), key=lambda k: int(k[5:]))
            return [data[k] for k in names]
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"the activation file {path} is damaged ({exc})") from None


def estimate_file(path: Path, labels: np.ndarray, info, inputs: np.ndarray | None = None) -> dict:
    """One saved snapshot's information plane, {estimator: seed -> layer -> [I(X;T), I(T;Y)]};
    `inputs` (the MI samples' X) for the estimators that need them."""
    layers = load_activations(path)
    if not layers or layers[0].shape[1] != len(labels):
        raise StoreError(f"{path} does not hold {len(labels)} samples per layer, as the run's MI sample set has")
    return estimators.estimate_info_plane(layers, labels, info, inputs)


def _estimates(paths: list[Path], labels: np.ndarray, info, inputs: np.ndarray | None = None) -> Iterator[dict]:
    """The files' estimates, in order: in estimator processes (each reads its own files) when
    the KDE work pays for starting them, else here."""
    cores = torch.get_num_threads()
    if cores >= 2 and paths:
        with np.load(paths[0]) as first:
            shape = first["layer0"].shape if "layer0" in first.files else (1, len(labels), 1)
            n_layers = sum(k.startswith("layer") for k in first.files)
        # Alone (no training beside it), two threads already do 1.35x of one: processes pay for
        # their start-up (~1.5 s) from about twice the engine's threshold (measured: 82 tanh
        # snapshots, 8e9 pairs, took 3.9 s in threads and 4.1 s in processes).
        if workers.kde_pairs(info, len(paths), shape[0], n_layers, len(labels)) >= 2 * workers.PROCESS_MIN_PAIRS:
            pool = workers.estimator_pool(min(workers.MAX_PROCESSES, cores))
            done = 0
            try:
                for estimate in pool.map(estimate_file, paths, [labels] * len(paths), [info] * len(paths), [inputs] * len(paths)):
                    done += 1
                    yield estimate
                return
            except BrokenExecutor:  # no processes here (a sandbox, an unguarded script): go on in line
                paths = paths[done:]
            finally:  # an error (a damaged file) or Ctrl-C must not wait for every queued estimate
                pool.shutdown(wait=True, cancel_futures=True)
    for path in paths:
        yield estimate_file(path, labels, info, inputs)


def _mi_sample_set(config: RunConfig):
    """The dataset and the MI sample set's indices, chosen exactly as the training engine chooses
    them: the '--measure-on' split, then its stratified subset of at most data.mi_samples."""
    from ibtui.data import stratified_subset
    from ibtui.engine.trainer import load_config_dataset, mi_sample_indices

    ds = load_config_dataset(config)
    idx = mi_sample_indices(ds, config.info.on)
    return ds, idx[stratified_subset(np.asarray(ds.y)[idx], config.data.mi_samples, config.data.mi_subset_seed)]


def mi_labels(config: RunConfig) -> np.ndarray:
    """The labels of the MI sample set."""
    ds, idx = _mi_sample_set(config)
    return np.asarray(ds.y)[idx]


def mi_inputs(config: RunConfig) -> np.ndarray | None:
    """The MI sample set's inputs X when an estimator of config.info needs them (ksg, edge), else None."""
    if not any(estimators.ESTIMATORS[name].needs_inputs for name in config.info.estimators):
        return None
    ds, idx = _mi_sample_set(config)
    return np.asarray(ds.x)[idx]


def changed_config(config: RunConfig, *, estimators: Sequence[str] | None = None, noise_variance: float | None = None,
                   bin_size: float | None = None, n_bins: int | None = None, adaptive_bins: int | None = None,
                   adaptive_low: float | None = None, ksg_k: int | None = None) -> RunConfig:
    """The run's config with the [info] settings of the re-estimation."""
    info = config.info
    changes: dict[str, Any] = {}
    if estimators:
        changes["estimators"] = tuple(dict.fromkeys(estimators))
    if noise_variance is not None:
        changes["noise_variance"] = float(noise_variance)
    if bin_size is not None and n_bins is not None:
        raise ConfigError("give either --bin-size or --n-bins, not both")
    chosen = tuple(dict.fromkeys(estimators)) if estimators else info.estimators
    for option, value, users in (
        ("--noise-variance", noise_variance, ("kde_upper", "kde_lower")),
        ("--bin-size", bin_size, ("binning",)),
        ("--n-bins", n_bins, ("binning",)),
        ("--adaptive-bins", adaptive_bins, ("adaptive",)),
        ("--adaptive-low", adaptive_low, ("adaptive",)),
        ("--ksg-k", ksg_k, ("ksg",)),
    ):
        if value is not None and not set(users) & set(chosen):
            raise ConfigError(f"{option} applies to {' or '.join(users)}, which is not among the estimators ({', '.join(chosen)})")
    if bin_size is not None:
        changes.update(bin_size=float(bin_size), n_bins=None)
    if n_bins is not None:
        changes["n_bins"] = int(n_bins)
    if adaptive_bins is not None:
        changes["adaptive_bins"] = int(adaptive_bins)
    if adaptive_low is not None:
        if not math.isfinite(adaptive_low):
            raise ConfigError(f"--adaptive-low must be a finite number, not {adaptive_low}")
        changes["adaptive_low"] = float(adaptive_low)
    if ksg_k is not None:
        changes["ksg_k"] = int(ksg_k)
    new = replace(config, info=replace(info, **changes))
    validate(new)
    return new


def estimate_label(config: RunConfig) -> str:
    """A directory name that says what was estimated: binning-bs0.1, kde_upper-nv0.01, ..."""
    info = config.info
    parts = []
    for name in info.estimators:
        if name in ("kde_upper", "kde_lower"):
            parts.append(f"{name}-nv{info.noise_variance:g}")
        elif name == "binning":
            parts.append(f"binning-nb{info.n_bins}" if info.n_bins else f"binning-bs{info.bin_size:g}")
        elif name == "adaptive":
            parts.append(f"adaptive-{info.adaptive_bins}" + (f"-low{info.adaptive_low:g}" if info.adaptive_low is not None else ""))
        elif name == "ksg":
            parts.append(f"ksg-k{info.ksg_k}")
        else:
            parts.append(name)
    return "+".join(parts)


def reestimate(run_dir: str | Path, config: RunConfig, label: str | None = None, *, overwrite: bool = False,
               progress: Callable[[int, int], None] | None = None) -> Path:
    """Estimate every saved snapshot with `config.info`; write RUN/estimates/<label>/. Returns that path.

    Writes into the run, so it holds the run's writer lock: never beside a run or resume of it.
    """
    record = load_run(run_dir)
    check_writable(record.path)  # a read-only run: one sentence before any estimate
    with locked_run(record.path):
        return _reestimate(record, config, label, overwrite=overwrite, progress=progress)


def _reestimate(record, config: RunConfig, label: str | None, *, overwrite: bool,
                progress: Callable[[int, int], None] | None) -> Path:
    files = activation_files(record.path)
    if not files:
        raise StoreError(
            f"{record.path} has no saved activations to re-estimate from; train it with --save-activations"
        )
    label = label or estimate_label(config)
    # A label names one folder inside RUN/estimates: never '.', '..' or a path out of it.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", label):
        raise ConfigError(f"the label '{label}' must start with a letter or digit and hold only letters, digits and . _ + -")
    out = record.path / ESTIMATES_DIR / label
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise StoreError(f"{out} already exists; use --overwrite, remove it, or choose another --label")
    originals = {s.epoch: s.to_record() for s in record.snapshots}
    labels = mi_labels(config)

    records = []
    for i, ((epoch, path), estimate) in enumerate(zip(files, _estimates([p for _, p in files], labels, config.info, mi_inputs(config)))):
        base = originals.get(epoch)
        if base is None:  # activations without a snapshot line (a torn log): keep what can be kept
            n_seeds = len(next(iter(estimate.values())))
            nan = [float("nan")] * n_seeds
            base = {"epoch": epoch, "elapsed_s": float("nan"), "train_loss": nan, "test_loss": nan, "train_acc": nan, "test_acc": nan}
        records.append({**base, "mi": estimate})
        if progress is not None:
            progress(i + 1, len(files))

    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / CONFIG_FILE, config.to_toml().encode())
    lines = b"".join(json.dumps(r, separators=(",", ":"), allow_nan=True).encode() + b"\n" for r in records)
    write_atomic(out / SNAPSHOTS_FILE, lines)
    summary = dict(record.summary)
    summary.pop("analysis", None)
    summary.update(
        estimators=list(config.info.estimators),
        reestimated_from=str(record.path),
        info=config.to_dict()["info"],
        snapshots=len(records),
    )
    try:
        summary["analysis"] = analyse_snapshots(records, summary.get("layers"))
    except Exception as exc:  # noqa: BLE001 - the estimates themselves must survive an analysis bug
        summary["analysis"] = {"error": f"{type(exc).__name__}: {exc}"}
    write_atomic(out / SUMMARY_FILE, (json.dumps(summary, indent=2, allow_nan=True) + "\n").encode())
    return out
