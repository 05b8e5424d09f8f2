"""Reading a run directory back: the snapshot log, the summary, and their validation.

A torn last line of snapshots.jsonl (a kill in the middle of a write) is detected and dropped.
Every record and the summary are type-checked, so a damaged or foreign file is one sentence
naming it (StoreError), never a traceback further on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any


from ibtui.config import RunConfig, load_toml
from ibtui.errors import ConfigError, StoreError
from ibtui.engine.events import Snapshot
from ibtui.runs.files import CONFIG_FILE, SNAPSHOTS_FILE, SUMMARY_FILE


def read_snapshot_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The snapshot records of a JSONL file and the byte length of its intact part.

    A last line without its newline, or one that does not parse, is a torn write and is left
    out; a bad line before the last one means the file was damaged otherwise: StoreError.
    Whether each record is a snapshot record is load_run's check (snapshot_record_problem).
    """
    try:
        if not path.exists():
            return [], 0
        data = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):  # the last piece has no newline after it
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if number == len(lines) - 1:
                break
            raise StoreError(f"{path} is damaged at line {number} (not a JSON record)") from None
        records.append(record)
        good += len(line) + 1
    return records, good

_NUMBER = (int, float)

_NUMBER = (int, float)
_PER_SEED = ("train_loss", "test_loss", "train_acc", "test_acc")

def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)

def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(_is_number(v) for v in value)

def snapshot_record_problem(record: Any) -> str | None:
    """Why a parsed line is not a snapshot record (None when it is one): types, not values."""
    if not isinstance(record, dict):
        return f"a snapshot record must be a JSON object, not {type(record).__name__}"
    allowed = {f.name for f in dataclass_fields(Snapshot)} - {"run_id", "activations"}
    for key in ("epoch", "elapsed_s", *_PER_SEED, "mi"):
        if key not in record:
            return f"the record lacks '{key}'"
    extra = sorted(set(record) - allowed)
    if extra:
        return f"the record has unknown field '{extra[0]}'"
    if not is_whole(record["epoch"]) or record["epoch"] < 0:
        return f"'epoch' must be a whole number >= 0, not {record['epoch']!r}"
    if not _is_number(record["elapsed_s"]):
        return f"'elapsed_s' must be a number, not {record['elapsed_s']!r}"
    for key in _PER_SEED:
        if not _numbers(record[key]) or not record[key]:
            return f"'{key}' must be a list of numbers (one per seed)"
    n_seeds = len(record["train_loss"])
    mi = record["mi"]
    if not isinstance(mi, dict) or not mi:
        return "'mi' must map estimator names to per-seed, per-layer [I(X;T), I(T;Y)] pairs"
    for name, per_seed in mi.items():
        if not isinstance(per_seed, list) or len(per_seed) != n_seeds or not all(
            isinstance(layers, list) and layers and all(_numbers(pair) and len(pair) == 2 for pair in layers)
            for layers in per_seed
        ):
            return f"'mi.{name}' must hold, per seed, a list of [I(X;T), I(T;Y)] pairs"
    grad = record.get("grad")
    if grad is not None and not (
        isinstance(grad, dict) and all(isinstance(v, list) and all(_numbers(layer) for layer in v) for v in grad.values())
    ):
        return "'grad' must map 'mean'/'std' to per-seed lists of numbers"
    return None

_SUMMARY_LIST_ITEMS = {"layers": str, "estimators": str, "layer_widths": int, "seeds": int}

# summary.json: the fields ibtui reads, and the JSON types each may have (None: absent or null).
_SUMMARY_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,), "ibtui_version": (str,), "status": (str,), "reason": (str, type(None)),
    "run_id": (str,), "name": (str,), "epoch": (int,), "epochs": (int,), "snapshots": (int,),
    "checkpoint_epoch": (int,), "elapsed_s": (int, float), "layers": (list,), "layer_widths": (list,),
    "seeds": (list,), "n_mi_samples": (int,), "h_y": (int, float), "max_ixt": (int, float),
    "dataset": (str,), "synthetic": (bool,), "device": (str,), "estimators": (list,),
    "started": (str,), "finished": (str,), "analysis": (dict,), "config_digest": (str,), "config": (dict,),
}

def summary_problem(summary: Any) -> str | None:
    """Why a parsed summary.json is not one ibtui can use (None when it is)."""
    if not isinstance(summary, dict):
        return f"it must be a JSON object, not {type(summary).__name__}"
    for key, kinds in _SUMMARY_TYPES.items():
        if key not in summary:
            continue
        value = summary[key]
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if ok and key in _SUMMARY_LIST_ITEMS:
            item = _SUMMARY_LIST_ITEMS[key]
            ok = all(isinstance(v, item) and not (isinstance(v, bool) and item is not bool) for v in value)
        if not ok:
            return f"the field '{key}' has the wrong type ({value!r:.40})"
    return None

@dataclass
class RunRecord:
    """A run directory read back: what ran, what was measured, how it ended."""

    path: Path
    config: RunConfig
    snapshots: list[Snapshot]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def layer_names(self) -> list[str]:
        return list(self.summary.get("layers", []))

    @property
    def estimators(self) -> list[str]:
        return list(self.snapshots[0].mi) if self.snapshots else list(self.config.info.estimators)

def load_run(run_dir: str | Path) -> RunRecord:
    """Read a run directory; anything missing, foreign or malformed is a StoreError naming it."""
    path = Path(run_dir)
    try:
        return _load_run(path)
    except OSError as exc:  # a name too long, a permission, an I/O error: one sentence
        raise StoreError(f"cannot read the run directory {path}: {exc.strerror or exc}") from None

def read_run_config(path: Path) -> RunConfig:
    """A run directory's config, or a StoreError saying in one sentence why it is not a run."""
    if not path.is_dir():
        raise StoreError(f"{path} is not a run directory (it does not exist)")
    if not (path / CONFIG_FILE).is_file():
        raise StoreError(f"{path} is not a run directory (it has no {CONFIG_FILE})")
    try:
        return load_toml(path / CONFIG_FILE)
    except ConfigError as exc:
        raise StoreError(f"{path} holds a run this ibtui cannot read: {exc}") from None

def _load_run(path: Path) -> RunRecord:
    config = read_run_config(path)
    summary: dict[str, Any] = {}
    if (path / SUMMARY_FILE).exists():
        try:
            summary = json.loads((path / SUMMARY_FILE).read_bytes())
        except (ValueError, RecursionError):
            raise StoreError(f"{path / SUMMARY_FILE} is damaged (not JSON)") from None
        problem = summary_problem(summary)
        if problem:
            raise StoreError(f"{path / SUMMARY_FILE} is damaged: {problem}")
    records, _ = read_snapshot_lines(path / SNAPSHOTS_FILE)
    for number, record in enumerate(records, start=1):
        problem = snapshot_record_problem(record)
        if problem:
            raise StoreError(f"{path / SNAPSHOTS_FILE} is damaged at line {number}: {problem}")
    snapshots = [Snapshot.from_record(r) for r in records]
    return RunRecord(path=path, config=config, snapshots=snapshots, summary=summary)
