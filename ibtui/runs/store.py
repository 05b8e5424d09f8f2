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

One writer at a time: every RunStore holds an exclusive flock on RUN/.lock from create/reopen to
close(), with the holder's PID written in the file, so a second run, resume or estimate into the
same directory is refused with that PID. The kernel drops a flock when its process dies, so a
lock left by a killed run never blocks. Readers (report, export, watch) never lock.

Resume checks what it resumes: summary.json keeps a digest of the config the run started with
(config.toml edited later is refused, naming the field), the checkpoint carries the run's id and
that digest (a checkpoint copied from another run is refused), its epoch must lie within the
run's epochs, and the log must hold every scheduled snapshot up to it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
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
LOCK_FILE = ".lock"
PROBE_FILE = ".ibtui-write-test"
# ibtui's own hidden files: never a reason to call a directory "not empty" (a lock left by an
# earlier attempt, a write probe or temporary file left by a process killed at that moment).
_OWN_HIDDEN_PREFIXES = (LOCK_FILE, PROBE_FILE, f".{CONFIG_FILE}.", f".{SUMMARY_FILE}.")


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
    fsync_dir(path.parent)  # the rename itself survives a power cut only once the directory is synced


def fsync_dir(path: Path) -> None:
    """Make the directory's entries (renames, new files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot sync a directory; that is not a failure
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


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


def own_hidden_file(name: str) -> bool:
    return name.startswith(_OWN_HIDDEN_PREFIXES)


def holds_anything(path: Path) -> bool:
    """Whether a directory holds anything but ibtui's own hidden bookkeeping files."""
    return any(not own_hidden_file(child.name) for child in path.iterdir())


def check_new_run_dir(path: Path) -> None:
    """Refuse a --out that cannot take a new run (it holds a run, or other files): StoreError."""
    try:
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path} exists and is not a directory")
        if path.is_dir() and holds_anything(path):
            if (path / CONFIG_FILE).exists():
                raise StoreError(f"{path} already holds a run; choose another --out or continue it with 'ibtui resume {path}'")
            raise StoreError(f"{path} is not empty; choose an empty or new directory for --out")
    except OSError as exc:
        raise StoreError(f"cannot use {path} as a run directory: {exc.strerror or exc}") from None


class RunLock:
    """An exclusive flock on RUN/.lock, with the holder's PID in the file, until release().

    release() removes the file while still holding the lock, so a finished run leaves nothing
    behind; a process that opened the old file just before checks after locking that the path
    still names the file it locked, and retries with the new one otherwise (the usual pattern
    that keeps unlink-on-release from letting two writers in).
    """

    def __init__(self, run_dir: Path) -> None:
        self._fd: int | None = None
        self.path = run_dir / LOCK_FILE
        for _ in range(100):
            fd = self._open(run_dir)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    who = f"process {holder}" if holder else "another process"
                    raise StoreError(
                        f"{run_dir} is being written by {who} (a run, resume or estimate); wait for it to end or stop it first"
                    ) from None
                raise StoreError(f"cannot lock the run directory {run_dir}: {exc.strerror or exc}") from None
            if self._still_ours(fd):
                break
            os.close(fd)  # the holder removed it as we locked it: lock the new one
        else:  # pragma: no cover - a hundred lost races in a row
            raise StoreError(f"cannot lock the run directory {run_dir}: the lock file keeps changing")
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the lock holds without the PID (a full disk); only the message is poorer

    def _open(self, run_dir: Path) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise StoreError(f"cannot lock the run directory {run_dir}: {exc.strerror or exc}") from None

    def _still_ours(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                self.path.unlink(missing_ok=True)  # while locked: see the class docstring
            except OSError:
                pass  # a read-only or full disk: the file stays, harmless (ignored, not locked)
            os.close(fd)  # closing the descriptor drops the flock

    def __del__(self) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


@contextmanager
def locked_run(run_dir: str | Path) -> Iterator[RunLock]:
    """Hold the run's writer lock for a block (`ibtui estimate` writing into RUN/estimates)."""
    lock = RunLock(Path(run_dir))
    try:
        yield lock
    finally:
        lock.release()


def _json_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, allow_nan=True) + "\n").encode()


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
_PER_SEED = ("train_loss", "test_loss", "train_acc", "test_acc")


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
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
    if not _is_whole(record["epoch"]) or record["epoch"] < 0:
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


# summary.json: the fields ibtui reads, and the JSON types each may have (None: absent or null).
_SUMMARY_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,), "ibtui_version": (str,), "status": (str,), "reason": (str, type(None)),
    "run_id": (str,), "name": (str,), "epoch": (int,), "epochs": (int,), "snapshots": (int,),
    "checkpoint_epoch": (int,), "elapsed_s": (int, float), "layers": (list,), "layer_widths": (list,),
    "seeds": (list,), "n_mi_samples": (int,), "h_y": (int, float), "max_ixt": (int, float),
    "dataset": (str,), "synthetic": (bool,), "device": (str,), "estimators": (list,),
    "started": (str,), "finished": (str,), "analysis": (dict,), "config_digest": (str,), "config": (dict,),
}
_SUMMARY_LIST_ITEMS = {"layers": str, "estimators": str, "layer_widths": int, "seeds": int}


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


def check_writable(run_dir: Path) -> None:
    """Fail before training if the directory cannot hold a run (permissions, full disk)."""
    probe = run_dir / PROBE_FILE
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            with open(probe, "wb") as handle:
                handle.write(b"\0" * 65536)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            probe.unlink(missing_ok=True)  # never left behind, even when the write failed
    except OSError as exc:
        raise StoreError(f"cannot write the run directory {run_dir}: {exc.strerror or exc}") from None


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
        write_atomic(self.path / SUMMARY_FILE, _json_bytes(self.summary))

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


def claim_run_dir(root: str | Path, name: str) -> Path:
    """Make root/<name>-<date-time>[-N] with mkdir, which fails if another process made it first."""
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for suffix in range(1, 10_000):
            path = root / (f"{name}-{stamp}" if suffix == 1 else f"{name}-{stamp}-{suffix}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as exc:
        raise StoreError(f"cannot make a run directory in {root}: {exc.strerror or exc}") from None
    raise StoreError(f"{root} already holds 10,000 runs named {name}-{stamp}; choose an --out")


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
    if not isinstance(state, dict) or not _is_whole(state.get("epoch")):
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
