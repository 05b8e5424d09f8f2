"""One sweep, start to end: check the spec and the directory, run the points, write the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ibtui.sweeps.display import SweepDisplay
from ibtui.sweeps.points import check_point_dirs
from ibtui.sweeps.spec import Point, SweepSpec, claim_sweep_dir


@dataclass
class SweepOutcome:
    path: Path
    results: dict[str, str]  # point name -> finished | interrupted | failed | not started
    resumed: bool
    report: Path | None = None

    @property
    def finished(self) -> bool:
        return all(status == "finished" for status in self.results.values())

    @property
    def interrupted(self) -> bool:
        return any(status in ("interrupted", "not started") for status in self.results.values())


def prepare_sweep(spec: SweepSpec, out: str | Path, *, ray: bool = False) -> tuple[list[Point], bool]:
    """Every check that can fail on bad input, before anything is written: the points (each a
    validated config), Ray importable when asked for, then the directory (claimed last)."""
    points = spec.points()
    if ray:
        from ibtui.sweeps.ray_backend import import_ray

        import_ray()
    out = Path(out)
    if out.is_dir():
        check_point_dirs(out, points)  # before claiming: a foreign folder must stay untouched
    resumed = claim_sweep_dir(out, spec)
    return points, resumed


def run_sweep(spec: SweepSpec, out: str | Path, *, workers: int | None = None, ray: bool = False,
              address: str | None = None, display: SweepDisplay | None = None, scheduler_hook=None) -> SweepOutcome:
    """Run (or resume) a sweep into `out`; with every point finished, write REPORT.md and grid.png."""
    out = Path(out)
    if ray:
        from ibtui.sweeps.ray_backend import check_address

        check_address(address)  # an unreachable cluster is said before anything is written
    points, resumed = prepare_sweep(spec, out, ray=ray)
    if ray:
        from ibtui.sweeps.ray_backend import RayScheduler

        scheduler = RayScheduler(out, points, address=address, workers=workers, display=display)
    else:
        from ibtui.sweeps.local import LocalScheduler

        scheduler = LocalScheduler(out, points, workers=workers, display=display)
    if scheduler_hook:
        scheduler_hook(scheduler)
    results = scheduler.run()
    outcome = SweepOutcome(out, {p.name: results.get(p.name, "not started") for p in points}, resumed)
    if outcome.finished:
        from ibtui.sweeps.report import write_report

        outcome.report = write_report(out)
    return outcome
