"""The files of a run directory: their names, atomic writes, and whether a folder can take a run.

Every file but the append-only log is replaced atomically (a temporary file, fsync, rename, fsync
of the directory), so a run killed at any moment leaves the old file or the new one, never a mix.
ibtui's own hidden files (the lock, a write probe, a temporary file left by a kill) never make a
folder "not empty" to the next run. The format of every file: docs/design.md, "The run directory".
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


from ibtui.errors import StoreError


CONFIG_FILE = "config.toml"

CONFIG_FILE = "config.toml"
SNAPSHOTS_FILE = "snapshots.jsonl"

SNAPSHOTS_FILE = "snapshots.jsonl"
SUMMARY_FILE = "summary.json"

SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"

CHECKPOINT_FILE = "checkpoint.pt"
ACTIVATIONS_DIR = "activations"

ACTIVATIONS_DIR = "activations"
LOCK_FILE = ".lock"

LOCK_FILE = ".lock"
PROBE_FILE = ".ibtui-write-test"

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

def json_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, allow_nan=True) + "\n").encode()

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
