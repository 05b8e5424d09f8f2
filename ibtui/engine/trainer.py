"""The engine: a training loop that yields events.

`Trainer(config)` does everything that can fail on bad input (data, device, model) before any
file is written; `Trainer.run(control)` then yields RunStarted, Progress, Snapshot, Checkpoint
(and Stopping while a stop finishes its estimates) and finally RunFinished or RunFailed. Nothing
else talks to the training loop. Stops: RunControl and pipeline.py.

Speed matters (thousands of tiny steps): the data lives on the device and minibatches are
gathered from it by index; all seeds train as one stacked model; one forward pass over the MI
samples gives every layer of every seed; the host is only consulted once per epoch.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ibtui import estimators
from ibtui.config import RunConfig, validate
from ibtui.data import Dataset, dataset_from_config, stratified_subset
from ibtui.engine import gradstats, workers
from ibtui.engine.control import RunControl, Stopwatch, StopRequested
from ibtui.engine.events import Checkpoint, Event, Progress, RunFailed, RunFinished, RunStarted, Snapshot
from ibtui.engine.model import module_ensemble, stacked_mlp
from ibtui.engine.pipeline import PendingSnapshot, SnapshotPipeline
from ibtui.engine.schedule import snapshot_epochs
from ibtui.engine.shuffle import epoch_orders
from ibtui.errors import ConfigError, StoreError

CHECKPOINT_FORMAT = 2  # 2: dropout generators per seed in the model state, no process-wide RNG
PROGRESS_INTERVAL_S = 0.1
STEP_CALL_SAMPLES = 2**16  # seed-samples per call of the compiled multi-step training (Trainer.steps_per_call)


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
    return dataset_from_config(config.data)


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
        mi_idx = mi_idx[stratified_subset(ds.y[mi_idx], config.data.mi_samples, config.data.mi_subset_seed)]
        if len(mi_idx) < 2:
            raise ConfigError(f"the '{info.on}' sample set is too small to estimate mutual information")
        self.mi_idx = torch.as_tensor(mi_idx, device=self.device)
        self.mi_labels = ds.y[mi_idx]
        needs_inputs = any(estimators.ESTIMATORS[name].needs_inputs for name in info.estimators)
        self.mi_inputs = ds.x[mi_idx] if needs_inputs else None

        if config.model.factory:  # the user's own module (backend_module.py), checked on a tiny batch here
            self.model = module_ensemble(config.model.factory, ds.image_shape, ds.n_features, ds.n_classes, self.seeds,
                                         self.device, info.measure_output)
            decay = t.l2 if t.l2_mode == "weight_decay" else 0.0
            self.optimizer = self.model.make_optimizer(t.optimizer, t.lr, t.momentum, decay)
            self.layer_names, self.layer_widths = self.model.layer_names, self.model.layer_widths
        else:
            self.model = stacked_mlp(ds.n_features, ds.n_classes, config.model, self.seeds, self.device)
            self.optimizer = self.model.make_optimizer(t.optimizer, t.lr, t.momentum)
            self.layer_names = layer_names(config, ds.n_classes)
            self.layer_widths = (*config.model.hidden, *((ds.n_classes,) if info.measure_output else ()))
        self.model.bind_data(self.x_train, self.y_train)
        # L2 through the loss (the MLP always; own models unless l2_mode is weight decay)
        self.loss_l2 = 0.0 if t.l2_mode == "weight_decay" else t.l2
        self.schedule = snapshot_epochs(info, t.epochs)
        self.batch_size = t.batch_size or len(ds.train_idx)
        self.steps_per_epoch = math.ceil(len(ds.train_idx) / self.batch_size)
        # Steps per call of model.train_steps: about 2^16 seed-samples, a few milliseconds on a
        # small network, so that pause and stop stay prompt.
        self.steps_per_call = max(1, STEP_CALL_SAMPLES // (self.batch_size * len(self.seeds)))
        self._resume_state: dict[str, Any] | None = None

    # -- checkpoints -------------------------------------------------------------------------

    def _state(self, epoch: int, step: int, perms: torch.Tensor | None, accum: dict, snapshots_done: int, elapsed: float) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "step": step,
            "seeds": list(self.seeds),
            "model": self.model.state(),
            "optimizer": self.optimizer.state_dict(),
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
        except StoreError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as exc:
            raise StoreError(f"the checkpoint does not fit this run ({exc})") from None
        self._resume_state = state

    # -- measuring ---------------------------------------------------------------------------

    @torch.no_grad()
    def observe(self, epoch: int, elapsed: float, accum: dict | None, snapshots_done: int | None = None) -> PendingSnapshot:
        """Take the snapshot's activations, losses and gradient norms now, as copies that
        training never writes again, so the estimate can run on another thread or process;
        with snapshots_done (this one included), the training state too, for a checkpoint."""
        n_seeds = len(self.seeds)
        if hasattr(self.model, "measure"):  # own modules: hidden layers on the MI samples only
            logits, hidden = self.model.measure(self.x_all, self.mi_idx)
            mi_rows = slice(None)
        else:
            logits, hidden = self.model.forward(self.x_all.expand(n_seeds, *self.x_all.shape))
            mi_rows = self.mi_idx
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
        layers = [h[:, mi_rows] for h in hidden]
        if self.config.info.measure_output:
            layers.append(torch.softmax(logits, dim=-1)[:, self.mi_idx])
        if self.config.info.save_activations:
            # Saved activations are float16; measuring the same rounded values makes
            # `ibtui estimate` with unchanged parameters reproduce these numbers exactly.
            layers = [h.half().float() for h in layers]
        grad = gradstats.summary(accum) if accum else None
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

        state = None if snapshots_done is None else self._state(epoch, 0, None, {}, snapshots_done, elapsed)
        return PendingSnapshot(layers, self.mi_labels, info, complete, epoch, state, self.mi_inputs)

    def kde_pairs(self) -> float:
        """The pairwise terms the run's KDE estimates add up to: its estimation workload."""
        return workers.kde_pairs(self.config.info, len(self.schedule), len(self.seeds), len(self.layer_names), len(self.mi_labels))

    def workload_note(self) -> str | None:
        """A sentence on the run's size when its estimates alone take hours (workers.workload_note)."""
        return workers.workload_note(self.config.info, len(self.schedule), len(self.seeds), len(self.layer_names), len(self.mi_labels))

    def started_event(self, start_epoch: int) -> RunStarted:
        return RunStarted(
            run_id=self.run_id,
            config=self.config,
            layer_names=self.layer_names,
            layer_widths=tuple(self.layer_widths),
            seeds=self.seeds,
            n_mi_samples=len(self.mi_labels),
            h_y=estimators.label_entropy(self.mi_labels),
            schedule=tuple(self.schedule),
            start_epoch=start_epoch,
            device=str(self.device),
            dataset=self.dataset.description,
            synthetic=self.dataset.synthetic,
        )

    def _weights_finite(self) -> bool:
        finite = getattr(self.model, "finite", None)
        return finite() if finite is not None else bool(torch.isfinite(self.model.flat).all())

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
                snapshots_done = 1
                yield from pipeline.submit(self.observe(0, elapsed(), None, snapshots_done))
            yield from self._epochs(control, resume, start_epoch, snapshots_done, elapsed, pipeline)
        finally:
            pipeline.close()  # leaves torch's thread count as it found it

    def _interrupt(self, pipeline: SnapshotPipeline, start_epoch: int, elapsed: Stopwatch, position) -> Iterator[Event]:
        """Stop: finish the estimates of the snapshots taken (unless aborted), then checkpoint
        where training stopped (position(): its state) or, if estimates were dropped, at the
        last snapshot kept."""
        kept_all = yield from pipeline.finish(self.run_id)
        yield from self._interrupted(pipeline, start_epoch, elapsed, position() if kept_all else None)

    def _interrupted(self, pipeline: SnapshotPipeline, start_epoch: int, elapsed: Stopwatch, state: dict | None) -> Iterator[Event]:
        """The checkpoint at `state` (None: the last kept snapshot's, if any), and RunFinished
        whose epoch is where a resume continues."""
        if state is None and pipeline.last_kept is not None:
            state = pipeline.last_kept[1]
        if state is not None:
            yield Checkpoint(self.run_id, state["epoch"], state)
        yield RunFinished(self.run_id, "interrupted", state["epoch"] if state is not None else start_epoch, elapsed())

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
                    accum = gradstats.new(self.model.weights)
            resume = None
            self.model.threads = pipeline.training_threads()
            self.model.shuffle(perms)
            # Without per-step gradient statistics the compiled step runs many steps per call (one
            # wake-up of the worker threads instead of one a step); pause and stop are honoured
            # between calls, every steps_per_call steps.
            many = self.model.trains_many_steps and not accum and getattr(self.optimizer, "in_kernel", True)
            step = first_step
            while step < self.steps_per_epoch:
                if control.paused:
                    paused_at = time.perf_counter()
                    control.wait_while_paused()
                    elapsed.exclude(time.perf_counter() - paused_at)
                if control.stop_requested:
                    position = self._state(epoch - 1, step, perms, accum, snapshots_done, elapsed())
                    yield from self._interrupt(pipeline, start_epoch, elapsed, lambda: position)
                    return
                if many:
                    stop = min(step + self.steps_per_call, self.steps_per_epoch)
                    step_loss = self.model.train_steps(step, stop, self.batch_size, self.loss_l2, self.optimizer)
                    step = stop
                    if step_loss is not None:
                        per_seed_loss = step_loss
                    continue
                last_step = step == self.steps_per_epoch - 1
                start = step * self.batch_size
                step_loss = self.model.train_step(start, min(start + self.batch_size, n_train), self.loss_l2, want_loss=last_step)
                if last_step:
                    per_seed_loss = step_loss
                if accum:
                    gradstats.add(accum, self.model.weight_grads)
                self.optimizer.step()
                step += 1

            last_loss = per_seed_loss
            # The weights too: the epoch's last update can overflow after its loss was computed.
            if not (bool(torch.isfinite(last_loss).all()) and self._weights_finite()):
                try:
                    yield from pipeline.drain()
                except StopRequested:
                    yield from pipeline.finish(self.run_id)
                yield RunFailed(self.run_id, _divergence(last_loss.tolist(), self.seeds, epoch), epoch, elapsed())
                return
            now = time.perf_counter()
            if now - last_progress >= PROGRESS_INTERVAL_S or epoch == cfg.epochs:
                last_progress = now
                yield Progress(self.run_id, epoch, cfg.epochs, float(last_loss.mean()), elapsed())
            if epoch in wanted:
                snapshots_done += 1
                pending = self.observe(epoch, elapsed(), accum, snapshots_done)
                try:
                    yield from pipeline.submit(pending)  # waits while the estimates are far behind
                except StopRequested:
                    yield from self._interrupt(pipeline, start_epoch, elapsed, lambda: pending.state)
                    return
                if snapshots_done % self.config.info.checkpoint_every == 0 and epoch != cfg.epochs:
                    yield from pipeline.add_checkpoint(Checkpoint(self.run_id, epoch, pending.state))
            yield from pipeline.ready()
        pipeline.training_finished()
        try:
            yield from pipeline.drain()
        except StopRequested:  # training is done: a stop only decides whether to wait for the rest
            if not (yield from pipeline.finish(self.run_id)):
                yield from self._interrupted(pipeline, start_epoch, elapsed, None)
                return
        yield Checkpoint(self.run_id, cfg.epochs, self._state(cfg.epochs, 0, None, {}, snapshots_done, elapsed()))
        yield RunFinished(self.run_id, "finished", cfg.epochs, elapsed())
