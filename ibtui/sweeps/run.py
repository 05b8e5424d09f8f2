"""One sweep, start to end: check the spec and the directory, run the points, write the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ibtui.sweeps.display import SweepDisplay
from ibtui.sweeps.points import check_point_dirs
from ibtui.sweeps.spec import Point, SweepSpec, check_sweep_dir, claim_sweep_dir


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


def prepare_sweep(spec: SweepSpec, out: str | Path, *, ray: bool = False, address: str | None = None,
                  workers: int | None = None) -> tuple[list[Point], bool, bool]:
    """Every check that can fail on bad input, before anything is written: the points (each a
    validated config), Ray importable and its cluster answering when asked for, then the
    directory (claimed last). (points, resumed, whether this call started Ray)."""
    points = spec.points()
    started_ray = False
    out = Path(out)
    if ray:
        from ibtui.sweeps.ray_backend import connect, import_ray

        import_ray()
        check_sweep_dir(out, spec)  # its refusals before a connection that may take seconds
        if out.is_dir():
            check_point_dirs(out, points)
        started_ray = connect(address, workers)
    try:
        if out.is_dir():
            check_point_dirs(out, points)  # before claiming: a foreign folder must stay untouched
        resumed = claim_sweep_dir(out, spec)
    except BaseException:
        if started_ray:
            import ray as ray_module

            ray_module.shutdown()
        raise
    return points, resumed, started_ray


def run_sweep(spec: SweepSpec, out: str | Path, *, workers: int | None = None, ray: bool = False,
              address: str | None = None, display: SweepDisplay | None = None, scheduler_hook=None) -> SweepOutcome:
    """Run (or resume) a sweep into `out`; with every point finished, write REPORT.md and grid.png."""
    out = Path(out)
    points, resumed, started_ray = prepare_sweep(spec, out, ray=ray, address=address, workers=workers)
    if ray:
        from ibtui.sweeps.ray_backend import RayScheduler

        scheduler = RayScheduler(out, points, address=address, workers=workers, display=display)
        scheduler.started_ray = started_ray
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
