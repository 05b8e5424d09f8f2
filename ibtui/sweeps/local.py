"""The local scheduler: up to K points at once, each an `ibtui run` (or `ibtui resume`) subprocess.

A subprocess per point gives every point the reliability rules of a single run for free: its
own run lock, atomic files, checkpoints, a stop that finishes the estimates in flight, PNGs at
the end. Each child gets OMP_NUM_THREADS = cores // K, so K points share the cores instead of
each sizing its thread pools for the whole machine (a point with one thread estimates inline,
without estimator processes).

Ctrl-C: the children run in their own sessions (the terminal's SIGINT does not reach them); the
first Ctrl-C stops launching points and forwards one SIGINT to each child (stop and save), a
second forwards another (skip the remaining estimates). The scheduler always waits for its
children, so no run is left without its final summary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ibtui.engine.processes import last_line
from ibtui.sweeps.display import NullDisplay, SweepDisplay
from ibtui.sweeps.points import FINISHED, LOGS_DIR, POINTS_DIR, RESUME, last_epoch, point_state, read_status
from ibtui.sweeps.spec import Point

POLL_S = 0.25


def default_workers(cores: int | None = None) -> int:
    """As many points at once as there are cores: each point runs one training thread and, with
    one thread of its own, estimates inline (no estimator process), so a point costs one core."""
    return max(1, cores or os.cpu_count() or 1)


def threads_per_point(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


@dataclass
class _Child:
    point: Point
    process: subprocess.Popen
    log: object
    run_dir: Path


def point_command(sweep_dir: Path, point: Point, state: str) -> list[str]:
    run_dir = sweep_dir / point.name
    if state == RESUME:
        return [sys.executable, "-m", "ibtui.cli", "resume", str(run_dir), "--quiet"]
    preset = sweep_dir / POINTS_DIR / f"{point.name}.toml"
    return [sys.executable, "-m", "ibtui.cli", "run", "--preset", str(preset), "--out", str(run_dir), "--quiet"]


class LocalScheduler:
    """Run the unfinished points of a sweep here; `run()` returns {point name: final status}."""

    def __init__(self, sweep_dir: Path, points: list[Point], workers: int | None = None,
                 display: SweepDisplay | None = None) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.points = points
        self.workers = workers or default_workers()
        self.display = display or NullDisplay()
        self.stops = 0  # Ctrl-C presses forwarded so far
        self.children: list[_Child] = []
        self.lock = threading.Lock()

    def request_stop(self) -> None:
        """What Ctrl-C does: no new points; every running child gets one SIGINT per request."""
        with self.lock:
            self.stops += 1
            for child in self.children:
                if child.process.poll() is None:
                    try:
                        child.process.send_signal(signal.SIGINT)
                    except ProcessLookupError:
                        pass

    def run(self) -> dict[str, str]:
        (self.sweep_dir / POINTS_DIR).mkdir(exist_ok=True)
        (self.sweep_dir / LOGS_DIR).mkdir(exist_ok=True)
        results: dict[str, str] = {}
        queue: list[tuple[Point, str]] = []
        for point in self.points:
            state = point_state(self.sweep_dir / point.name)
            if state == FINISHED:
                results[point.name] = FINISHED
            else:
                queue.append((point, state))
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, lambda *_: self.request_stop())
        try:
            while queue or self.children:
                while queue and len(self.children) < self.workers and not self.stops:
                    self._launch(*queue.pop(0))
                time.sleep(POLL_S)
                for child in list(self.children):
                    epoch = last_epoch(child.run_dir)
                    if epoch is not None:
                        self.display.point_progress(child.point.name, epoch)
                    if child.process.poll() is not None:
                        results[child.point.name] = self._ended(child)
                if self.stops and not self.children:
                    break
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            for child in self.children:  # only after an exception here: never leave children alone
                child.process.send_signal(signal.SIGINT)
                child.process.wait()
        for point, _ in queue:
            results[point.name] = "not started"
        return results

    def _launch(self, point: Point, state: str) -> None:
        from ibtui.runs.files import write_atomic

        run_dir = self.sweep_dir / point.name
        if state != RESUME:
            write_atomic(self.sweep_dir / POINTS_DIR / f"{point.name}.toml", point.config.to_toml().encode())
        env = dict(os.environ, OMP_NUM_THREADS=str(threads_per_point(self.workers)))
        log = open(self.sweep_dir / LOGS_DIR / f"{point.name}.log", "ab")
        process = subprocess.Popen(point_command(self.sweep_dir, point, state), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        with self.lock:
            self.children.append(_Child(point, process, log, run_dir))
        self.display.point_started(point.name, point.config.train.epochs, state == RESUME)

    def _ended(self, child: _Child) -> str:
        with self.lock:
            self.children.remove(child)
        child.log.close()
        status = read_status(child.run_dir) or "failed"
        if status == "running":  # killed before it could write its end
            status = "failed"
        reason = None
        if status == "failed":
            reason = last_line(self.sweep_dir / LOGS_DIR / f"{child.point.name}.log") or f"exit code {child.process.returncode}"
        self.display.point_ended(child.point.name, status, reason)
        return status
