"""`ibtui sweep --ray` against a real local Ray instance (skipped only where Ray cannot be imported).

The driver writes every run directory from the events its tasks stream back, so the Ray sweep's
points must hold exactly what the local backend writes: same files, same snapshot records.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ibtui.sweeps.spec import build_spec

from sweep_helpers import TINY, TINY_SETTINGS, cli, records_without_timing, status

# One Ray instance for the module (the fixture below) on one xdist worker.
pytestmark = pytest.mark.xdist_group("ray")

REPO = Path(__file__).resolve().parents[1]
RUN_FILES = {"config.toml", "summary.json", "snapshots.jsonl", "checkpoint.pt", "info_plane.png", "loss.png", "snr.png", "mi_curves.png"}


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray for the module. Its workers run at nice 0 like the rest of the suite: Ray
    starts them at nice 15 by default, and two busy nice-0 processes on 2 cores then leave a
    point's task about 2 % of a core (the stop-and-resume test ran for over 9 minutes instead
    of 26 s under two `yes` burners)."""
    import signal

    ray = pytest.importorskip("ray")
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             _system_config={"worker_niceness": 0},
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "PYTHONHASHSEED": "0"}})
    yield ray
    ray.shutdown()
    for signum, handler in handlers.items():  # ray.init installs its own SIGTERM handler in this process
        signal.signal(signum, handler)


def _files(run_dir: Path) -> set[str]:
    return {p.name for p in run_dir.iterdir() if p.is_file()}


@pytest.mark.slow
def test_a_ray_sweep_writes_the_same_run_directories_as_the_local_backend(tmp_path, monkeypatch, capsys, ray_instance):
    from ibtui.sweeps.run import run_sweep

    spec = build_spec(grid=["model.activation=tanh,relu"], settings={**TINY_SETTINGS, "train.seeds": 2})
    outcome = run_sweep(spec, tmp_path / "ray", ray=True)
    assert outcome.finished, outcome.results
    assert ray_instance.is_initialized()  # a Ray the caller started is left running
    code, _, err = cli(monkeypatch, capsys, "sweep", "--out", str(tmp_path / "local"), "--grid", "model.activation=tanh,relu",
                       "--seeds", "2", *TINY)
    assert code == 0, err
    for name in ("activation=tanh", "activation=relu"):
        on_ray, here = tmp_path / "ray" / name, tmp_path / "local" / name
        assert status(on_ray) == "finished"
        assert _files(on_ray) == _files(here) == RUN_FILES
        assert (on_ray / "config.toml").read_text() == (here / "config.toml").read_text()
        assert records_without_timing(on_ray) == records_without_timing(here)
    assert (tmp_path / "ray" / "REPORT.md").exists() and (tmp_path / "ray" / "grid.png").exists()


@pytest.mark.slow
def test_a_stopped_ray_sweep_is_interrupted_and_resumes_to_the_same_records(tmp_path, ray_instance):
    """Stop a Ray point, resume it and stop it again: the records equal an uninterrupted run's up
    to the last one kept. The run is far longer than any stop takes to arrive (polls of a Ray
    actor, every half second), so each stop lands mid-run however loaded the machine is; the
    uninterrupted reference is run in-process and cut after the same snapshot."""
    from ibtui.engine.control import RunControl
    from ibtui.engine.events import Snapshot
    from ibtui.runs.runner import execute, prepare_run
    from ibtui.sweeps.display import NullDisplay
    from ibtui.sweeps.run import run_sweep

    settings = {**TINY_SETTINGS, "train.epochs": 100_000, "info.every": 50, "info.checkpoint_every": 1}
    spec = build_spec(grid=["model.activation=tanh"], settings=settings)
    point = tmp_path / "sweep" / "activation=tanh"

    def stopped_sweep(after_epoch):
        holder = {}

        class StopAfter(NullDisplay):
            def point_progress(self, name, epoch):
                if epoch > after_epoch and not holder["scheduler"].stops:
                    holder["scheduler"].request_stop()

        return run_sweep(spec, tmp_path / "sweep", ray=True, display=StopAfter(),
                         scheduler_hook=lambda s: holder.update(scheduler=s))

    first = stopped_sweep(100)
    assert first.results == {"activation=tanh": "interrupted"} and first.report is None
    assert status(point) == "interrupted"
    cut = records_without_timing(point)
    assert len(cut) >= 3  # epochs 0, 50, 100 at least: the stop came after epoch 100
    second = stopped_sweep(cut[-1]["epoch"] + 100)  # the same command resumes the point, then stop again
    assert second.results == {"activation=tanh": "interrupted"} and status(point) == "interrupted"
    resumed = records_without_timing(point)
    assert resumed[:len(cut)] == cut and len(resumed) >= len(cut) + 2
    last = resumed[-1]["epoch"]
    assert [r["epoch"] for r in resumed] == list(range(0, last + 1, 50))

    control = RunControl()

    def stop_at_last(event):
        if isinstance(event, Snapshot) and event.epoch >= last:
            control.request_stop()

    execute(*prepare_run(spec.points()[0].config, tmp_path / "whole"), [stop_at_last], control)
    whole = [r for r in records_without_timing(tmp_path / "whole") if r["epoch"] <= last]
    # A resumed run continues from its checkpoint exactly as an uninterrupted one would.
    assert resumed == whole


def test_an_unreachable_ray_address_is_one_sentence_within_seconds(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    code, _, err = cli(monkeypatch, capsys, "sweep", "--out", str(out), "--grid", "model.activation=tanh", "--ray", "127.0.0.1:9")
    assert code == 2 and "the Ray cluster at 127.0.0.1:9 does not answer" in err and err.count("\n") == 1
    assert not out.exists()


def test_ray_asked_for_but_not_installed_is_one_sentence(tmp_path):
    fake = tmp_path / "site"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    out = tmp_path / "sweep"
    env = dict(os.environ, PYTHONPATH=f"{fake}{os.pathsep}{REPO}", PYTHONHASHSEED="0")
    result = subprocess.run([sys.executable, "-m", "ibtui.cli", "sweep", "--out", str(out), "--grid",
                             "model.activation=tanh", "--ray"], env=env, capture_output=True, timeout=120)
    err = result.stderr.decode()
    assert result.returncode == 2 and "--ray needs Ray, which is not installed" in err and err.count("\n") == 1
    assert not out.exists()
