"""The hand-over between the training thread and the UI: a lock-protected event buffer.

The worker pushes every event as the engine yields it; a UI timer drains the buffer a few times
per second. Progress events only matter as the latest one, so they are not queued; everything
else (RunStarted, Snapshot, RunFinished, RunFailed) is kept in order. Checkpoints carry the whole
training state and are of no use to the screen, so they are dropped here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ibtui.engine.events import Checkpoint, Event, Progress


@dataclass
class Drained:
    events: list[Event] = field(default_factory=list)
    progress: Progress | None = None

    def __bool__(self) -> bool:
        return bool(self.events) or self.progress is not None


class EventBuffer:
    """Thread-safe: push() from the worker, drain() from the UI."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._progress: Progress | None = None

    def push(self, event: Event) -> None:
        if isinstance(event, Checkpoint):
            return
        with self._lock:
            if isinstance(event, Progress):
                self._progress = event
            else:
                self._events.append(event)

    def drain(self) -> Drained:
        with self._lock:
            drained = Drained(self._events, self._progress)
            self._events = []
            self._progress = None
        return drained
