"""The run directory: written as events arrive, read back, resumed.

    config.toml       exactly what ran (the resolved config, seeds included)
    snapshots.jsonl   one JSON line per snapshot, appended and flushed as written
    summary.json      status (running, finished, interrupted, failed), progress, layer facts, analysis
    checkpoint.pt     the training state, written atomically every few snapshots and at the end
    activations/      with info.save_activations: each snapshot's activations, float16, compressed
    *.png             the figures, written by ibtui.export once a run stops

Every file but the append-only log is replaced atomically (temporary file, fsync, rename), so a
run killed at any moment leaves a directory that `ibtui resume` accepts. A torn last line of
snapshots.jsonl (a kill in the middle of a write) is detected and dropped.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ibtui import __version__
from ibtui.config import FORMAT_VERSION, RunConfig, load_toml
from ibtui.errors import ConfigError, StoreError
from ibtui.engine.events import Checkpoint, Event, Progress, RunFailed, RunFinished, RunStarted, Snapshot

CONFIG_FILE = "config.toml"
SNAPSHOTS_FILE = "snapshots.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
ACTIVATIONS_DIR = "activations"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not thread-safe later.
FILE_MODE = 0o666 & ~_umask()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace path with data so that readers see the old file or the new one, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600 files; a run's files are ordinary files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, allow_nan=True) + "\n").encode()


def read_snapshot_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The snapshot records of a JSONL file and the byte length of its intact part.

    A last line without its newline, or one that does not parse, is a torn write and is left
    out; a bad line before the last one means the file was damaged otherwise: StoreError.
    """
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):  # the last piece has no newline after it
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) - 1:
                break
            raise StoreError(f"{path} is damaged at line {number} (not a JSON record)") from None
        good += len(line) + 1
    return records, good


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
    """Read a run directory; anything missing or foreign is a StoreError naming the directory."""
    path = Path(run_dir)
    if not path.is_dir():
        raise StoreError(f"{path} is not a run directory (it does not exist)")
    if not (path / CONFIG_FILE).exists():
        raise StoreError(f"{path} is not a run directory (it has no {CONFIG_FILE})")
    try:
        config = load_toml(path / CONFIG_FILE)
    except ConfigError as exc:
        raise StoreError(f"{path} holds a run this ibtui cannot read: {exc}") from None
    summary: dict[str, Any] = {}
    if (path / SUMMARY_FILE).exists():
        try:
            summary = json.loads((path / SUMMARY_FILE).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreError(f"{path / SUMMARY_FILE} is damaged (not JSON)") from None
    records, _ = read_snapshot_lines(path / SNAPSHOTS_FILE)
    try:
        snapshots = [Snapshot.from_record(r) for r in records]
    except TypeError:
        raise StoreError(f"{path / SNAPSHOTS_FILE} holds records of another format") from None
    return RunRecord(path=path, config=config, snapshots=snapshots, summary=summary)


def check_writable(run_dir: Path) -> None:
    """Fail before training if the directory cannot hold a run (permissions, full disk)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".ibtui-write-test"
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 65536)
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        raise StoreError(f"cannot write the run directory {run_dir}: {exc.strerror or exc}") from None


class RunStore:
    """Consumes the event stream of one run and keeps its directory up to date."""

    def __init__(self, run_dir: Path, config: RunConfig, summary: dict[str, Any]):
        self.path = run_dir
        self.config = config
        self.summary = summary
        self._log: io.BufferedWriter | None = None
        self._resume_epoch = -1

    @classmethod
    def create(cls, run_dir: str | Path, config: RunConfig) -> RunStore:
        """A new run directory; refuses one that already holds anything, so nothing is overwritten."""
        path = Path(run_dir)
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path} exists and is not a directory")
        if path.exists() and any(path.iterdir()):
            if (path / CONFIG_FILE).exists():
                raise StoreError(f"{path} already holds a run; choose another --out or continue it with 'ibtui resume {path}'")
            raise StoreError(f"{path} is not empty; choose an empty or new directory for --out")
        check_writable(path)
        store = cls(path, config, {"format_version": FORMAT_VERSION, "ibtui_version": __version__, "status": "created"})
        write_atomic(path / CONFIG_FILE, config.to_toml().encode())
        store._write_summary()
        return store

    @classmethod
    def reopen(cls, run_dir: str | Path) -> tuple[RunStore, dict[str, Any] | None]:
        """An existing run, ready to be resumed: (store, checkpoint state or None to start over).

        Nothing is changed on disk: once the caller has checked that the run can go on (data,
        device, checkpoint), it calls discard_after_checkpoint() to drop the snapshots that the
        resumed run will measure again.
        """
        record = load_run(run_dir)
        path = record.path
        status = record.summary.get("status")
        if status == "finished":
            raise StoreError(f"{path} holds a finished run; there is nothing to resume")
        if record.summary.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise StoreError(f"{path} was written by an incompatible ibtui version ({record.summary.get('ibtui_version')})")
        check_writable(path)
        state = None
        ckpt = path / CHECKPOINT_FILE
        if ckpt.exists():
            import torch

            try:
                state = torch.load(ckpt, map_location="cpu", weights_only=True)
            except Exception as exc:  # torch raises many types for a damaged file
                raise StoreError(
                    f"the checkpoint {ckpt} is damaged and cannot be loaded ({type(exc).__name__}); "
                    "move it away to start the run over"
                ) from None
            if not isinstance(state, dict) or "epoch" not in state:
                raise StoreError(f"the checkpoint {ckpt} is not an ibtui checkpoint; move it away to start the run over")
        store = cls(path, record.config, record.summary)
        store._resume_epoch = state["epoch"] if state else -1
        return store, state

    def discard_after_checkpoint(self) -> None:
        """Cut snapshots.jsonl after the checkpoint's epoch (all of it without a checkpoint)."""
        keep_until = self._resume_epoch
        log = self.path / SNAPSHOTS_FILE
        records, good = read_snapshot_lines(log)
        kept = [r for r in records if r["epoch"] <= keep_until]
        lines = log.read_bytes()[:good].split(b"\n") if kept else []
        cut = sum(len(line) + 1 for line in lines[: len(kept)])
        if log.exists():
            with open(log, "r+b") as handle:
                handle.truncate(cut)
                os.fsync(handle.fileno())
        self.summary.update(snapshots=len(kept), epoch=max(keep_until, 0))

    # -- events ------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if isinstance(event, Snapshot):
            self._append(event)
        elif isinstance(event, Progress):
            return
        elif isinstance(event, Checkpoint):
            self._checkpoint(event)
        elif isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, RunFinished):
            self._finish(event.status, event.epoch, event.elapsed_s, None)
        elif isinstance(event, RunFailed):
            self._finish("failed", event.epoch, event.elapsed_s, event.reason)

    def mark_failed(self, reason: str) -> None:
        """Record a failure that happened outside the event stream (an exception)."""
        self.summary.update(status="failed", reason=reason)
        self.close()
        self._write_summary()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _started(self, event: RunStarted) -> None:
        self.summary.update(
            run_id=event.run_id,
            name=self.config.name,
            status="running",
            reason=None,
            epochs=self.config.train.epochs,
            layers=list(event.layer_names),
            layer_widths=list(event.layer_widths),
            seeds=list(event.seeds),
            n_mi_samples=event.n_mi_samples,
            h_y=event.h_y,
            max_ixt=event.max_ixt,
            dataset=event.dataset,
            synthetic=event.synthetic,
            device=event.device,
            estimators=list(self.config.info.estimators),
        )
        self.summary.setdefault("epoch", event.start_epoch)
        self.summary.setdefault("started", time.strftime("%Y-%m-%dT%H:%M:%S"))
        self._log = open(self.path / SNAPSHOTS_FILE, "ab")
        self._write_summary()

    def _append(self, snapshot: Snapshot) -> None:
        if self._log is None:
            self._log = open(self.path / SNAPSHOTS_FILE, "ab")
        line = json.dumps(snapshot.to_record(), separators=(",", ":"), allow_nan=True)
        self._log.write(line.encode() + b"\n")
        self._log.flush()
        if snapshot.activations is not None:
            folder = self.path / ACTIVATIONS_DIR
            folder.mkdir(exist_ok=True)
            arrays = {f"layer{i}": a for i, a in enumerate(snapshot.activations)}
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            write_atomic(folder / f"epoch_{snapshot.epoch:07d}.npz", buffer.getvalue())
        self.summary.update(epoch=snapshot.epoch, elapsed_s=snapshot.elapsed_s)
        self.summary["snapshots"] = self.summary.get("snapshots", 0) + 1

    def _checkpoint(self, event: Checkpoint) -> None:
        import torch

        if self._log is not None:
            os.fsync(self._log.fileno())
        buffer = io.BytesIO()
        torch.save(event.state, buffer)
        write_atomic(self.path / CHECKPOINT_FILE, buffer.getvalue())
        self.summary.update(checkpoint_epoch=event.epoch)
        self._write_summary()

    def _finish(self, status: str, epoch: int, elapsed: float, reason: str | None) -> None:
        self.close()
        self.summary.update(status=status, epoch=epoch, elapsed_s=round(elapsed, 3), reason=reason)
        self.summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        try:  # the verdicts are a bonus: a bug in them must never cost the run its summary
            from ibtui.runs.analysis import analyse_snapshots

            records, _ = read_snapshot_lines(self.path / SNAPSHOTS_FILE)
            self.summary["analysis"] = analyse_snapshots(records, self.summary.get("layers"))
        except Exception as exc:  # noqa: BLE001
            self.summary["analysis"] = {"error": f"{type(exc).__name__}: {exc}"}
        self._write_summary()

    def _write_summary(self) -> None:
        write_atomic(self.path / SUMMARY_FILE, _json_bytes(self.summary))
