"""The snapshot pipeline: information-plane estimates made beside training, events handed back in order.

Training yields a PendingSnapshot at each snapshot epoch (activations copied, losses taken); the
pipeline estimates it on a worker and yields the Snapshot events in epoch order. Checkpoints
queue behind the snapshots before them, so a checkpoint never runs ahead of the snapshots on
disk and training never waits for the estimates to take one.

Where the estimates run: on a CPU with several cores, training takes one core and the estimates
the rest (a thread for small jobs; for big ones estimator processes, workers.py, since a thread
fights training for the GIL); once training is done they take every core. On one core, or on
CUDA, estimates are made in line. How far training may run ahead is bounded (MAX_BACKLOG_S of
estimating, MAX_PENDING snapshots, MAX_PENDING_BYTES of activations), so the progress bar stays
honest and a stop has little to finish.

A stop (finish) keeps every snapshot already taken: it waits for their estimates, yielding
Stopping events, unless the run is aborted. Each PendingSnapshot carries the training state at
its epoch, so an aborted stop can still checkpoint at the last snapshot it kept (last_kept).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass

import numpy as np
import torch

from ibtui import estimators
from ibtui.config import InfoConfig
from ibtui.engine import workers
from ibtui.engine.control import RunControl, StopRequested
from ibtui.engine.events import Checkpoint, Event, Snapshot, Stopping


@dataclass
class PendingSnapshot:
    """A snapshot's measurements taken at its epoch, waiting for the information estimate."""

    layers: list[torch.Tensor]  # per layer (seeds, N, width), the values MI is measured on
    labels: np.ndarray
    info: InfoConfig
    complete: Callable[[dict], Snapshot]  # the estimate -> the Snapshot event
    epoch: int = 0
    state: dict | None = None  # the training state right after this epoch: a checkpoint's
    inputs: np.ndarray | None = None  # the MI samples' X, for the estimators that need it (ksg, edge)

    def estimate_here(self) -> Snapshot:
        return self.complete(estimators.estimate_info_plane(self.layers, self.labels, self.info, self.inputs))

    @property
    def nbytes(self) -> int:
        return sum(layer.element_size() * layer.nelement() for layer in self.layers)


@dataclass
class _Queued:
    """An entry of the pipeline: a snapshot (submitted once a worker is free) or a checkpoint."""

    pending: PendingSnapshot | None = None
    checkpoint: Checkpoint | None = None
    future: Future | None = None

    @property
    def running(self) -> bool:
        return self.future is not None and not self.future.done()


class SnapshotPipeline:
    """The queue of snapshots (and checkpoints behind them) between training and the store."""

    # How far training may run ahead of the estimates: far enough that it never waits for a
    # slow one and that the estimates of the last stretch get every core once training ends,
    # but no more than MAX_BACKLOG_S of estimating, so the progress bar (which counts epochs
    # trained) stays honest and a stop has little to finish.
    MIN_PENDING = 4
    MAX_PENDING = 64
    MAX_BACKLOG_S = 6.0
    STOP_POLL_S = 0.05  # how often a wait for an estimate checks for a stop request
    MAX_PENDING_BYTES = 256 << 20  # and the activations they hold

    def __init__(self, device: torch.device, control: RunControl, kde_pairs: float = 0.0) -> None:
        self.control = control
        self.on_cpu = device.type == "cpu"
        self.threads_before = torch.get_num_threads()
        self.pending: deque[_Queued] = deque()
        self.pool: Executor | None = None
        self.training_done = False
        self.training_waits = False  # for the estimates to catch up
        self.dropped = False  # an aborted stop left estimates unfinished
        self.last_kept: tuple[int, dict] | None = None  # (epoch, state) of the last snapshot yielded
        self.estimate_seconds: float | None = None  # a running mean of how long one takes
        cores = self.threads_before
        # Estimates in flight at once, while training runs and after; threads per estimate.
        self.workers_during = self.workers_after = 1
        self.busy_threads = max(1, cores - 1)
        if self.on_cpu and cores >= 2:
            if kde_pairs >= workers.PROCESS_MIN_PAIRS:
                self._start_processes(cores)
            else:
                self.pool = ThreadPoolExecutor(1, "ibtui-mi")
        if self.on_cpu:
            torch.set_num_threads(1)

    def _start_processes(self, cores: int) -> None:
        processes, threads = workers.pool_shape(cores)
        self.workers_during = max(1, min(processes, (cores - 1) // threads))
        self.workers_after = processes
        self.pool = workers.estimator_pool(processes, threads)

    def submit(self, pending: PendingSnapshot) -> Iterator[Event]:
        """Queue a snapshot's estimate; yields the oldest events if too many are waiting. A stop
        request ends such a wait with StopRequested (the snapshot stays queued)."""
        if self.pool is None:
            yield self._kept(pending, pending.estimate_here())
            return
        self.pending.append(_Queued(pending))
        self._pump()
        while self._backlog_too_large():
            # Training waits here, so its core is free for estimates meanwhile.
            self.training_waits = True
            try:
                event = self._next(lambda: self.control.stop_requested)
            finally:
                self.training_waits = False
            yield event

    def add_checkpoint(self, checkpoint: Checkpoint) -> Iterator[Event]:
        """A checkpoint, yielded once every snapshot submitted before it has been."""
        if not self.pending:
            yield checkpoint
        else:
            self.pending.append(_Queued(checkpoint=checkpoint))

    def training_threads(self) -> int:
        """Cores the training step may use now: every one while no estimate is in flight (they
        start and end between epochs), else the one left to it."""
        if not self.on_cpu or any(queued.running for queued in self.pending):
            return 1
        return self.threads_before

    def training_finished(self) -> None:
        """From now on the estimates may use every core."""
        self.training_done = True
        self._pump()

    def _backlog_too_large(self) -> bool:
        snapshots = [q.pending for q in self.pending if q.pending is not None]
        limit = self.MAX_PENDING
        if self.estimate_seconds:
            limit = min(limit, max(self.MIN_PENDING, int(self.MAX_BACKLOG_S * self.workers_during / self.estimate_seconds)))
        return len(snapshots) > limit or (len(snapshots) > 1 and sum(p.nbytes for p in snapshots) > self.MAX_PENDING_BYTES)

    def _pump(self) -> None:
        """Hand the oldest waiting snapshots to the free workers."""
        limit = self.workers_after if self.training_done or self.training_waits else self.workers_during
        running = sum(q.running for q in self.pending)
        for queued in self.pending:
            if running >= limit:
                break
            if queued.pending is not None and queued.future is None:
                queued.future = self._submit(queued.pending)
                running += 1

    def _submit(self, pending: PendingSnapshot) -> Future:
        """The estimate's future: in an estimator process, or in a thread if processes fail."""
        if isinstance(self.pool, ProcessPoolExecutor):
            layers = [layer.numpy() for layer in pending.layers]  # pickles as plain buffers
            try:
                return self.pool.submit(workers.timed_estimate, layers, pending.labels, pending.info, pending.inputs)
            except BrokenExecutor:
                self._fall_back_to_thread()
        return self.pool.submit(self._estimate_in_thread, pending)

    def _estimate_in_thread(self, pending: PendingSnapshot) -> tuple[dict, float]:
        torch.set_num_threads(self.threads_before if self.training_done or self.training_waits else self.busy_threads)
        return workers.timed_estimate(pending.layers, pending.labels, pending.info, pending.inputs)

    def _kept(self, pending: PendingSnapshot, snapshot: Snapshot) -> Snapshot:
        if pending.state is not None:
            self.last_kept = (pending.epoch, pending.state)
        return snapshot

    def _next(self, interrupt: Callable[[], bool] = lambda: False) -> Event:
        """The oldest event, waiting for its estimate; StopRequested when interrupt() turns
        true during the wait (the event stays queued)."""
        head = self.pending[0]
        if head.pending is None:
            return self.pending.popleft().checkpoint
        while True:
            self._pump()
            if head.future.done():
                break
            # Wake on any estimate finishing, so a free worker gets the next one at once.
            futures_wait([q.future for q in self.pending if q.running], timeout=self.STOP_POLL_S, return_when=FIRST_COMPLETED)
            if head.future.done():
                break
            if interrupt():
                raise StopRequested
        try:
            estimate, seconds = head.future.result()
        except BrokenExecutor:
            # An estimator process could not start or died (a sandbox without process spawning,
            # the OOM killer): measure in a thread instead, from now on.
            self.pending.popleft()
            self._fall_back_to_thread()
            return self._kept(head.pending, head.pending.estimate_here())
        self.pending.popleft()
        self.estimate_seconds = seconds if self.estimate_seconds is None else 0.8 * self.estimate_seconds + 0.2 * seconds
        self._pump()
        return self._kept(head.pending, head.pending.complete(estimate))

    def _fall_back_to_thread(self) -> None:
        """Replace a broken process pool by a thread; every queued snapshot is submitted again
        by the next _pump (not here: the caller may be submitting one itself)."""
        if isinstance(self.pool, ProcessPoolExecutor):
            workers.release(self.pool)
            self.pool = ThreadPoolExecutor(1, "ibtui-mi")
            self.workers_during = self.workers_after = 1
            for queued in self.pending:
                queued.future = None

    def ready(self) -> Iterator[Event]:
        """The events whose estimates are done, in order, without waiting."""
        self._pump()
        while self.pending and (self.pending[0].pending is None or (self.pending[0].future is not None and self.pending[0].future.done())):
            yield self._next()

    def drain(self) -> Iterator[Event]:
        """Every queued event, waiting for the estimates; StopRequested on a stop request."""
        while self.pending:
            yield self._next(lambda: self.control.stop_requested)

    def waiting(self) -> int:
        """Snapshots whose estimates are still to come."""
        return sum(q.pending is not None for q in self.pending)

    def finish(self, run_id: str) -> Iterator[Event]:
        """After a stop: every queued event, with Stopping(pending) before each wait for an
        estimate, unless the run is aborted (then the rest is dropped). Returns whether every
        snapshot taken was kept."""
        self.training_finished()
        while self.pending:
            if self.pending[0].pending is not None:
                yield Stopping(run_id, self.waiting())
            try:
                event = self._next(lambda: self.control.abort_requested)
            except StopRequested:
                # The estimates not started are dropped: a thread's cancelled here, a process
                # pool's left to its shutdown in close(), which cancels them inside the pool's
                # manager thread. One cancelled from outside stays in that thread's table, and
                # when the terminated processes break the pool before it is cleared (its
                # executor already collected, say), CPython 3.11 sets an exception on it and
                # raises InvalidStateError in that thread.
                if not isinstance(self.pool, ProcessPoolExecutor):
                    for queued in self.pending:
                        if queued.future is not None:
                            queued.future.cancel()
                self.pending.clear()
                self.dropped = True
                return False
            yield event
        return True

    def close(self) -> None:
        if isinstance(self.pool, ProcessPoolExecutor):
            # An aborted run dropped the estimates still in flight: end the processes now rather
            # than make the stop (or the interpreter's exit) wait for the ones computing. A
            # prestarted pool otherwise stays with its owner (workers.release).
            workers.release(self.pool, terminate=self.dropped)
        elif self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.on_cpu:
            torch.set_num_threads(self.threads_before)
