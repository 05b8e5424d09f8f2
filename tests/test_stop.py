"""A stop keeps what was measured (issue 14, item 3; the stop interface of the team brief).

The first RunControl.request_stop() stops training and finishes the estimates of every snapshot
already taken, yielding Stopping(pending) while it does; then the checkpoint is written and
RunFinished(interrupted).epoch is where a resume continues. A second request_stop() skips the
estimates still to come, and the checkpoint is the last kept snapshot's. No clocks: the
estimates are held back by gates that open on the control's state, not on time.
"""

import threading

import numpy as np
import pytest
import torch

from helpers import snapshot_lines_without_timing, tiny_config
from ibtui.config import InfoConfig
from ibtui.engine import pipeline as pipeline_module
from ibtui.engine import trainer as train
from ibtui.engine import workers
from ibtui.engine.control import RunControl, StopRequested
from ibtui.engine.events import Checkpoint, Progress, RunFinished, Snapshot, Stopping
from ibtui.runs.runner import execute, prepare_resume, prepare_run
from ibtui.runs.record import load_run

needs_two_cores = pytest.mark.skipif(torch.get_num_threads() < 2, reason="one core: estimates are made in line, no backlog")


def pending_snapshot(epoch):
    return pipeline_module.PendingSnapshot([torch.zeros(1, 4, 2)], np.zeros(4, dtype=np.int64), InfoConfig(),
                                           lambda result: ("snapshot", epoch), epoch=epoch, state={"epoch": epoch})


def fake_estimates(monkeypatch, gate):
    """Estimates that wait for gate() to be true (checked every few ms) and return nothing."""

    def estimate(layers, labels, info, inputs=None):
        while not gate():
            threading.Event().wait(0.005)
        return {}, 0.0

    monkeypatch.setattr(workers, "timed_estimate", estimate)


@needs_two_cores
def test_a_stop_finishes_the_estimates_of_the_snapshots_taken(monkeypatch):
    control = RunControl()
    released = threading.Event()
    fake_estimates(monkeypatch, released.is_set)
    pipeline = pipeline_module.SnapshotPipeline(torch.device("cpu"), control)
    for epoch in (0, 2, 4):
        assert list(pipeline.submit(pending_snapshot(epoch))) == []
    control.request_stop()
    with pytest.raises(StopRequested):  # training's wait for the estimates ends at a stop ...
        list(pipeline.drain())
    released.set()
    events = []
    generator = pipeline.finish("r")
    try:
        while True:
            events.append(next(generator))
    except StopIteration as end:
        kept_all = end.value
    pipeline.close()
    # ... and the stop then finishes every estimate, saying how many are still to come.
    assert kept_all and not pipeline.dropped
    assert [e for e in events if not isinstance(e, Stopping)] == [("snapshot", 0), ("snapshot", 2), ("snapshot", 4)]
    assert [e.pending for e in events if isinstance(e, Stopping)] == [3, 2, 1]
    assert pipeline.last_kept == (4, {"epoch": 4})


@needs_two_cores
def test_a_second_stop_skips_the_estimates_still_to_come(monkeypatch):
    control = RunControl()
    released = threading.Event()  # the estimates finish only after the test
    fake_estimates(monkeypatch, released.is_set)
    pipeline = pipeline_module.SnapshotPipeline(torch.device("cpu"), control)
    for epoch in (0, 2):
        list(pipeline.submit(pending_snapshot(epoch)))
    control.request_stop()
    events = []
    for event in pipeline.finish("r"):
        events.append(event)
        if isinstance(event, Stopping):
            control.request_stop()  # the second Ctrl-C
    released.set()
    pipeline.close()
    assert events == [Stopping("r", 2)] and pipeline.dropped and pipeline.last_kept is None


class StopAt:
    """Asks for a stop at the Progress event of `epoch`, and a second one at the first Stopping
    event when `twice`."""

    def __init__(self, control, epoch, twice=False):
        self.control, self.epoch, self.twice, self.events = control, epoch, twice, []

    def __call__(self, event):
        self.events.append(event)
        if isinstance(event, Progress) and event.epoch == self.epoch:
            self.control.request_stop()
        if self.twice and isinstance(event, Stopping) and not self.control.abort_requested:
            self.control.request_stop()


def estimates_held_back(monkeypatch, gate):
    """The real estimates, each made only once gate(call number) is true."""
    real = workers.timed_estimate
    calls = []

    def estimate(layers, labels, info, inputs=None):
        calls.append(None)
        number = len(calls)
        while not gate(number):
            threading.Event().wait(0.005)
        return real(layers, labels, info)

    monkeypatch.setattr(workers, "timed_estimate", estimate)


@needs_two_cores
def test_a_stop_keeps_every_snapshot_taken_and_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "PROGRESS_INTERVAL_S", 0.0)
    config = tiny_config(**{"train.batch_size": 512, "info.checkpoint_every": 100})
    execute(*prepare_run(config, tmp_path / "whole"))
    control = RunControl()
    # Every estimate waits for the stop: training runs ahead with the snapshots 0..6 taken.
    estimates_held_back(monkeypatch, lambda number: control.stop_requested)
    listener = StopAt(control, 7)
    outcome = execute(*prepare_run(config, tmp_path / "cut"), [listener], control)
    assert outcome.status == "interrupted"
    finished = listener.events[-1]
    assert isinstance(finished, RunFinished) and finished.epoch == 7  # the stop landed before epoch 8
    assert [e.epoch for e in listener.events if isinstance(e, Snapshot)] == [0, 2, 4, 6]
    assert any(isinstance(e, Stopping) and e.pending >= 1 for e in listener.events)
    assert [e.epoch for e in listener.events if isinstance(e, Checkpoint)] == [7]
    assert [r.epoch for r in load_run(tmp_path / "cut").snapshots] == [0, 2, 4, 6]
    monkeypatch.undo()
    assert execute(*prepare_resume(tmp_path / "cut")).status == "finished"
    assert snapshot_lines_without_timing(tmp_path / "cut" / "snapshots.jsonl") == snapshot_lines_without_timing(
        tmp_path / "whole" / "snapshots.jsonl")


class StopTwice:
    """Asks for a stop when the first snapshot arrives, and again at the first Stopping event."""

    def __init__(self, control):
        self.control, self.events = control, []

    def __call__(self, event):
        self.events.append(event)
        if isinstance(event, Snapshot) and not self.control.stop_requested:
            self.control.request_stop()
        if isinstance(event, Stopping) and not self.control.abort_requested:
            self.control.request_stop()


@needs_two_cores
def test_an_aborted_stop_checkpoints_at_the_last_kept_snapshot(tmp_path, monkeypatch):
    config = tiny_config(**{"train.batch_size": 512, "info.checkpoint_every": 100})
    execute(*prepare_run(config, tmp_path / "whole"))
    control = RunControl()
    # The first estimate (epoch 0) goes through; the others wait until the run has ended.
    ended = threading.Event()
    estimates_held_back(monkeypatch, lambda number: number == 1 or ended.is_set())
    listener = StopTwice(control)
    try:
        outcome = execute(*prepare_run(config, tmp_path / "cut"), [listener], control)
    finally:
        ended.set()
    assert outcome.status == "interrupted"
    assert [e.epoch for e in listener.events if isinstance(e, Snapshot)] == [0]
    assert [e.epoch for e in listener.events if isinstance(e, Checkpoint)] == [0]
    assert listener.events[-1].epoch == 0  # RunFinished: a resume continues from the kept snapshot
    monkeypatch.undo()
    assert execute(*prepare_resume(tmp_path / "cut")).status == "finished"
    assert snapshot_lines_without_timing(tmp_path / "cut" / "snapshots.jsonl") == snapshot_lines_without_timing(
        tmp_path / "whole" / "snapshots.jsonl")


@needs_two_cores
def test_the_pool_fallback_estimates_each_snapshot_once(monkeypatch):
    """An estimator pool that breaks when a snapshot is submitted hands it to a thread: once."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    class BrokenPool(ProcessPoolExecutor):
        def submit(self, *args, **kwargs):
            raise BrokenProcessPool("cannot start a process here")

    monkeypatch.setattr(workers, "estimator_pool", lambda *args, **kwargs: BrokenPool(1))
    estimated = []
    monkeypatch.setattr(workers, "timed_estimate", lambda layers, labels, info, inputs=None: (estimated.append(None), ({}, 0.0))[1])
    control = RunControl()
    pipeline = pipeline_module.SnapshotPipeline(torch.device("cpu"), control, kde_pairs=workers.PROCESS_MIN_PAIRS)
    events = [e for epoch in (0, 2, 4) for e in pipeline.submit(pending_snapshot(epoch))]
    events += list(pipeline.drain())
    pipeline.close()
    assert events == [("snapshot", 0), ("snapshot", 2), ("snapshot", 4)]
    assert len(estimated) == 3
