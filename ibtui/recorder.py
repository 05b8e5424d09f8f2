"""Record the information plane of any PyTorch model from the user's own training loop.

    import ibtui
    with ibtui.Recorder(model, inputs=x_probe, labels=y_probe, out="runs/mine", epochs=E) as rec:
        for epoch in range(E):
            ...  # the user's own training
            rec.epoch_end(epoch, train_loss=loss, test_acc=acc)   # every argument but epoch optional

What is measured. Forward hooks on the chosen modules (``layers``: None means every Linear and
Conv output and every activation module, in the order the forward pass reaches them; or module
names as in ``model.named_modules()``, or the modules themselves; ``ibtui.engine.layer_hooks``
chooses and hooks them, as for a model file in ibtui's own trainer) capture their outputs while
the model runs on the probe set in eval mode without grad, on the model's device, in batches;
each output is flattened per sample and copied inside its hook (so a later in-place activation
cannot change it), and a conv layer's T is its whole feature map. A module called twice in one
forward pass gives one layer per call ("act", "act#2").

When. ``epoch_end(epoch)`` is called after the epoch with index ``epoch`` (as in
``for epoch in range(E)``), so the snapshot is stored at ``epoch + 1`` completed epochs; the
model as it is when the recorder opens is epoch 0. Only the epochs of the schedule are measured
(Saxe's over ``epochs`` unless another ``schedule`` is named), so most calls return at once.

Where the work goes. The estimates (KDE, binning: O(N^2) per layer) run in one of ibtui's
estimator processes (``ibtui.engine.workers``), so the user's loop only pays for the probe
forward pass and a copy; finished estimates are written, in epoch order, at later
``epoch_end`` calls and when the block ends. At most ``MAX_PENDING`` snapshots wait at once;
or ``MAX_PENDING_BYTES`` of activations; beyond that ``epoch_end`` waits for the oldest (memory
stays bounded on slow estimates). At each ``epoch_end`` a CPU model's loop gets torch threads for
the cores the busy estimator processes leave, all of them while they idle (``torch_threads``).
The process is started, and its kernels loaded on a tiny warm-up estimate, when the recorder
opens, so that this happens while the user's loop trains; it is forked where that is safe
(Linux, one thread, no CUDA context: engine/processes.py), so it starts with the user's torch
already loaded instead of importing it again.
At the end of the block the loop no longer needs its core: the calling thread estimates the
newest snapshots not yet started in the process while the process works from the oldest. The
figures are drawn in the estimator process too, which imported matplotlib while it idled during
training (``ibtui.export.figures.prepare``), so the user's process never imports it, and by forked
copies of it on the cores the loop has left (``figures.draw_at_once``); only when that process is
gone or breaks are they drawn here. ``timings`` says where the seconds went.

The result is an ordinary run directory written through ``RunStore`` (the same events as
``ibtui run``): config.toml (``data.name = "recorded"``, ``model.layers`` the module names,
``model.hidden`` their widths, ``model.activation`` the most used activation module or
"linear"), snapshots.jsonl, summary.json and, at the end, the PNGs; ``report``, ``export``
and the app read it. Training settings ibtui cannot see (optimiser, learning rate,
batch size) are ibtui's defaults in config.toml unless given as ``train={...}``; its
description says so. Probe sets larger than ``mi_samples`` (10,000) are measured on a
stratified subset (``ibtui.data.stratified_subset``, seeded by ``mi_subset_seed``). With
``save_activations`` each snapshot's activations are kept (float16, ``activations/epoch_*.npz``,
and measured from those same values) with the MI labels in
``activations/labels.npy``, for re-estimation with other settings.

An exception inside the ``with`` block marks the run failed (KeyboardInterrupt: interrupted),
keeps every snapshot whose activations were taken, and propagates. Bad input (a layer the model
lacks, inputs and labels of different lengths, a directory that holds another run, unknown
estimators) raises ``RecorderError``, a ``ValueError`` with one sentence, before anything is
written.
"""

from __future__ import annotations

import importlib
import math
import os
import threading
import time
import uuid
import warnings
from collections import deque
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from ibtui.config import DataConfig, InfoConfig, ModelConfig, RunConfig, TrainConfig, validate
from ibtui.engine.layer_hooks import LayerError, call_keys, capturing, choose_modules, main_activation
from ibtui.errors import IbtuiError

#: Snapshots (and bytes of their activations) whose estimates may be outstanding before
#: epoch_end waits for the oldest: enough that the loop does not wait while the estimator
#: process starts (it imports torch and compiles the KDE kernel), bounded so memory is too.
MAX_PENDING = 64
MAX_PENDING_BYTES = 256 << 20
#: Probe samples per forward pass.
PROBE_BATCH = 1024
#: With save_activations, the MI labels beside the activations (activations/labels.npy).
LABELS_FILE = "labels.npy"
class RecorderError(IbtuiError, ValueError):
    """The recorder cannot start with what it was given (one sentence)."""


@dataclass
class _Pending:
    epoch: int
    elapsed: float
    metrics: dict[str, float]
    layers: list[np.ndarray]  # per layer (1, N, width) float32
    future: Future | None = None
    result: dict | None = None
    error: str | None = None


class Recorder:
    """Measure I(X;T) and I(T;Y) of a model's layers during the user's own training loop.

    Parameters: ``model`` (an ``nn.Module``), ``inputs`` / ``labels`` (the probe set: a tensor or
    array of N inputs the model takes, and N integer class labels), ``out`` (a new or empty run
    directory), ``layers`` (see the module docstring), ``estimators`` / ``noise_variance`` /
    ``bin_size`` (as ``[info]`` of a run), ``epochs`` (the number of epochs the loop will run;
    the schedule is Saxe's over it), ``schedule`` ("saxe", "log" with ``snapshots``, "every"
    with ``every``), ``mi_samples`` / ``mi_subset_seed`` (the stratified subset of a large probe
    set), ``processes`` (estimator processes; 0 estimates in the calling thread), ``name`` /
    ``dataset`` (how titles name the run and the probe data), ``train`` (a dict of
    ``[train]`` settings to record, e.g. ``{"optimizer": "sgd", "lr": 0.01}``), ``png`` (write
    the figures at the end), ``batch_size`` (probe samples per forward pass), ``torch_threads``
    (torch's intra-op threads in this process while the block runs, restored at its end: "auto",
    for a CPU model, sets them at every ``epoch_end`` to the usable cores less the estimator
    processes busy at that moment, at most the count the block began with: torch's threads
    waiting at their barriers beside a busy process slow the loop 2-4x, while one thread fewer on
    idle cores slows a large model's loop by up to its parallel speed-up; None leaves torch's
    setting alone; a number sets it for the whole block).
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Any,
        labels: Any,
        out: str | Path,
        layers: Any = None,
        estimators: tuple[str, ...] | list[str] = ("kde_upper", "binning"),
        noise_variance: float = 1e-3,
        bin_size: float | None = 0.07,
        epochs: int | None = None,
        *,
        schedule: str = "saxe",
        snapshots: int = 200,
        every: int = 1,
        n_bins: int | None = None,
        adaptive_bins: int = 30,
        mi_samples: int = 10_000,
        mi_subset_seed: int = 0,
        processes: int = 1,
        name: str | None = None,
        dataset: str | None = None,
        train: dict[str, Any] | None = None,
        png: bool = True,
        batch_size: int = PROBE_BATCH,
        save_activations: bool = False,
        torch_threads: int | str | None = "auto",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise RecorderError(f"the recorder needs a torch.nn.Module, not {type(model).__name__}.")
        if epochs is None or isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise RecorderError(f"epochs must be the number of epochs the loop runs (a whole number >= 1), not {epochs!r}.")
        if not isinstance(processes, int) or processes < 0:
            raise RecorderError(f"processes must be 0 or more, not {processes!r}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise RecorderError(f"batch_size must be a positive whole number, not {batch_size!r}.")
        if not (torch_threads in ("auto", None) or (isinstance(torch_threads, int) and not isinstance(torch_threads, bool) and torch_threads >= 1)):
            raise RecorderError(f"torch_threads must be \"auto\", None or a whole number >= 1, not {torch_threads!r}.")
        self.model = model
        self.out = Path(out)
        self.processes = processes
        self.png = png
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self._threads_before: int | None = None
        self._cores = 1
        #: Work submitted to the estimator processes (estimates, the figures' preparation), for
        #: "auto" threads: how many processes are busy; done ones are dropped at each check.
        self._busy: list[Future] = []
        self.device = _model_device(model)
        self._inputs, self.labels = _probe_set(inputs, labels, _model_dtype(model))
        try:
            self.modules = choose_modules(model, layers)
        except LayerError as exc:
            raise RecorderError(str(exc)) from None
        try:
            from ibtui.data import stratified_subset

            self.subset = stratified_subset(self.labels, mi_samples, mi_subset_seed) if len(self.labels) > mi_samples else None
        except IbtuiError as exc:
            raise RecorderError(str(exc)) from None
        self.mi_labels = self.labels if self.subset is None else self.labels[self.subset]
        info = {"estimators": tuple(estimators), "noise_variance": noise_variance, "bin_size": bin_size,
                "n_bins": n_bins, "adaptive_bins": adaptive_bins, "schedule": schedule, "snapshots": snapshots,
                "every": every, "measure_output": False, "grad_snr": False, "on": "all",
                "save_activations": bool(save_activations)}
        self._settings = {"info": info, "epochs": epochs, "mi_samples": mi_samples, "mi_subset_seed": mi_subset_seed,
                          "name": name, "dataset": dataset, "train": dict(train or {})}
        # Everything that can be checked without running the model is checked now, so a bad
        # argument never leaves a directory behind.
        try:
            InfoConfig(**info)
            self._check_info(info)
        except (TypeError, IbtuiError) as exc:
            raise RecorderError(str(exc).rstrip(".") + ".") from None
        self._check_out()
        self.store = None
        self.config: RunConfig | None = None
        self.layer_names: tuple[str, ...] = ()
        self.schedule: list[int] = []
        self._pending: deque[_Pending] = deque()
        self._pool = None
        #: Seconds, for overhead accounting: ``estimating`` (the estimates' own work, wherever
        #: they ran), ``probing`` (the probe forward passes and copies in the caller's thread),
        #: ``draining`` (waiting at the end for estimates still running), ``figures`` (the PNGs).
        self.timings = {"estimating": 0.0, "probing": 0.0, "draining": 0.0, "figures": 0.0}
        self._last_epoch = 0
        self._errors: list[str] = []
        self._started = 0.0
        self._open = False

    # -- set-up ------------------------------------------------------------------------------

    @staticmethod
    def _check_info(info: dict[str, Any]) -> None:
        config = RunConfig(info=InfoConfig(**info))
        validate(config)

    def _check_out(self) -> None:
        out = self.out
        if out.exists() and not out.is_dir():
            raise RecorderError(f"{out} exists and is not a directory; give the recorder a new or empty directory.")
        if out.is_dir() and any(out.iterdir()):
            what = "holds another run" if (out / "config.toml").exists() else "is not empty"
            raise RecorderError(f"{out} {what}; give the recorder a new or empty directory (nothing was written).")

    def __enter__(self) -> Self:
        from ibtui.engine.events import RunStarted
        from ibtui.engine.schedule import snapshot_epochs
        from ibtui.estimators import label_entropy
        from ibtui.runs.store import RunStore

        self._check_out()
        self._started = time.monotonic()
        probing = time.perf_counter()
        try:
            layers = self._activations()  # also fixes the layer order and names
        except RecorderError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's model, any error: say so in one sentence
            raise RecorderError(f"{type(self.model).__name__} fails on the probe inputs "
                                f"({type(exc).__name__}: {exc}).") from None
        self.timings["probing"] += time.perf_counter() - probing
        widths = tuple(int(a.shape[-1]) for a in layers)
        s = self._settings
        info = InfoConfig(**s["info"])
        activation = main_activation([m for _, m, _ in self._layer_keys])
        device = "cuda" if self.device.type == "cuda" else "cpu"
        name = s["name"] or self.out.name or "recorded"
        described = s["dataset"] or f"recorded probe set ({len(self.labels):,} samples, {len(np.unique(self.labels))} classes)"
        known_train = ", ".join(sorted(s["train"])) or "none"
        description = (f"recorded by ibtui.Recorder from {type(self.model).__name__}; [train] settings other than "
                       f"epochs are ibtui's defaults, not the recorded loop's, except those given ({known_train})")
        try:
            train = TrainConfig(epochs=s["epochs"], device=device)
            if s["train"]:
                train = replace(train, **s["train"])
            config = RunConfig(
                name=name,
                description=description,
                data=DataConfig(name="recorded", test_fraction=0.0, mi_samples=s["mi_samples"],
                                mi_subset_seed=s["mi_subset_seed"]),
                model=ModelConfig(hidden=widths, activation=activation, layers=self.layer_names),
                train=train,
                info=info,
            )
            validate(config)
        except (TypeError, IbtuiError) as exc:
            raise RecorderError(str(exc).rstrip(".") + ".") from None
        self.config = config
        self.schedule = snapshot_epochs(info, s["epochs"])
        self._scheduled = set(self.schedule)
        try:
            self.store = RunStore.create(self.out, config)
        except IbtuiError as exc:
            raise RecorderError(str(exc).rstrip(".") + ".") from None
        self.run_id = uuid.uuid4().hex[:8]
        self.store.handle(RunStarted(
            run_id=self.run_id,
            config=config,
            # "conv1 Conv2d 512": the module's name, its type and the width measured
            layer_names=tuple(f"{label} {type(m).__name__} {w}" for (_, m, label), w in zip(self._layer_keys, widths)),
            layer_widths=widths,
            seeds=(config.train.seed,),
            n_mi_samples=len(self.mi_labels),
            h_y=label_entropy(self.mi_labels),
            schedule=tuple(self.schedule),
            start_epoch=0,
            device=str(self.device),
            dataset=described,
            synthetic=False,
        ))
        if info.save_activations:
            import io

            from ibtui.runs.files import ACTIVATIONS_DIR, write_atomic

            (self.out / ACTIVATIONS_DIR).mkdir(exist_ok=True)
            buffer = io.BytesIO()
            np.save(buffer, self.mi_labels)
            write_atomic(self.out / ACTIVATIONS_DIR / LABELS_FILE, buffer.getvalue())
        self._open = True
        if self.processes > 0:
            from ibtui.engine import workers
            from ibtui.engine.processes import fork_context

            try:
                # Started now, each process loads the kernels for `info` meanwhile: forked where
                # that is safe (torch is loaded already, and the processes keep to one torch
                # thread: engine/processes.py), else spawned without re-importing the user's
                # __main__, importing torch as well.
                self._pool = workers.estimator_pool(self.processes, 1, info, fork_context())
                # One task each after its warm-up, so that _busy sees the processes busy until
                # then: where the figures are drawn there at the end, matplotlib's import now.
                if self.png:
                    from ibtui.export.figures import prepare as after_warm_up
                else:
                    after_warm_up = os.getpid
                for _ in range(self.processes):
                    self._busy.append(self._pool.submit(after_warm_up))
            except (OSError, RuntimeError, BrokenProcessPool):
                self._pool = None
        if 0 in self._scheduled:
            self._submit(0, {}, layers)
        self._share_cores()
        return self

    # -- the user's calls --------------------------------------------------------------------

    def epoch_end(self, epoch: int, train_loss: Any = None, test_loss: Any = None,
                  train_acc: Any = None, test_acc: Any = None) -> bool:
        """Epoch ``epoch`` (0-based) has ended: measure if ``epoch + 1`` is a scheduled epoch.

        Returns whether a snapshot was taken. Also writes the estimates finished meanwhile.
        """
        if not self._open:
            raise RecorderError("epoch_end was called outside the recorder's with block.")
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise RecorderError(f"epoch must be the index of the epoch that ended (0, 1, ...), not {epoch!r}.")
        completed = int(epoch) + 1
        if completed <= self._last_epoch:
            raise RecorderError(f"epoch_end({epoch}) came after epoch_end({self._last_epoch - 1}); epochs must increase.")
        self._last_epoch = completed
        taken = completed in self._scheduled
        if taken:
            self._share_cores()  # the probe pass too gets the cores the estimates leave now
            metrics = {"train_loss": train_loss, "test_loss": test_loss, "train_acc": train_acc, "test_acc": test_acc}
            probing = time.perf_counter()
            layers = self._activations()
            self.timings["probing"] += time.perf_counter() - probing
            self._submit(completed, metrics, layers)
        self._write_ready(block=False)
        self._share_cores()
        return taken

    def __exit__(self, exc_type, exc, tb) -> bool:
        from ibtui.engine.events import RunFailed, RunFinished

        if not self._open:
            return False
        self._open = False
        if self._threads_before is not None:  # the loop is done: its threads back, for the drain too
            torch.set_num_threads(self._threads_before)
            self._threads_before = None
        skipped: BaseException | None = None
        draining = time.perf_counter()
        if self.png and self._pool is None:  # drawn here: matplotlib's import overlaps the wait
            threading.Thread(target=importlib.import_module, args=("ibtui.export.png",), daemon=True).start()
        try:
            self._drain()
        except BaseException as error:  # noqa: BLE001 - a second Ctrl-C while waiting: skip the rest
            skipped = error
            self._pending.clear()
        finally:
            if self._pool is not None and (skipped is not None or not self.png):
                self._pool.shutdown(wait=skipped is None, cancel_futures=True)
                self._pool = None
            self.timings["draining"] = time.perf_counter() - draining
        elapsed = time.monotonic() - self._started
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            self.store.handle(RunFailed(self.run_id, f"{exc_type.__name__}: {exc}", self._last_epoch, elapsed))
        elif self._errors:
            self.store.handle(RunFailed(self.run_id, self._errors[0], self._last_epoch, elapsed))
        else:
            ended = self._last_epoch >= self.config.train.epochs and exc_type is None and skipped is None
            self.store.handle(RunFinished(self.run_id, "finished" if ended else "interrupted", self._last_epoch, elapsed))
        self.store.close()
        try:
            if self.png:
                self._draw_figures()
        finally:
            if self._pool is not None:
                self._end_pool()
        if skipped is not None and exc_type is None:
            raise skipped
        return False

    def _share_cores(self) -> None:
        """Set torch's intra-op threads for the loop until the next epoch_end (see torch_threads);
        the count the block began with is kept for __exit__. Only the user's thread may do this:
        OpenMP keeps the thread count per calling thread."""
        wanted = self.torch_threads
        if wanted is None:
            return
        if self._threads_before is None:
            self._threads_before = torch.get_num_threads()
            if wanted == "auto":
                from ibtui.engine.processes import usable_cores

                self._cores = usable_cores()
        if wanted == "auto":
            if self.processes == 0 or self.device.type != "cpu":
                return
            self._busy = [f for f in self._busy if not f.done()]
            busy = min(self.processes, len(self._busy)) if self._pool is not None else 0
            wanted = min(self._threads_before, max(1, self._cores - busy))
        if wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)

    def _draw_figures(self) -> None:
        """The PNGs, drawn in the estimator process (matplotlib was imported there while it idled,
        figures.prepare) and forked copies of it (figures.draw_at_once), or here when it is gone or
        breaks; ``timings["figures"]`` is the wait."""
        from ibtui.export.figures import export_run

        from ibtui.engine.processes import usable_cores

        drawing = time.perf_counter()
        # The loop has ended and left its cores idle: a process draws its share of the figures
        # at once, in forked copies of itself, where there are cores for them.
        shares = self.processes if usable_cores() > self.processes else None
        try:
            export_run(self.out, pool=self._pool, shares=shares)
        except Exception as error:  # noqa: BLE001 - figures must never hide the user's own exception
            warnings.warn(f"the recorder could not draw the figures of {self.out} ({error})", RuntimeWarning, stacklevel=3)
        finally:
            self.timings["figures"] = time.perf_counter() - drawing

    def _end_pool(self) -> None:
        """End the estimator process now that every task has been awaited: terminated, not asked
        to exit (a process that imported torch, numba and matplotlib takes seconds to tear
        itself down, which the user's loop would wait for), then reaped."""
        from ibtui.engine import workers

        pool, self._pool = self._pool, None
        workers.end_pool(pool, terminate=True, wait=True)

    @property
    def run_dir(self) -> Path:
        return self.out

    # -- measuring ---------------------------------------------------------------------------

    @torch.no_grad()
    def _activations(self) -> list[np.ndarray]:
        """Per measured layer, the (1, N, width) float32 outputs on the probe set (the MI subset)."""
        per_batch: list[list[tuple[str, nn.Module, torch.Tensor]]] = []
        x = self._inputs
        with capturing(self.model, self.modules, keep=_flat_copy) as captured:
            for start in range(0, len(x), self.batch_size):
                captured.clear()
                self.model(x[start:start + self.batch_size].to(self.device))
                per_batch.append(list(captured))
        keys = call_keys([(n, m) for n, m, _ in per_batch[0]])
        if not keys:
            raise RecorderError("none of the chosen modules produced a tensor on the probe set; "
                                "check that the model's forward calls them.")
        if not hasattr(self, "_layer_keys"):
            self._layer_keys = keys
            self.layer_names = tuple(label for _, _, label in keys)
        for batch in per_batch:
            if call_keys([(n, m) for n, m, _ in batch]) != self._layer_keys:
                raise RecorderError("the model's forward pass reached the measured modules in a different order "
                                    "than before; the recorder needs the same layers on every pass.")
        layers = []
        for index in range(len(self._layer_keys)):
            t = torch.cat([batch[index][2] for batch in per_batch])
            if self.subset is not None:
                t = t[torch.as_tensor(self.subset)]
            layers.append(t.numpy()[None])
        return layers

    def _submit(self, epoch: int, metrics: dict[str, Any], layers: list[np.ndarray]) -> None:
        from ibtui.engine import workers

        while self._pending and (len(self._pending) >= MAX_PENDING or
                                 sum(a.nbytes for p in self._pending for a in p.layers) >= MAX_PENDING_BYTES):
            self._write_ready(block=True, limit=1)
        info = self.config.info
        if info.save_activations:
            # measured from the float16 values saved, as the training engine does, so that
            # `ibtui estimate` with unchanged settings reproduces these numbers exactly
            layers = [a.astype(np.float16).astype(np.float32) for a in layers]
        pending = _Pending(epoch, time.monotonic() - self._started, {k: _number(v) for k, v in metrics.items()}, layers)
        if self._pool is not None:
            try:
                pending.future = self._pool.submit(workers.timed_estimate, layers, self.mi_labels, info)
                self._busy.append(pending.future)
            except (BrokenProcessPool, RuntimeError):
                self._pool = None
        if pending.future is None:
            self._estimate_here(pending)
        self._pending.append(pending)

    def _estimate_here(self, pending: _Pending) -> None:
        from ibtui import estimators

        started = time.perf_counter()
        try:
            pending.result = estimators.estimate_info_plane(pending.layers, self.mi_labels, self.config.info)
            self.timings["estimating"] += time.perf_counter() - started
        except Exception as exc:  # noqa: BLE001 - one bad snapshot must not end the user's training
            pending.error = f"the estimate at epoch {pending.epoch} failed ({type(exc).__name__}: {exc})"

    def _drain(self) -> None:
        """Finish every pending estimate and write it: the estimator process works from the oldest
        snapshot, this thread (idle now that the loop has ended) from the newest one not yet
        started there, with one torch thread so that the two take one core each."""
        threads = torch.get_num_threads()
        try:
            while self._pending:
                self._write_ready(block=False)
                newest = next((p for p in reversed(self._pending) if p.future is not None and p.future.cancel()), None)
                if newest is None:  # the rest are running in the process, or done
                    break
                newest.future = None
                torch.set_num_threads(1)
                self._estimate_here(newest)
        finally:
            torch.set_num_threads(threads)
        self._write_ready(block=True)

    def _write_ready(self, block: bool, limit: int | None = None) -> None:
        """Write the oldest snapshots whose estimates are done (all of them when ``block``)."""
        from ibtui.engine.events import Snapshot

        written = 0
        while self._pending and (limit is None or written < limit):
            head = self._pending[0]
            if head.future is not None:
                if not block and not head.future.done():
                    return
                try:
                    head.result, seconds = head.future.result()
                    self.timings["estimating"] += seconds
                except BrokenProcessPool:
                    self._pool = None  # the process died or could not start: estimate here from now on
                    self._estimate_here(head)
                except Exception as exc:  # noqa: BLE001
                    head.error = f"the estimate at epoch {head.epoch} failed ({type(exc).__name__}: {exc})"
                head.future = None
            self._pending.popleft()
            written += 1
            if head.error is not None:
                self._errors.append(head.error)
                warnings.warn(head.error, RuntimeWarning, stacklevel=3)
                continue
            m = head.metrics
            self.store.handle(Snapshot(
                run_id=self.run_id, epoch=head.epoch, elapsed_s=round(head.elapsed, 3),
                train_loss=[m.get("train_loss", math.nan)], test_loss=[m.get("test_loss", math.nan)],
                train_acc=[m.get("train_acc", math.nan)], test_acc=[m.get("test_acc", math.nan)],
                mi=head.result,
                activations=[a.astype(np.float16) for a in head.layers] if self.config.info.save_activations else None,
            ))


# -- helpers ---------------------------------------------------------------------------------


def _flat_copy(output: torch.Tensor) -> torch.Tensor:
    """A hooked output as (batch, features) float32 on the CPU, never sharing its storage: a later
    in-place module (``nn.ReLU(inplace=True)``) would otherwise overwrite the values taken."""
    flat = output.detach().reshape(output.shape[0], -1).float().cpu()
    return flat.clone() if flat.data_ptr() == output.data_ptr() else flat


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype | None:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def _probe_set(inputs: Any, labels: Any, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """The probe inputs as a tensor (floating ones in the model's dtype: a float64 numpy array
    meets float32 weights) and the labels as int64."""
    try:
        x = torch.as_tensor(inputs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise RecorderError(f"inputs must be a tensor or an array of probe inputs ({exc}).") from None
    if dtype is not None and x.is_floating_point() and x.dtype != dtype:
        x = x.to(dtype)
    try:
        y = np.asarray(labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels)
    except (TypeError, ValueError) as exc:
        raise RecorderError(f"labels must be an array of integer class labels ({exc}).") from None
    if x.ndim < 1 or y.ndim != 1:
        raise RecorderError(f"labels must be one integer per input (a 1-D array), not shape {tuple(y.shape)}.")
    if len(x) != len(y):
        raise RecorderError(f"the probe set has {len(x):,} inputs but {len(y):,} labels; give one label per input.")
    if len(y) < 2:
        raise RecorderError(f"the probe set has {len(y)} sample(s); mutual information needs at least 2.")
    whole = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_) or (
        np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)))
    if not whole:
        raise RecorderError(f"labels must be integer class labels, not {y.dtype} values.")
    return x, y.astype(np.int64)


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value.item() if isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError, RuntimeError):
        raise RecorderError(f"losses and accuracies must be numbers, not {type(value).__name__}.") from None
