"""Follow a run directory that another process writes, reading only what it appends.

`ibtui watch RUN` shows a run it did not start: a recorder in someone's script, `ibtui run` in a
tmux on another box, a run on a shared filesystem. It has no connection to the writer; the run
directory is the interface (docs/design.md: config.toml, summary.json, snapshots.jsonl).

RunFollower.poll() turns what appeared since the last call into the engine's own events
(RunStarted, Snapshot, RunFinished/RunFailed), so the app draws a watched run exactly as one it
trains. It never writes, never takes the run's lock, and reads each byte of snapshots.jsonl once:
it keeps its offset, reads only the new bytes, and holds back a last line without its newline (a
write in progress) until the rest arrives. summary.json (written atomically by RunStore) is read
again only when its size or modification time changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ibtui.config import RunConfig
from ibtui.engine.events import Event, RunFailed, RunFinished, RunStarted, Snapshot
from ibtui.engine.schedule import snapshot_epochs
from ibtui.errors import StoreError
from ibtui.runs.files import SNAPSHOTS_FILE, SUMMARY_FILE
from ibtui.runs.record import read_run_config

ENDED = ("finished", "interrupted", "failed")


def open_run(run_dir: str | Path) -> tuple[Path, RunConfig]:
    """The run directory and its config, or a StoreError saying in one sentence why not."""
    path = Path(run_dir)
    return path, read_run_config(path)


class RunFollower:
    """Incremental, read-only reader of one run directory (see the module docstring)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path, self.config = open_run(run_dir)
        self.run_id = ""
        self.started: RunStarted | None = None
        self.summary: dict[str, Any] = {}
        self.ended = False
        self.snapshots_read = 0
        self.skipped_lines = 0  # complete lines that did not parse (a damaged log): left out
        self._offset = 0  # bytes of snapshots.jsonl consumed (complete lines only)
        self._partial = b""  # a last line still being written
        self._summary_stamp: tuple[int, int] | None = None

    # -- reading --------------------------------------------------------------------------------

    def _read_summary(self) -> bool:
        """Re-read summary.json if it changed; True when it did."""
        try:
            stat = os.stat(self.path / SUMMARY_FILE)
        except FileNotFoundError:
            return False
        stamp = (stat.st_size, stat.st_mtime_ns)
        if stamp == self._summary_stamp:
            return False
        try:
            summary = json.loads((self.path / SUMMARY_FILE).read_text())
        except (OSError, ValueError):  # replaced under us: the next poll reads the new one
            return False
        if not isinstance(summary, dict):
            return False
        self._summary_stamp = stamp
        self.summary = summary
        return True

    def _new_lines(self) -> list[bytes]:
        try:
            with open(self.path / SNAPSHOTS_FILE, "rb") as log:
                size = os.fstat(log.fileno()).st_size
                if size < self._offset:  # rewritten from the start (a resume dropped a tail)
                    raise StoreError(f"{self.path / SNAPSHOTS_FILE} was rewritten while being watched")
                log.seek(self._offset + len(self._partial))
                data = log.read()
        except FileNotFoundError:
            return []
        if not data:
            return []
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        self._offset += sum(len(line) + 1 for line in lines)
        return lines

    def _started_event(self) -> RunStarted | None:
        s = self.summary
        try:
            return RunStarted(
                run_id=str(s.get("run_id", "")), config=self.config,
                layer_names=tuple(s["layers"]), layer_widths=tuple(s.get("layer_widths", ())),
                seeds=tuple(s.get("seeds", (self.config.train.seed,))),
                n_mi_samples=int(s["n_mi_samples"]), h_y=float(s["h_y"]),
                schedule=tuple(snapshot_epochs(self.config.info, self.config.train.epochs)),
                start_epoch=0, device=str(s.get("device", "?")), dataset=str(s.get("dataset", "")),
                synthetic=bool(s.get("synthetic", False)),
            )
        except (KeyError, TypeError, ValueError):  # not written yet, or not by a RunStore we know
            return None

    def poll(self) -> list[Event]:
        """What happened since the last call, as engine events, in order."""
        events: list[Event] = []
        changed = self._read_summary()
        if self.started is None:
            if not changed:
                return events
            self.started = self._started_event()
            if self.started is None:
                return events
            self.run_id = self.started.run_id
            events.append(self.started)
        for line in self._new_lines():
            try:
                events.append(Snapshot.from_record(json.loads(line), run_id=self.run_id))
            except (ValueError, TypeError):
                self.skipped_lines += 1
                continue
            self.snapshots_read += 1
        status = self.summary.get("status")
        # RunStore writes the final summary after closing the log: all snapshots are in by now,
        # but a torn last line means the writer died mid-write; it stays out.
        if not self.ended and changed and status in ENDED:
            self.ended = True
            epoch = int(self.summary.get("epoch", 0) or 0)
            elapsed = float(self.summary.get("elapsed_s", 0.0) or 0.0)
            if status == "failed":
                events.append(RunFailed(self.run_id, str(self.summary.get("reason") or "the run failed"), epoch, elapsed))
            else:
                events.append(RunFinished(self.run_id, status, epoch, elapsed))
        return events
