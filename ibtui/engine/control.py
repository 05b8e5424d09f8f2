"""How the outside world steers a running engine: stop and pause flags, and the run's clock."""

from __future__ import annotations

import multiprocessing
import time


class Stopwatch:
    """Seconds of training so far: earlier sessions of a resumed run included, pauses left out."""

    def __init__(self, before: float = 0.0) -> None:
        self.start = time.perf_counter() - before

    def __call__(self) -> float:
        return time.perf_counter() - self.start

    def exclude(self, seconds: float) -> None:
        self.start += seconds


class RunControl:
    """Stop and pause switches that the engine checks at every step boundary.

    Two flags, in shared memory when the engine runs in another process (`shared=True`): reading
    one costs a tenth of a microsecond, where a multiprocessing.Event takes a lock at every step.
    """

    def __init__(self, shared: bool = False) -> None:
        self._flags = multiprocessing.get_context("spawn").RawArray("b", 2) if shared else bytearray(2)  # stop, pause

    def request_stop(self) -> None:
        self._flags[0] = 1
        self._flags[1] = 0  # a paused run must wake up to stop

    def pause(self) -> None:
        self._flags[1] = 1

    def resume(self) -> None:
        self._flags[1] = 0

    @property
    def stop_requested(self) -> bool:
        return bool(self._flags[0])

    @property
    def paused(self) -> bool:
        return bool(self._flags[1])

    def wait_while_paused(self) -> None:
        while self._flags[1] and not self._flags[0]:
            time.sleep(0.02)


class StopRequested(Exception):
    """A stop was requested while the engine waited for estimates."""
