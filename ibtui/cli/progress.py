"""The headless progress display of `ibtui run`: a Rich progress bar fed by the event stream."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ibtui.engine.events import Event, Progress as ProgressEvent, RunFailed, RunFinished, RunStarted, Snapshot


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

    def __enter__(self) -> ConsoleProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, ProgressEvent):
            self.bar.update(self.task, completed=event.epoch, loss=f"loss {event.train_loss:.4f}")
        elif isinstance(event, Snapshot):
            # Estimates arrive behind training (they run beside it): the bar keeps counting
            # epochs trained, and the snapshot count shows how far the estimates are.
            ixt, ity = event.mean_mi(self.estimator)[self.last_layer]
            info = f"last hidden I(X;T) {ixt:.2f} I(T;Y) {ity:.3f}"
            self.snapshots += 1
            self.bar.update(self.task, snapshots=f"{self.snapshots}/{self.n_snapshots} snapshots", info=info)
            if self.plain and (event.epoch >= self.next_line_epoch or event.epoch == self.total):
                self.next_line_epoch = event.epoch + max(1, self.total // 10)
                elapsed = f"{event.elapsed_s:.1f}s"
                loss = sum(event.train_loss) / len(event.train_loss)
                self.console.print(f"epoch {event.epoch:>{len(str(self.total))}}/{self.total}  loss {loss:.4f}  {info}  {elapsed}", highlight=False)
        elif isinstance(event, RunFinished | RunFailed):
            self.bar.update(self.task, completed=event.epoch)

    def _started(self, event: RunStarted) -> None:
        config = event.config
        self.estimator = config.info.estimators[0]
        self.total = config.train.epochs
        self.n_snapshots = len(event.schedule)
        self.snapshots = sum(1 for epoch in event.schedule if epoch <= event.start_epoch)
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
        self.task = self.bar.add_task(
            escape(config.name), total=config.train.epochs, completed=event.start_epoch, loss="", info="", snapshots=""
        )
