"""Where a sweep stands, read from SWEEP/ alone: points done, running, and still to do, and the
epoch each running point has reached (its last snapshot, read from the end of snapshots.jsonl).

A point is done when its summary says "finished" (ibtui.sweeps.points.point_state), running
when its summary says "running" (a RunStore writes that while it trains), and to do otherwise
(not started, interrupted, failed: the sweep command runs or resumes those). Nothing is locked,
so it is safe while the sweep writes; a point whose process died without a word still reads
"running" until the sweep is run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SweepProgress:
    name: str
    done: int
    running: int
    todo: int
    active: tuple[tuple[str, int, int], ...] = ()  # running points: (name, last snapshot epoch, epochs)

    @property
    def total(self) -> int:
        return self.done + self.running + self.todo

    def line(self, width: int = 20) -> str:
        """'act-l2/  ██████░░░░  3 done · 1 running · 2 to do (of 6)'."""
        filled = round(width * self.done / self.total) if self.total else 0
        busy = min(width - filled, round(width * self.running / self.total)) if self.total else 0
        bar = "█" * filled + "▒" * busy + "░" * (width - filled - busy)
        line = f"{self.name}  {bar}  {self.done} done · {self.running} running · {self.todo} to do (of {self.total})"
        return line + "".join(f"\n  {name}: epoch {epoch:,}/{total:,}" for name, epoch, total in self.active)


def sweep_progress(sweep_dir: str | Path, name: str | None = None) -> SweepProgress:
    """The progress of the sweep at `sweep_dir` (a StoreError when it is not a readable sweep)."""
    from ibtui.sweeps.points import FINISHED, last_epoch, point_state, read_status
    from ibtui.sweeps.spec import read_sweep

    path = Path(sweep_dir)
    done = running = todo = 0
    active = []
    for point in read_sweep(path).points():
        run_dir = path / point.name
        if point_state(run_dir) == FINISHED:
            done += 1
        elif read_status(run_dir) == "running":
            running += 1
            active.append((point.name, last_epoch(run_dir) or 0, point.config.train.epochs))
        else:
            todo += 1
    return SweepProgress(name or path.name + "/", done, running, todo, tuple(active))
