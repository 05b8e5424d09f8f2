"""The Ray backend: each point a Ray task; its events stream back to a RunStore on the driver.

Workers on other machines cannot write the driver's disk, so a task never touches files: it
builds the Trainer, runs the engine and puts every event (snapshots, checkpoint states,
activations, the final event) on a Ray queue (ray.util.queue.Queue, an actor). The driver takes
them off in order and feeds each point's RunStore, exactly as ibtui.runs.runner.execute does
locally, so a sweep's directory is the same whichever backend ran it. A resumed point is reopened
on the driver, and its checkpoint state travels to the task.

Stops: a small actor holds the number of stop requests; each task's watcher thread polls it and
calls RunControl.request_stop() once per request (first: stop and finish the estimates in
flight; second: skip them), so Ctrl-C on the driver stops every point cleanly.

Ray is optional (`pip install 'ibtui[ray]'`); importing this module does not import it.
"""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path
from typing import Any

from ibtui.errors import IbtuiError
from ibtui.sweeps.display import NullDisplay, SweepDisplay
from ibtui.sweeps.points import FINISHED, RESUME, point_state
from ibtui.sweeps.spec import Point

CONNECT_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 15.0
STOP_POLL_S = 0.5


def import_ray():
    try:
        import ray
    except ImportError:
        raise IbtuiError("--ray needs Ray, which is not installed; install it with pip install 'ibtui[ray]'") from None
    return ray


def check_address(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that does not accept a connection within `timeout` seconds
    is an IbtuiError, said at once instead of after Ray's own minutes of retries."""
    if not address or address in ("local", "auto"):
        return
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise IbtuiError(f"the Ray address '{address}' is not HOST:PORT (for example 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise IbtuiError(f"the Ray cluster at {address} does not answer ({reason} within {timeout:g} s); "
                         "check the address or start one with 'ray start --head'") from None


def probe_cluster(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Connect once in a throw-away process, killed after `timeout` seconds: something that accepts
    TCP but is not a Ray cluster would otherwise keep ray.init retrying for half a minute or more."""
    import subprocess
    import sys

    code = "import sys, ray; ray.init(address=sys.argv[1], include_dashboard=False, logging_level='ERROR'); ray.shutdown()"
    try:
        result = subprocess.run([sys.executable, "-c", code, address], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise IbtuiError(f"the Ray cluster at {address} does not answer (no Ray cluster there within {timeout:g} s); "
                         "check the address or start one with 'ray start --head'") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit code {result.returncode}"
        raise IbtuiError(f"cannot connect to the Ray cluster at {address}: {last}")


def connect(address: str | None, cpus: int | None = None) -> bool:
    """ray.init on `address` (None or "local": a local instance); True when this call started Ray."""
    ray = import_ray()
    check_address(address)
    if ray.is_initialized():
        return False
    if address and address not in ("local", "auto"):
        probe_cluster(address)
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    if address and address != "local":
        kwargs["address"] = address
    else:
        # A local instance: its workers at nice 0, as the local backend's points. Ray starts them
        # at nice 15, and on a shared machine any busy process then starves the sweep (two
        # `yes` on 2 cores left a point about 3 % of a core, still importing torch minutes later).
        kwargs["_system_config"] = {"worker_niceness": 0}
        if cpus:
            kwargs["num_cpus"] = cpus
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise IbtuiError(f"cannot connect to Ray at {address or 'a local instance'}: {str(exc).splitlines()[0]}") from None
    return True


def run_point_task(config, state, name: str, queue, board) -> str:
    """The body of a point's Ray task: train, put every event on `queue` as (name, event)."""
    from ibtui.engine.control import RunControl
    from ibtui.engine.trainer import Trainer

    import ray

    control = RunControl()
    done = threading.Event()

    def watch() -> None:
        seen = 0
        while not done.wait(STOP_POLL_S):
            try:
                level = ray.get(board.level.remote())
            except Exception:  # the driver is gone: stop, so the task does not run on alone
                level = 2
            while seen < level:
                seen += 1
                control.request_stop()

    threading.Thread(target=watch, daemon=True).start()
    try:
        trainer = Trainer(config)
        if state is not None:
            trainer.load_checkpoint(state)
        for event in trainer.run(control):
            queue.put((name, event))
    finally:
        done.set()
    return name


class RayScheduler:
    """Run the unfinished points as Ray tasks; the driver writes every run directory."""

    def __init__(self, sweep_dir: Path, points: list[Point], address: str | None = None, workers: int | None = None,
                 display: SweepDisplay | None = None) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.points = points
        self.address = address
        self.workers = workers
        self.display = display or NullDisplay()
        self.board = None
        self.stops = 0
        self.started_ray = False  # set by the caller that connected (and so must shut Ray down)

    def request_stop(self) -> None:
        self.stops += 1
        if self.board is not None:
            self.board.stop.remote()

    def run(self) -> dict[str, str]:
        from ibtui.runs.runner import with_absolute_paths
        from ibtui.runs.store import RunStore

        results: dict[str, str] = {}
        todo = []
        for point in self.points:
            state = point_state(self.sweep_dir / point.name)
            if state == FINISHED:
                results[point.name] = FINISHED
            else:
                todo.append((point, state))
        if not todo:
            return results
        ray = import_ray()
        started_ray = self.started_ray or connect(self.address, self.workers)
        from ray.util.queue import Queue

        @ray.remote(num_cpus=0)
        class StopBoard:
            def __init__(self) -> None:
                self.count = 0

            def stop(self) -> None:
                self.count += 1

            def level(self) -> int:
                return self.count

        task = ray.remote(num_cpus=1, max_retries=0)(run_point_task)
        queue = Queue(actor_options={"num_cpus": 0})
        self.board = StopBoard.remote()
        stores: dict[str, Any] = {}
        ended: dict[str, str] = {}
        refs = {}
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, lambda *_: self.request_stop())
        try:
            for point, state in todo:
                run_dir = self.sweep_dir / point.name
                checkpoint = None
                if state == RESUME:
                    store, checkpoint = RunStore.reopen(run_dir)
                    store.discard_after_checkpoint()
                else:
                    store = RunStore.create(run_dir, with_absolute_paths(point.config))
                stores[point.name] = store
                refs[task.remote(store.config, checkpoint, point.name, queue, self.board)] = point
                self.display.point_started(point.name, point.config.train.epochs, state == RESUME)
            pending = list(refs)
            while pending:
                self._drain(queue, stores, ended)
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
                for ref in done:
                    point = refs[ref]
                    self._drain(queue, stores, ended)  # a task's puts are all in before it returns
                    reason = None
                    try:
                        ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - the task's error, reported per point
                        cause = getattr(exc, "cause", None) or exc
                        reason = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
                    if point.name not in ended:
                        stores[point.name].mark_failed(reason or "the Ray task ended without a final event")
                        ended[point.name] = "failed"
                    results[point.name] = ended[point.name]
                    self.display.point_ended(point.name, ended[point.name], reason)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            for store in stores.values():
                store.close()
            if started_ray:
                ray.shutdown()
        self._export([point.name for point, _ in todo])
        return results

    def _drain(self, queue, stores, ended) -> None:
        from ibtui.engine.events import Progress, RunFailed, RunFinished

        while True:
            size = queue.size()
            if not size:
                return
            for name, event in queue.get_nowait_batch(size):
                stores[name].handle(event)
                if isinstance(event, Progress):
                    self.display.point_progress(name, event.epoch)
                elif isinstance(event, RunFinished):
                    ended[name] = event.status
                elif isinstance(event, RunFailed):
                    ended[name] = "failed"

    def _export(self, names: list[str]) -> None:
        """The PNGs of each point that ran, as `ibtui run` writes them at the end."""
        from ibtui.export.png import export_run

        for name in names:
            if (self.sweep_dir / name / "config.toml").exists():
                try:
                    export_run(self.sweep_dir / name)
                except IbtuiError:
                    pass
