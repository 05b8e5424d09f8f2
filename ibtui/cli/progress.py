"""The headless progress display of `ibtui run`: a Rich progress bar fed by the event stream."""

from __future__ import annotations

import time
from bisect import bisect_right

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ibtui.engine.events import Event, Progress as ProgressEvent, RunFailed, RunFinished, RunStarted, Snapshot, Stopping
from ibtui.engine.kernel_cache import waiting_message


class ConsoleProgress:
    """Epoch, loss and the last hidden layer's latest information-plane point, with elapsed/remaining."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TextColumn("epochs"),
            TextColumn("{task.fields[snapshots]}"),
            TextColumn("{task.fields[loss]}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
        )
        self.task = None
        self.estimator = ""
        self.last_layer = 0
        # Without a terminal (a log file, CI, nohup) a live bar would only print its last frame:
        # write a plain line at every tenth of the run instead.
        self.plain = not quiet and not console.is_terminal
        self.next_line_epoch = 0
        self.total = 1
        self.snapshots = self.n_snapshots = 0
        self.schedule: tuple[int, ...] = ()
        self.stopping_said = False
        self.trained = False  # a first Progress event has come (the kernels are compiled)
        self.started_at = time.monotonic()  # plain lines say wall time, not training time

    def __enter__(self) -> ConsoleProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, ProgressEvent):
            if not self.trained:
                # The time before the first epoch was start-up and compiling: the speed and the
                # time left are measured from here, or a 30 s compile would read as hours to go.
                self.trained = True
                self.bar.reset(self.task, completed=event.epoch)
                self.bar.update(self.task, info="")
            self.bar.update(self.task, completed=event.epoch, loss=f"loss {event.train_loss:.4f}")
        elif isinstance(event, Snapshot):
            # Estimates arrive behind training (they run beside it): the bar keeps counting
            # epochs trained, and the snapshot count shows how far the estimates are.
            ixt, ity = event.mean_mi(self.estimator)[self.last_layer]
            info = f"last hidden I(X;T) {ixt:.2f} I(T;Y) {ity:.3f}"
            # Snapshots arrive in epoch order: the count is the scheduled epochs up to this one
            # (a count of events would add the resumed run's already-logged ones twice).
            self.snapshots = bisect_right(self.schedule, event.epoch)
            self.bar.update(self.task, snapshots=f"{self.snapshots}/{self.n_snapshots} snapshots", info=info)
            if self.plain and (event.epoch >= self.next_line_epoch or event.epoch == self.total):
                self.next_line_epoch = event.epoch + max(1, self.total // 10)
                elapsed = f"{time.monotonic() - self.started_at:.1f}s"
                loss = sum(event.train_loss) / len(event.train_loss)
                self.console.print(f"epoch {event.epoch:>{len(str(self.total))}}/{self.total}  loss {loss:.4f}  {info}  {elapsed}", highlight=False)
        elif isinstance(event, Stopping):
            text = f"finishing {event.pending} estimate{'s' if event.pending != 1 else ''}, Ctrl-C again to skip"
            self.bar.update(self.task, info=text)
            if not self.stopping_said and self.plain:  # a live bar shows it in place
                self.console.print(text, highlight=False)
            self.stopping_said = True
        elif isinstance(event, RunFinished | RunFailed):
            self.bar.update(self.task, completed=event.epoch)

    def _started(self, event: RunStarted) -> None:
        config = event.config
        self.estimator = config.info.estimators[0]
        self.total = config.train.epochs
        self.schedule = tuple(event.schedule)
        self.n_snapshots = len(event.schedule)
        # A resumed run has logged the snapshots up to its start; a new one has none yet.
        self.snapshots = bisect_right(self.schedule, event.start_epoch) if event.start_epoch else 0
        # The last *hidden* layer: the softmax output, when measured, comes after it.
        self.last_layer = len(event.layer_names) - (2 if config.info.measure_output else 1)
        seeds = f", {len(event.seeds)} seeds" if len(event.seeds) > 1 else ""
        network = (f"model {config.model.factory.rpartition('/')[2]}" if config.model.factory
                   else f"{'-'.join(map(str, config.model.hidden))} {config.model.activation}")
        self.console.print(
            f"[bold]{escape(config.name)}[/]: {escape(event.dataset)}; {escape(network)}"
            f"{seeds}; {config.train.epochs:,} epochs on {event.device}; "
            f"{len(event.schedule)} snapshots ({', '.join(config.info.estimators)})",
            highlight=False,
        )
        if event.start_epoch:
            self.console.print(f"resuming from epoch {event.start_epoch}", highlight=False)
        # Until the first epoch: numba compiles the CPU kernels on a machine's first run, or loads them.
        waiting = waiting_message() + "..." if event.device == "cpu" else "preparing the run..."
        if self.plain:
            self.console.print(waiting, highlight=False)
        self.task = self.bar.add_task(
            escape(config.name), total=config.train.epochs, completed=event.start_epoch, loss="", info=waiting, snapshots=""
        )
