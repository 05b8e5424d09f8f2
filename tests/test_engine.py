import math
import re
import subprocess
import sys
import threading
import time

import pytest
import torch

from ibtui.engine.events import Checkpoint, Progress, RunFinished, RunStarted, Snapshot, Stopping
from ibtui.runs.runner import execute, prepare_resume, prepare_run
from ibtui.runs.record import load_run
from ibtui.engine import trainer as train, workers
from ibtui.engine.control import RunControl
from ibtui.engine.trainer import Trainer

from helpers import snapshot_lines_without_timing, tiny_config


def events_of(config, control=None):
    return list(Trainer(config).run(control))


def test_event_stream_shape():
    events = events_of(tiny_config())
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    started = events[0]
    assert started.n_mi_samples == 819 and math.isclose(started.max_ixt, math.log2(819))
    assert started.layer_names == ("L1 tanh 6", "L2 tanh 4", "L3 tanh 3", "out softmax 2")
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    assert [s.epoch for s in snapshots] == [0, 2, 4, 6, 8, 10, 12]
    for s in snapshots:
        assert set(s.mi) == {"binning", "kde_upper"}
        assert len(s.mi["binning"]) == 1 and len(s.mi["binning"][0]) == 4
        for ixt, ity in s.mi["kde_upper"][0]:
            assert 0 <= ixt <= started.max_ixt + 1e-9 and ity <= started.h_y + 1e-6
    assert snapshots[0].grad is None and len(snapshots[1].grad["mean"][0]) == 4  # 3 hidden + output weights
    assert events[-1].status == "finished" and events[-1].epoch == 12
    assert any(isinstance(e, Checkpoint) for e in events)


def test_training_learns_the_tishby_task():
    events = events_of(tiny_config(**{"train.epochs": 150, "model.hidden": (10, 7, 5), "info.every": 50, "info.estimators": ("binning",)}))
    first, last = [e for e in events if isinstance(e, Snapshot)][::3]
    assert last.train_loss[0] < first.train_loss[0] - 0.2
    assert last.test_acc[0] > 0.8


def test_same_config_and_seed_gives_the_same_snapshots(tmp_path):
    config = tiny_config()
    for name in ("a", "b"):
        execute(*prepare_run(config, tmp_path / name))
    a = snapshot_lines_without_timing(tmp_path / "a" / "snapshots.jsonl")
    b = snapshot_lines_without_timing(tmp_path / "b" / "snapshots.jsonl")
    assert a == b and len(a) == 7
    other = tiny_config(**{"train.seed": 1})
    execute(*prepare_run(other, tmp_path / "c"))
    assert snapshot_lines_without_timing(tmp_path / "c" / "snapshots.jsonl") != a


class StopAfter:
    """A listener that asks the run to stop after n Progress events. With a Progress event at
    every epoch (yielded by the training loop itself, unlike snapshots, whose estimates may lag)
    the stop lands deterministically at the start of epoch n + 1."""

    def __init__(self, control, n):
        self.control, self.n, self.seen = control, n, 0

    def __call__(self, event):
        if isinstance(event, Progress):
            self.seen += 1
            if self.seen == self.n:
                self.control.request_stop()


@pytest.mark.parametrize(("stop_after", "dropout"), [(1, 0.0), (3, 0.0), (6, 0.0), (11, 0.0), (5, 0.3)])
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path, monkeypatch, stop_after, dropout):
    monkeypatch.setattr(train, "PROGRESS_INTERVAL_S", 0.0)
    config = tiny_config(**{"train.batch_size": 512, "info.checkpoint_every": 3, "model.dropout": dropout})
    execute(*prepare_run(config, tmp_path / "whole"))
    control = RunControl()
    outcome = execute(*prepare_run(config, tmp_path / "cut"), [StopAfter(control, stop_after)], control)
    assert outcome.status == "interrupted"
    assert load_run(tmp_path / "cut").summary["status"] == "interrupted"
    resumed = execute(*prepare_resume(tmp_path / "cut"))
    assert resumed.status == "finished"
    assert snapshot_lines_without_timing(tmp_path / "cut" / "snapshots.jsonl") == snapshot_lines_without_timing(
        tmp_path / "whole" / "snapshots.jsonl"
    )


def test_pause_really_pauses(monkeypatch):
    """While paused the engine sits in RunControl.wait_while_paused and trains nothing, and the
    paused time is not counted as training time. The pause is made to last 1,000 s of a fake
    clock, so counting it would show in elapsed_s whatever the machine's load."""
    import types

    from ibtui.engine import control as control_module
    from ibtui.engine import trainer as trainer_module

    offset = [0.0]
    clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
    clock.perf_counter = lambda: time.perf_counter() + offset[0]
    monkeypatch.setattr(control_module, "time", clock)
    monkeypatch.setattr(trainer_module, "time", clock)

    entered, release = threading.Event(), threading.Event()

    class CountingControl(RunControl):
        def wait_while_paused(self):
            offset[0] += 1000.0  # the pause "lasts" 1,000 s
            entered.set()
            release.wait(120)
            super().wait_while_paused()

    control = CountingControl()
    stream = Trainer(tiny_config(**{"train.epochs": 100_000})).run(control)
    events = []
    consumer = threading.Thread(target=lambda: [events.append(e) for e in stream])
    consumer.start()

    def trained_epoch():
        return max((e.epoch for e in list(events) if isinstance(e, (Progress, Snapshot))), default=-1)

    while trained_epoch() < 3:
        time.sleep(0.01)
    control.pause()
    assert entered.wait(120), "the engine never reached its pause"
    count = len(events)
    time.sleep(0.3)  # an observation window: nothing may arrive while the engine waits
    assert len(events) == count
    at_pause = trained_epoch()
    control.resume()
    release.set()
    while trained_epoch() <= at_pause:
        time.sleep(0.01)
    control.abort()  # stop without waiting for the estimates behind (this run has 50,000 to come)
    consumer.join(120)
    assert isinstance(events[-1], RunFinished)
    assert events[-1].elapsed_s < 1000.0  # the 1,000 paused seconds are not training time


def test_a_diverging_run_stops_and_keeps_what_it_measured(tmp_path):
    config = tiny_config(**{"model.activation": "linear", "train.optimizer": "sgd", "train.lr": 1e12, "train.epochs": 50})
    outcome = execute(*prepare_run(config, tmp_path / "nan"))
    assert outcome.status == "failed"
    assert re.fullmatch(r"the loss became (NaN|infinite) at epoch \d+; try a smaller learning rate", outcome.reason)
    record = load_run(tmp_path / "nan")
    assert record.summary["status"] == "failed" and record.snapshots and record.snapshots[0].epoch == 0


def test_a_pool_ended_with_cancelled_futures_leaves_no_error_in_its_manager_thread(monkeypatch):
    """The recorder cancels the estimates its own thread takes over, then terminates the process.
    When the manager thread saw a process gone before the shutdown, CPython 3.11 set an exception
    on the cancelled futures (InvalidStateError in that thread); end_pool shuts down first."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    running = pool.submit(time.sleep, 120)
    queued = [pool.submit(time.sleep, 120) for _ in range(4)]
    deadline = time.monotonic() + 120
    while not (running.running() and queued[0].running()) and time.monotonic() < deadline:
        time.sleep(0.01)  # the call queue (processes + 1) holds these two; the others wait
    cancelled = [f for f in queued if f.cancel()]
    assert cancelled  # three, or two where the process took its first task before the manager queued more

    def terminated_and_noticed(kill):
        kill()  # and the manager thread sees it gone before anything else: the pool is broken
        while not getattr(pool, "_broken", False) and time.monotonic() < deadline:
            time.sleep(0.01)

    for process in pool._processes.values():
        monkeypatch.setattr(process, "terminate", lambda kill=process.terminate: terminated_and_noticed(kill))
    workers.end_pool(pool, terminate=True, wait=True)
    assert errors == []
    assert all(f.cancelled() for f in cancelled)
    assert isinstance(running.exception(timeout=0), BrokenProcessPool)


def test_an_aborted_stop_leaves_the_queued_estimates_of_a_process_pool_to_its_shutdown(monkeypatch):
    """The abort drops the estimates queued in a process pool, then ends the pool. Futures the
    pipeline cancelled itself could still sit in the pool's manager thread when it finds the
    processes gone, and CPython 3.11 then raises InvalidStateError in that thread (seen in the
    suite under load, reported by whichever test came next). So the pipeline leaves them to
    the shutdown, which cancels them inside that thread. The manager is held at its wait while
    the pipeline aborts, so that the estimates stay queued, not started."""
    import gc
    import multiprocessing
    import multiprocessing.connection
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import _ExecutorManagerThread

    import numpy as np

    from ibtui.config import InfoConfig
    from ibtui.engine.pipeline import PendingSnapshot, SnapshotPipeline

    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    gate, held = threading.Event(), threading.Event()
    real_wait = multiprocessing.connection.wait

    def gated_wait(*args, **kwargs):
        if isinstance(threading.current_thread(), _ExecutorManagerThread):
            held.set()
            gate.wait()
        return real_wait(*args, **kwargs)

    control = RunControl()
    pipeline = SnapshotPipeline(torch.device("cpu"), control)
    if pipeline.pool is not None:
        pipeline.pool.shutdown()
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(time.sleep, 0).result()  # the process and the manager thread are up
    manager = pool._executor_manager_thread
    sentinels = [process.sentinel for process in pool._processes.values()]
    monkeypatch.setattr(multiprocessing.connection, "wait", gated_wait)
    try:
        pool.submit(int)  # wakes the manager, which comes back to its wait: held there from now on
        assert held.wait(120)
        pipeline.pool, pipeline.workers_during, pipeline.workers_after = pool, 2, 2
        for epoch in (1, 2):
            pending = PendingSnapshot([torch.zeros(4, 3)], np.zeros(4, dtype=np.int64), InfoConfig(), lambda e: e, epoch)
            list(pipeline.submit(pending))
        futures = [queued.future for queued in pipeline.pending]
        assert len(futures) == 2 and not any(f.running() or f.done() for f in futures)  # queued, not started
        control.abort()
        assert all(isinstance(event, Stopping) for event in pipeline.finish("r"))
        assert pipeline.dropped and not pipeline.pending
        cancelled_here = [f for f in futures if f.cancelled()]
        pipeline.close()
        del pipeline, pool
        gc.collect()
        multiprocessing.connection.wait(sentinels, 120)  # the processes are gone
    finally:
        gate.set()  # whatever happened: the manager must not stay held
    manager.join(120)
    assert cancelled_here == []  # left to the shutdown
    assert not manager.is_alive()
    assert errors == []
    assert all(f.done() for f in futures)


def test_unavailable_cuda_is_a_config_error():
    from ibtui.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        Trainer(tiny_config(**{"train.device": "cuda"}))


def test_the_core_imports_neither_textual_nor_matplotlib():
    code = (
        "import sys, ibtui.config, ibtui.engine.trainer, ibtui.runs.runner, ibtui.runs.store, ibtui.estimators; "
        "import ibtui.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'matplotlib')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("initializer", ["real", "broken"])
def test_estimates_in_a_separate_process_equal_those_in_a_thread(tmp_path, monkeypatch, initializer):
    """Big runs estimate in a spawned process (no GIL fight with training); if that process
    cannot start, the run falls back to a thread. Either way the snapshots are the same."""
    if torch.get_num_threads() < 2:
        pytest.skip("one core: estimates are made in line")
    config = tiny_config(**{"info.checkpoint_every": 3})
    execute(*prepare_run(config, tmp_path / "thread"))
    monkeypatch.setattr(workers, "PROCESS_MIN_PAIRS", 0)
    if initializer == "broken":
        from helpers import broken_estimator_initializer

        monkeypatch.setattr(workers, "start_estimator_process", broken_estimator_initializer)
    assert execute(*prepare_run(config, tmp_path / "process")).status == "finished"
    assert snapshot_lines_without_timing(tmp_path / "process" / "snapshots.jsonl") == snapshot_lines_without_timing(
        tmp_path / "thread" / "snapshots.jsonl"
    )


def test_the_torch_training_step_trains_like_the_compiled_one(monkeypatch):
    """CUDA runs train with the torch backend; CI has no GPU, so run the torch step on the CPU
    through the whole engine and compare with the compiled step."""
    import functools

    from ibtui.engine.model import stacked_mlp

    config = tiny_config(**{"train.seeds": 2, "info.estimators": ("binning",), "model.dropout": 0.0, "train.l2": 1e-3})
    compiled_run = [e for e in events_of(config) if isinstance(e, Snapshot)]
    monkeypatch.setattr(train, "stacked_mlp", functools.partial(stacked_mlp, backend="torch"))
    torch_run = [e for e in events_of(config) if isinstance(e, Snapshot)]
    assert [s.epoch for s in torch_run] == [s.epoch for s in compiled_run]
    for a, b in zip(compiled_run, torch_run):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4, abs=1e-6)
        assert a.test_acc == pytest.approx(b.test_acc, abs=2e-3)


def test_the_engine_process_relays_events_and_reports_a_crash(tmp_path, monkeypatch):
    """execute_in_process (the TUI's engine) relays the run's events and outcome; a child that
    dies without an outcome is a failed run whose reason ends with the child's last words."""
    from ibtui.runs import runner

    seen = []
    outcome = runner.execute_in_process(tiny_config(), tmp_path / "ok", "r1", [seen.append], RunControl(shared=True))
    assert outcome.status == "finished" and isinstance(seen[0], RunStarted) and isinstance(seen[-1], RunFinished)
    assert sum(isinstance(e, Snapshot) for e in seen) == 7
    assert all(e.state == {} for e in seen if isinstance(e, Checkpoint))  # the states stay in the child's store
    assert load_run(tmp_path / "ok").summary["status"] == "finished"

    from helpers import crashing_engine_child

    monkeypatch.setattr(runner, "_execute_in_child", crashing_engine_child)
    crashed = runner.execute_in_process(tiny_config(), tmp_path / "crash", "r2", [], RunControl(shared=True))
    assert crashed.status == "failed"
    assert "exit code 3" in crashed.reason and crashed.reason.endswith("Segmentation fault (pretend)")


def test_the_gradient_noise_survives_a_high_signal_to_noise_ratio():
    """Var[g] = E[g^2] - E[g]^2 cancels in float32 when |E[g]| >> std(g); the sums are float64."""
    import numpy as np

    from ibtui.engine import gradstats

    rng = np.random.default_rng(0)
    grads = (1000.0 + 0.01 * rng.standard_normal((200, 1, 50, 4))).astype(np.float32)  # SNR 1e5
    stats = gradstats.new([torch.zeros(1, 50, 4)])
    for g in grads:
        gradstats.add(stats, [torch.from_numpy(g)])
    exact = grads.astype(np.float64)
    got = gradstats.summary(stats)
    assert got["std"][0][0] == pytest.approx(np.sqrt(exact.var(axis=0).sum()), rel=1e-3)
    assert got["mean"][0][0] == pytest.approx(np.linalg.norm(exact.mean(axis=0)), rel=1e-9)


def test_a_seed_in_an_ensemble_trains_as_it_does_alone_with_dropout():
    """Each seed draws its dropout masks from its own generator (saved in checkpoints), so seed 1
    of an ensemble is the run with seed 1; and the engine leaves torch's global generator alone."""
    common = {"model.dropout": 0.3, "info.estimators": ("binning",), "train.epochs": 4, "train.batch_size": 256}
    before = torch.get_rng_state()
    ensemble = [e for e in events_of(tiny_config(**common, **{"train.seed": 0, "train.seeds": 3})) if isinstance(e, Snapshot)]
    alone = [e for e in events_of(tiny_config(**common, **{"train.seed": 1})) if isinstance(e, Snapshot)]
    assert torch.equal(torch.get_rng_state(), before)
    assert [s.epoch for s in ensemble] == [s.epoch for s in alone] == [0, 2, 4]
    for a, b in zip(ensemble, alone):
        assert a.train_loss[1] == pytest.approx(b.train_loss[0], rel=1e-6)
        assert a.test_acc[1] == b.test_acc[0]
    no_dropout = [e for e in events_of(tiny_config(**{**common, "model.dropout": 0.0}, **{"train.seed": 1})) if isinstance(e, Snapshot)]
    assert no_dropout[-1].train_loss[0] != pytest.approx(alone[-1].train_loss[0], rel=1e-6)  # the masks matter
