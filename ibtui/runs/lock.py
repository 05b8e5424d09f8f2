"""One writer per run directory: an exclusive flock on RUN/.lock, with the holder's PID in it.

Every writer (a run, a resume, the app's engine, `ibtui estimate`, the recorder, a sweep's driver)
holds it from RunStore.create/reopen to close(), so a second writer is refused with the holder's
PID. The kernel drops a flock when its process dies, so a lock left by a killed run never blocks.
Readers (report, export, watch, compare) never lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


from ibtui.errors import StoreError
from ibtui.runs.files import FILE_MODE, LOCK_FILE


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
