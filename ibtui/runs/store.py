"""RunStore: the run directory written as events arrive, and reopened to resume.

RunStore.handle takes every event of the stream before any listener sees it: RunStarted writes
summary.json, each Snapshot is appended to snapshots.jsonl (and its activations saved with
info.save_activations), each Checkpoint is written atomically after an fsync of the log, and
RunFinished/RunFailed record the status and the verdicts. The store holds the run's writer lock
(runs/lock.py) from create/reopen to close().

Resume checks what it resumes: summary.json keeps a digest of the config the run started with
(config.toml edited later is refused, naming the field), the checkpoint carries the run's id and
that digest (a checkpoint copied from another run is refused), its epoch must lie within the
run's epochs, and the log must hold every scheduled snapshot up to it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ibtui import __version__
from ibtui.config import FORMAT_VERSION, RunConfig
from ibtui.errors import StoreError
from ibtui.engine.events import Checkpoint, Event, Progress, RunFailed, RunFinished, RunStarted, Snapshot
from ibtui.runs.files import (
    ACTIVATIONS_DIR, CHECKPOINT_FILE, CONFIG_FILE, SNAPSHOTS_FILE, SUMMARY_FILE, json_bytes, check_new_run_dir,
    check_writable, claim_run_dir, holds_anything, write_atomic,
)
from ibtui.runs.lock import RunLock
from ibtui.runs.record import RunRecord, is_whole, load_run, read_snapshot_lines


def config_digest(config: RunConfig) -> str:
    """sha256 of the config's canonical JSON: equal for equal settings, whatever the TOML layout."""
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()

def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for key, value in doc.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): doc}

def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The dotted names of the settings that differ between two config dicts."""
    a, b = _flat(before), _flat(after)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))

class RunStore:
    """Consumes the event stream of one run and keeps its directory up to date.

    Holds the run's writer lock (RunLock) from create/reopen until close().
    """

    def __init__(self, run_dir: Path, config: RunConfig, summary: dict[str, Any], lock: RunLock | None = None):
        self.path = run_dir
        self.config = config
        self.summary = summary
        self._lock = lock
        self._log: io.BufferedWriter | None = None
        self._resume_epoch = -1
        self._schedule: tuple[int, ...] | None = None
        self.status_recorded = True  # False once an end could not be written (a full disk)

    @classmethod
    def create(cls, run_dir: str | Path, config: RunConfig) -> RunStore:
        """A new run directory; refuses one that already holds anything, so nothing is overwritten."""
        path = Path(run_dir)
        check_new_run_dir(path)
        check_writable(path)  # creates the directory
        lock = RunLock(path)
        try:
            check_new_run_dir(path)  # again, under the lock: another writer may have come first
            digest = config_digest(config)
            summary = {
                "format_version": FORMAT_VERSION, "ibtui_version": __version__, "status": "created",
                "config_digest": digest, "config": config.to_dict(),
            }
            store = cls(path, config, summary, lock)
            write_atomic(path / CONFIG_FILE, config.to_toml().encode())
            store._write_summary()
        except BaseException:
            lock.release()
            raise
        return store

    @classmethod
    def claim_default(cls, root: str | Path, config: RunConfig) -> RunStore:
        """A new run in root/<name>-<date-time>: the directory made atomically, so that two runs
        started in the same second never share one (the second gets a -2, -3, ... suffix)."""
        path = claim_run_dir(root, config.name)
        try:
            return cls.create(path, config)
        except BaseException:
            try:
                if not holds_anything(path):
                    for child in path.iterdir():
                        child.unlink()
                    path.rmdir()
            except OSError:
                pass
            raise

    @classmethod
    def reopen(cls, run_dir: str | Path) -> tuple[RunStore, dict[str, Any] | None]:
        """An existing run, ready to be resumed: (store, checkpoint state or None to start over).

        Nothing is changed on disk: once the caller has checked that the run can go on (data,
        device, checkpoint), it calls discard_after_checkpoint() to drop the snapshots that the
        resumed run will measure again. On any refusal the lock is released.
        """
        path = Path(run_dir)
        record = load_run(path)  # a clear error for what is not a run, before any lock file is made
        lock = RunLock(path)
        try:
            record = load_run(path)  # read again under the lock: the last writer may just have ended
            state = _check_resumable(record)
            check_writable(path)
        except BaseException:
            lock.release()
            raise
        store = cls(path, record.config, record.summary, lock)
        store._resume_epoch = state["epoch"] if state else -1
        return store, state

    def discard_after_checkpoint(self) -> None:
        """Cut snapshots.jsonl after the checkpoint's epoch (all of it without a checkpoint), and
        drop the saved activations of those epochs, which the resumed run measures again."""
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
        folder = self.path / ACTIVATIONS_DIR
        if folder.is_dir():
            for child in folder.iterdir():
                epoch = _activation_epoch(child.name)
                if epoch is not None and epoch > keep_until:
                    child.unlink()
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

    def mark_failed(self, reason: str, status: str = "failed") -> bool:
        """Record an end that happened outside the event stream (an exception, an abort).

        Best effort: on a full or read-only disk the status cannot be written, and the run
        stays as the last successful write left it (resumable). Returns whether it was written.
        """
        self.summary.update(status=status, reason=reason)
        try:
            self._close_log()
        except OSError:
            pass
        try:
            self._write_summary()
        except OSError:
            self.status_recorded = False
        else:
            self.status_recorded = True
        return self.status_recorded

    def close(self) -> None:
        """Close the log and release the writer lock (the end of this store's life)."""
        try:
            self._close_log()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _close_log(self) -> None:
        if self._log is not None:
            log, self._log = self._log, None
            log.close()

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
        self._schedule = tuple(event.schedule)
        self.summary.setdefault("epoch", event.start_epoch)
        self.summary.setdefault("config_digest", config_digest(self.config))
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
        # The checkpoint says whose it is, so resume refuses one copied from another run.
        state = {**event.state, "run_id": event.run_id, "config_digest": self.summary.get("config_digest") or config_digest(self.config)}
        torch.save(state, buffer)
        write_atomic(self.path / CHECKPOINT_FILE, buffer.getvalue())
        self.summary.update(checkpoint_epoch=event.epoch)
        self._write_summary()

    def _finish(self, status: str, epoch: int, elapsed: float, reason: str | None) -> None:
        self._close_log()
        if status == "finished":
            missing = self.missing_snapshots()
            if missing:  # never "finished" with a hole in the record
                status = "failed"
                reason = f"the log lacks the snapshots of epochs {_epoch_list(missing)}"
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
        write_atomic(self.path / SUMMARY_FILE, json_bytes(self.summary))

    def missing_snapshots(self) -> list[int]:
        """The scheduled epochs that the log lacks (empty when the run saw no RunStarted)."""
        if self._schedule is None:
            return []
        records, _ = read_snapshot_lines(self.path / SNAPSHOTS_FILE)
        logged = {r["epoch"] for r in records}
        return [e for e in self._schedule if e not in logged]

def _epoch_list(epochs: list[int], show: int = 5) -> str:
    text = ", ".join(str(e) for e in epochs[:show])
    return text + (f" and {len(epochs) - show} more" if len(epochs) > show else "")

def _activation_epoch(name: str) -> int | None:
    if name.startswith("epoch_") and name.endswith(".npz") and name[6:-4].isdigit():
        return int(name[6:-4])
    return None

def _check_resumable(record: RunRecord) -> dict[str, Any] | None:
    """Refuse a run that cannot go on as it started; return its checkpoint state (None: start over)."""
    path = record.path
    summary = record.summary
    if summary.get("status") == "finished":
        raise StoreError(f"{path} holds a finished run; there is nothing to resume")
    if summary.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise StoreError(f"{path} was written by an incompatible ibtui version ({summary.get('ibtui_version')})")
    digest = config_digest(record.config)
    started_with = summary.get("config_digest")
    if started_with is not None and started_with != digest:
        changed = changed_fields(summary["config"], record.config.to_dict()) if isinstance(summary.get("config"), dict) else []
        what = f" ({', '.join(changed[:5])} changed)" if changed else ""
        raise StoreError(
            f"{path / CONFIG_FILE} was edited after the run started{what}; resuming would mix two settings in one "
            f"record: restore it, or start a new run with the new settings"
        )
    ckpt = path / CHECKPOINT_FILE
    if not ckpt.exists():
        return None
    import torch

    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise StoreError(
            f"the checkpoint {ckpt} is damaged and cannot be loaded ({type(exc).__name__}); move it away to start the run over"
        ) from None
    if not isinstance(state, dict) or not is_whole(state.get("epoch")):
        raise StoreError(f"the checkpoint {ckpt} is not an ibtui checkpoint; move it away to start the run over")
    epochs = record.config.train.epochs
    if not 0 <= state["epoch"] <= epochs:
        raise StoreError(f"the checkpoint {ckpt} is at epoch {state['epoch']}, outside this run's 0 to {epochs} epochs; it belongs to another run")
    run_id = summary.get("run_id")
    if "run_id" in state or started_with is not None:  # checkpoints of runs older than these keys carry neither
        if state.get("run_id") != run_id or state.get("config_digest") != digest:
            raise StoreError(f"the checkpoint {ckpt} was written by another run (or another configuration); move it away to start the run over")
    from ibtui.engine.schedule import snapshot_epochs

    logged = [s.epoch for s in record.snapshots if s.epoch <= state["epoch"]]
    wanted = [e for e in snapshot_epochs(record.config.info, epochs) if e <= state["epoch"]]
    if logged != wanted:
        missing = sorted(set(wanted) - set(logged))
        detail = f"lacks the snapshots of epochs {_epoch_list(missing)}" if missing else "holds snapshots out of order or twice"
        raise StoreError(
            f"{path / SNAPSHOTS_FILE} {detail} before the checkpoint at epoch {state['epoch']}, and they cannot be measured "
            f"again without training from the start; move {CHECKPOINT_FILE} away to start the run over"
        )
    return state
