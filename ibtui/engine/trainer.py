"""The engine: a training loop that yields events.

`Trainer(config)` does everything that can fail on bad input (data, device, model) before any
file is written; `Trainer.run()` then yields RunStarted, Progress, Snapshot, Checkpoint and
finally RunFinished or RunFailed. Nothing else talks to the training loop.

Speed matters (thousands of tiny steps): the data lives on the device and minibatches are
gathered from it by index; all seeds train as one stacked model; one forward pass over the MI
samples gives every layer of every seed; the host is only consulted once per epoch.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ibtui import estimators
from ibtui.engine import workers
from ibtui.config import InfoConfig, RunConfig, validate
from ibtui.data import Dataset, load_dataset
from ibtui.errors import ConfigError, StoreError
from ibtui.engine.control import RunControl, Stopwatch, StopRequested
from ibtui.engine.events import Checkpoint, Event, Progress, RunFailed, RunFinished, RunStarted, Snapshot
from ibtui.engine.model import StackedMLP
from ibtui.engine.optim import FlatAdam, FlatSGD
from ibtui.engine.schedule import snapshot_epochs
from ibtui.engine.shuffle import epoch_orders

CHECKPOINT_FORMAT = 1
PROGRESS_INTERVAL_S = 0.1
STOP_WAIT_S = 0.25  # how long a stop waits for information estimates already under way
STEP_CALL_SAMPLES = 2**16  # seed-samples per call of the compiled multi-step training (Trainer.steps_per_call)


@dataclass
class PendingSnapshot:
    """A snapshot's measurements taken at its epoch, waiting for the information estimate."""

    layers: list[torch.Tensor]  # per layer (seeds, N, width), the values MI is measured on
    labels: np.ndarray
    info: InfoConfig
    complete: Callable[[dict], Snapshot]  # the estimate -> the Snapshot event
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
    """Estimates the information plane of snapshots beside training, handing events back in order.

    On a CPU with several cores the engine trains on one thread while estimates run on the
    remaining cores, so the O(N^2) work overlaps training (a step of several seeds split over
    threads would lose 10-100x at its barrier with a busy neighbour); while no estimate is in
    flight, the compiled step spreads the seeds over every core (training_threads); once training
    is done the estimates use every core. For a run with a lot of estimation work they run in separate
    processes, one snapshot each at a time: in a thread beside training the estimator fought the
    numpy training step for the GIL (training hands it over at each of its ~40 calls per step),
    and the tanh preset took 25 s where the same work in two processes took 13; and two estimator
    processes do twice the work of one, where two threads in one process do 1.35x (the GIL
    again). Small runs use a thread, since starting a process (it imports torch) costs about
    1.5 s. On one core, or on CUDA, estimates are made in line.

    Checkpoints queue behind the snapshots before them, so a checkpoint never runs ahead of the
    snapshots on disk and training never waits for the estimates to catch up to take one.
    """

    # How far training may run ahead of the estimates: far enough that it never waits for a
    # slow one and that the estimates of the last stretch get every core once training ends,
    # but no more than MAX_BACKLOG_S of estimating, so the progress bar (which counts epochs
    # trained) stays honest and a stop drops little.
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
        self.dropped = False  # a stop left estimates unfinished
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
        processes = min(workers.MAX_PROCESSES, cores)
        threads = max(1, (cores - 1) // processes)
        self.workers_during = max(1, min(processes, (cores - 1) // threads))
        self.workers_after = processes
        self.pool = workers.estimator_pool(processes, threads)

    def submit(self, pending: PendingSnapshot) -> Iterator[Event]:
        """Queue a snapshot's estimate; yields the oldest events if too many are waiting."""
        if self.pool is None:
            yield pending.estimate_here()
            return
        self.pending.append(_Queued(pending))
        self._pump()
        while self._backlog_too_large():
            # Training waits here, so its core is free for estimates meanwhile.
            self.training_waits = True
            try:
                event = self._next()
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

    def _next(self, timeout: float | None = None) -> Event:
        """The oldest event, waiting for its estimate; a stop request ends a wait without a
        timeout (StopRequested), and the event stays queued for drain_within."""
        head = self.pending[0]
        if head.pending is None:
            return self.pending.popleft().checkpoint
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._pump()
            if head.future.done():
                break
            wait = self.STOP_POLL_S if deadline is None else max(0.0, min(self.STOP_POLL_S, deadline - time.monotonic()))
            # Wake on any estimate finishing, so a free worker gets the next one at once.
            futures_wait([q.future for q in self.pending if q.running], timeout=wait, return_when=FIRST_COMPLETED)
            if head.future.done():
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise FuturesTimeout
            if deadline is None and self.control.stop_requested:
                raise StopRequested
        try:
            estimate, seconds = head.future.result()
        except BrokenExecutor:
            # An estimator process could not start or died (a sandbox without process spawning,
            # the OOM killer): measure in a thread instead, from now on.
            self.pending.popleft()
            self._fall_back_to_thread()
            return head.pending.estimate_here()
        self.pending.popleft()
        self.estimate_seconds = seconds if self.estimate_seconds is None else 0.8 * self.estimate_seconds + 0.2 * seconds
        self._pump()
        return head.pending.complete(estimate)

    def _fall_back_to_thread(self) -> None:
        if isinstance(self.pool, ProcessPoolExecutor):
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = ThreadPoolExecutor(1, "ibtui-mi")
            self.workers_during = self.workers_after = 1
            for queued in self.pending:
                queued.future = None
            self._pump()

    def ready(self) -> Iterator[Event]:
        self._pump()
        while self.pending and (self.pending[0].pending is None or (self.pending[0].future is not None and self.pending[0].future.done())):
            yield self._next()

    def drain(self) -> Iterator[Event]:
        while self.pending:
            yield self._next()

    def drain_within(self, seconds: float) -> Iterator[Event]:
        """Yield what finishes within `seconds`; drop the rest. Returns whether nothing was dropped."""
        deadline = time.monotonic() + seconds
        while self.pending:
            try:
                event = self._next(timeout=max(0.0, deadline - time.monotonic()))
            except (FuturesTimeout, StopRequested):
                for queued in self.pending:
                    if queued.future is not None:
                        queued.future.cancel()
                self.pending.clear()
                self.dropped = True
                return False
            yield event
        return True

    def close(self) -> None:
        if isinstance(self.pool, ProcessPoolExecutor) and self.dropped:
            # A stopped run dropped the estimates still in flight: end the processes now rather
            # than make the stop (or the interpreter's exit) wait for the ones computing.
            processes = getattr(self.pool, "_processes", None) or {}
            for process in list(processes.values()):
                process.terminate()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.on_cpu:
            torch.set_num_threads(self.threads_before)


def _divergence(losses: list[float], seeds: tuple[int, ...], epoch: int) -> str:
    bad = [(seed, loss) for seed, loss in zip(seeds, losses) if not math.isfinite(loss)]
    if not bad:  # finite loss, but the last update overflowed the weights
        return f"the weights became NaN or infinite at epoch {epoch}; try a smaller learning rate"
    value = "NaN" if any(math.isnan(loss) for _, loss in bad) else "infinite"
    which = f" for seed {bad[0][0]}" if len(seeds) > 1 and len(bad) == 1 else (f" for {len(bad)} of {len(seeds)} seeds" if len(seeds) > 1 else "")
    return f"the loss became {value}{which} at epoch {epoch}; try a smaller learning rate"


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but this torch build sees no CUDA GPU")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_config_dataset(config: RunConfig) -> Dataset:
    d = config.data
    return load_dataset(
        d.name,
        test_fraction=d.test_fraction,
        split_seed=d.split_seed,
        csv_path=d.csv,
        features=d.features,
        label=d.label,
        standardize=d.standardize,
        synthetic_seed=d.synthetic_seed,
    )


def mi_sample_indices(dataset: Dataset, on: str) -> np.ndarray:
    """The samples the information plane is measured on: all of them, or one split."""
    return {"all": np.arange(dataset.n_samples), "train": dataset.train_idx, "test": dataset.test_idx}[on]


def layer_names(config: RunConfig, n_outputs: int) -> tuple[str, ...]:
    names = [f"L{i + 1} {config.model.activation} {w}" for i, w in enumerate(config.model.hidden)]
    if config.info.measure_output:
        names.append(f"out softmax {n_outputs}")
    return tuple(names)


class Trainer:
    """One run (of one or several seeds), ready to start or resume."""

    def __init__(self, config: RunConfig, run_id: str | None = None, dataset: Dataset | None = None):
        validate(config)
        self.config = config
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.device = resolve_device(config.train.device)
        self.dataset = dataset if dataset is not None else load_config_dataset(config)
        t, info = config.train, config.info
        self.seeds = tuple(range(t.seed, t.seed + t.seeds))
        ds = self.dataset
        if len(ds.train_idx) == 0:
            raise ConfigError("the training split is empty; lower data.test_fraction")

        as_x = lambda idx: torch.as_tensor(ds.x[idx], dtype=torch.float32, device=self.device)  # noqa: E731
        as_y = lambda idx: torch.as_tensor(ds.y[idx], dtype=torch.int64, device=self.device)  # noqa: E731
        all_idx = np.arange(ds.n_samples)
        self.x_all, self.y_all = as_x(all_idx), as_y(all_idx)
        self.x_train, self.y_train = as_x(ds.train_idx), as_y(ds.train_idx)
        self.train_idx = torch.as_tensor(ds.train_idx, device=self.device)
        self.test_idx = torch.as_tensor(ds.test_idx, device=self.device)
        mi_idx = mi_sample_indices(ds, info.on)
        if len(mi_idx) < 2:
            raise ConfigError(f"the '{info.on}' sample set is too small to estimate mutual information")
        self.mi_idx = torch.as_tensor(mi_idx, device=self.device)
        self.mi_labels = ds.y[mi_idx]
        needs_inputs = any(estimators.ESTIMATORS[name].needs_inputs for name in info.estimators)
        self.mi_inputs = ds.x[mi_idx] if needs_inputs else None

        self.model = StackedMLP(ds.n_features, ds.n_classes, config.model, self.seeds, self.device)
        self.model.bind_data(self.x_train, self.y_train)
        self.optimizer = self._make_optimizer()
        self.schedule = snapshot_epochs(info, t.epochs)
        self.layer_names = layer_names(config, ds.n_classes)
        self.batch_size = t.batch_size or len(ds.train_idx)
        self.steps_per_epoch = math.ceil(len(ds.train_idx) / self.batch_size)
        # Steps per call of model.train_steps: about 2^16 seed-samples, a few milliseconds on a
        # small network, so that pause and stop stay prompt.
        self.steps_per_call = max(1, STEP_CALL_SAMPLES // (self.batch_size * len(self.seeds)))
        torch.manual_seed(t.seed)  # dropout masks
        self._resume_state: dict[str, Any] | None = None

    def _make_optimizer(self) -> FlatAdam | FlatSGD:
        t = self.config.train
        # The compiled step's own update, which train_steps applies too (same numbers either way).
        compiled = self.model.backend == "compiled"
        if t.optimizer == "adam":
            return FlatAdam(self.model.flat, self.model.flat_grad, lr=t.lr, compiled=compiled)
        return FlatSGD(self.model.flat, self.model.flat_grad, lr=t.lr, compiled=compiled)

    # -- checkpoints -------------------------------------------------------------------------

    def _state(self, epoch: int, step: int, perms: torch.Tensor | None, accum: dict, snapshots_done: int, elapsed: float) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "step": step,
            "seeds": list(self.seeds),
            "model": self.model.state(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "perms": None if perms is None else perms.cpu(),
            "accum": {k: [v.cpu() for v in vs] for k, vs in accum.items()},
            "snapshots_done": snapshots_done,
            "elapsed_s": elapsed,
        }

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        """Restore a state written by a Checkpoint event of the same config."""
        try:
            if state.get("format") != CHECKPOINT_FORMAT:
                raise StoreError(f"the checkpoint has format {state.get('format')}, this ibtui reads {CHECKPOINT_FORMAT}")
            if list(state["seeds"]) != list(self.seeds):
                raise StoreError("the checkpoint was written for other seeds than this run's configuration")
            self.model.load_state(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            # Checkpoints before ibtui drew the epoch orders from (seed, epoch) carry a
            # "shuffle_rng" state, no longer needed: a resumed run goes on with the new orders.
            torch.set_rng_state(state["torch_rng"])
        except StoreError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as exc:
            raise StoreError(f"the checkpoint does not fit this run ({exc})") from None
        self._resume_state = state

    # -- measuring ---------------------------------------------------------------------------

    @torch.no_grad()
    def observe(self, epoch: int, elapsed: float, accum: dict | None) -> PendingSnapshot:
        """Take the snapshot's activations, losses and gradient norms now, as copies that
        training never writes again, so the estimate can run on another thread or process."""
        n_seeds = len(self.seeds)
        x = self.x_all.expand(n_seeds, *self.x_all.shape)
        logits, hidden = self.model.forward(x)
        losses, accs = {}, {}
        for split, idx in (("train", self.train_idx), ("test", self.test_idx)):
            if len(idx) == 0:
                losses[split] = accs[split] = [float("nan")] * n_seeds
                continue
            lg = logits[:, idx]
            y = self.y_all[idx]
            ce = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y.repeat(n_seeds), reduction="none").view(n_seeds, -1)
            losses[split] = ce.mean(1).tolist()
            accs[split] = (lg.argmax(-1) == y).float().mean(1).tolist()
        layers = list(hidden)
        if self.config.info.measure_output:
            layers.append(torch.softmax(logits, dim=-1))
        layers = [h[:, self.mi_idx] for h in layers]
        if self.config.info.save_activations:
            # Saved activations are float16; measuring the same rounded values makes
            # `ibtui estimate` with unchanged parameters reproduce these numbers exactly.
            layers = [h.half().float() for h in layers]
        grad = None
        if accum and accum.get("count"):
            count = float(accum["count"][0])
            means, stds = [], []
            for total, squares in zip(accum["sum"], accum["sq"]):
                mean = total / count
                var = (squares / count - mean * mean).clamp_(min=0)
                means.append(mean.flatten(1).norm(dim=1))
                stds.append(var.flatten(1).sum(1).sqrt())
            grad = {
                "mean": torch.stack(means, 1).tolist(),
                "std": torch.stack(stds, 1).tolist(),
            }
        info = self.config.info
        activations = None
        if info.save_activations:
            activations = [h.half().cpu().numpy() for h in layers]

        def complete(per_seed: dict) -> Snapshot:
            return Snapshot(
                run_id=self.run_id,
                epoch=epoch,
                elapsed_s=round(elapsed, 3),
                train_loss=losses["train"],
                test_loss=losses["test"],
                train_acc=accs["train"],
                test_acc=accs["test"],
                mi=per_seed,
                grad=grad,
                activations=activations,
            )

        return PendingSnapshot(layers, self.mi_labels, info, complete, self.mi_inputs)

    def kde_pairs(self) -> float:
        """The pairwise terms the run's KDE estimates add up to: its estimation workload."""
        return workers.kde_pairs(self.config.info, len(self.schedule), len(self.seeds), len(self.layer_names), len(self.mi_labels))

    def started_event(self, start_epoch: int) -> RunStarted:
        return RunStarted(
            run_id=self.run_id,
            config=self.config,
            layer_names=self.layer_names,
            layer_widths=(*self.config.model.hidden, *((self.dataset.n_classes,) if self.config.info.measure_output else ())),
            seeds=self.seeds,
            n_mi_samples=len(self.mi_labels),
            h_y=estimators.label_entropy(self.mi_labels),
            schedule=tuple(self.schedule),
            start_epoch=start_epoch,
            device=str(self.device),
            dataset=self.dataset.description,
            synthetic=self.dataset.synthetic,
        )

    # -- the loop ----------------------------------------------------------------------------

    def run(self, control: RunControl | None = None) -> Iterator[Event]:
        control = control or RunControl()
        resume = self._resume_state
        start_epoch = resume["epoch"] if resume else 0
        snapshots_done = resume["snapshots_done"] if resume else 0
        elapsed = Stopwatch(resume["elapsed_s"] if resume else 0.0)

        yield self.started_event(start_epoch)
        pipeline = SnapshotPipeline(self.device, control, self.kde_pairs())
        try:
            if resume is None:
                yield from pipeline.submit(self.observe(0, elapsed(), None))
                snapshots_done = 1
            yield from self._epochs(control, resume, start_epoch, snapshots_done, elapsed, pipeline)
        finally:
            pipeline.close()  # leaves torch's thread count as it found it

    def _interrupt(self, pipeline: SnapshotPipeline, epoch: int, step: int, perms, accum: dict, snapshots_done: int, elapsed: Stopwatch) -> Iterator[Event]:
        """Stop promptly: wait briefly for the estimates in flight. If they are not done, the
        last checkpoint stands and resume measures them again."""
        if (yield from pipeline.drain_within(STOP_WAIT_S)):
            yield Checkpoint(self.run_id, epoch, self._state(epoch, step, perms, accum, snapshots_done, elapsed()))
        yield RunFinished(self.run_id, "interrupted", epoch, elapsed())

    def _epochs(self, control, resume, start_epoch, snapshots_done, elapsed: Stopwatch, pipeline: SnapshotPipeline) -> Iterator[Event]:
        cfg = self.config.train
        n_train = len(self.x_train)
        wanted = set(self.schedule)

        last_progress = 0.0
        perms: torch.Tensor | None = None
        accum: dict[str, list[torch.Tensor]] = {}
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            first_step = 0
            if resume and resume["perms"] is not None:
                perms = resume["perms"].to(self.device)
                first_step = resume["step"]
                accum = {k: [v.to(self.device) for v in vs] for k, vs in resume["accum"].items()}
            else:
                perms = torch.from_numpy(epoch_orders(self.seeds, epoch, n_train)).to(self.device, non_blocking=True)
                accum = {}
                if self.config.info.grad_snr and epoch in wanted:
                    accum = {
                        "sum": [torch.zeros_like(w) for w in self.model.weights],
                        "sq": [torch.zeros_like(w) for w in self.model.weights],
                        "count": [torch.zeros(1)],
                    }
            resume = None
            self.model.threads = pipeline.training_threads()
            self.model.shuffle(perms)
            # Without per-step gradient statistics the compiled step runs many steps per call (one
            # wake-up of the worker threads instead of one a step); pause and stop are honoured
            # between calls, every steps_per_call steps.
            many = self.model.trains_many_steps and not accum
            step = first_step
            while step < self.steps_per_epoch:
                if control.paused:
                    paused_at = time.perf_counter()
                    control.wait_while_paused()
                    elapsed.exclude(time.perf_counter() - paused_at)
                if control.stop_requested:
                    yield from self._interrupt(pipeline, epoch - 1, step, perms, accum, snapshots_done, elapsed)
                    return
                if many:
                    stop = min(step + self.steps_per_call, self.steps_per_epoch)
                    step_loss = self.model.train_steps(step, stop, self.batch_size, cfg.l2, self.optimizer)
                    step = stop
                    if step_loss is not None:
                        per_seed_loss = step_loss
                    continue
                last_step = step == self.steps_per_epoch - 1
                start = step * self.batch_size
                step_loss = self.model.train_step(start, min(start + self.batch_size, n_train), cfg.l2, want_loss=last_step)
                if last_step:
                    per_seed_loss = step_loss
                if accum:
                    for total, squares, grad in zip(accum["sum"], accum["sq"], self.model.weight_grads):
                        total.add_(grad)
                        squares.addcmul_(grad, grad)
                    accum["count"][0] += 1
                self.optimizer.step()
                step += 1

            last_loss = per_seed_loss
            # The weights too: the epoch's last update can overflow after its loss was computed.
            if not bool(torch.isfinite(last_loss).all() & torch.isfinite(self.model.flat).all()):
                yield from pipeline.drain()
                yield RunFailed(self.run_id, _divergence(last_loss.tolist(), self.seeds, epoch), epoch, elapsed())
                return
            now = time.perf_counter()
            if now - last_progress >= PROGRESS_INTERVAL_S or epoch == cfg.epochs:
                last_progress = now
                yield Progress(self.run_id, epoch, cfg.epochs, float(last_loss.mean()), elapsed())
            if epoch in wanted:
                pending = self.observe(epoch, elapsed(), accum)
                snapshots_done += 1
                try:
                    yield from pipeline.submit(pending)  # waits while the estimates are far behind
                except StopRequested:
                    yield from self._interrupt(pipeline, epoch, 0, None, {}, snapshots_done, elapsed)
                    return
                if snapshots_done % self.config.info.checkpoint_every == 0 and epoch != cfg.epochs:
                    checkpoint = Checkpoint(self.run_id, epoch, self._state(epoch, 0, None, {}, snapshots_done, elapsed()))
                    yield from pipeline.add_checkpoint(checkpoint)
            yield from pipeline.ready()
        pipeline.training_finished()
        try:
            yield from pipeline.drain()
        except StopRequested:
            yield from self._interrupt(pipeline, cfg.epochs, 0, None, {}, snapshots_done, elapsed)
            return
        yield Checkpoint(self.run_id, cfg.epochs, self._state(cfg.epochs, 0, None, {}, snapshots_done, elapsed()))
        yield RunFinished(self.run_id, "finished", cfg.epochs, elapsed())
