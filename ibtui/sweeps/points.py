"""Where each point of a sweep stands on disk: new, finished, or to be resumed."""

from __future__ import annotations

import json
from pathlib import Path

from ibtui.sweeps.spec import Point

POINTS_DIR = ".points"  # each point's config as a preset file, for `ibtui run --preset`
LOGS_DIR = ".logs"  # each point's console output (local backend)

NEW, FINISHED, RESUME = "new", "finished", "resume"


def point_state(run_dir: Path) -> str:
    """NEW (no run yet), FINISHED (summary status finished) or RESUME (anything else that holds a run)."""
    if not (run_dir / "config.toml").exists():
        return NEW
    try:
        status = json.loads((run_dir / "summary.json").read_text()).get("status")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        status = None
    return FINISHED if status == "finished" else RESUME


def read_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "summary.json").read_text()).get("status")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def last_epoch(run_dir: Path) -> int | None:
    """The epoch of the last snapshot written (read from the end of snapshots.jsonl), for progress."""
    path = run_dir / "snapshots.jsonl"
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            tail = handle.read()
    except OSError:
        return None
    for line in reversed(tail.split(b"\n")[:-1]):  # complete lines only
        try:
            return int(json.loads(line)["epoch"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def count_lines(run_dir: Path) -> int:
    try:
        return (run_dir / "snapshots.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def check_point_dirs(sweep_dir: Path, points: list[Point]) -> None:
    """A point directory holding a run of another config means the folder was tampered with."""
    from ibtui.config import load_toml
    from ibtui.errors import ConfigError, StoreError
    from ibtui.runs.runner import with_absolute_paths

    for point in points:
        run_dir = sweep_dir / point.name
        if run_dir.exists() and not run_dir.is_dir():
            raise StoreError(f"{run_dir} exists and is not a run directory")
        if run_dir.is_dir() and not (run_dir / "config.toml").exists() and any(run_dir.iterdir()):
            raise StoreError(f"{run_dir} holds files but no run; move them away to run this point")
        if (run_dir / "config.toml").exists():
            try:
                recorded = load_toml(run_dir / "config.toml")
            except ConfigError as exc:
                raise StoreError(f"{run_dir} holds a run this ibtui cannot read: {exc}") from None
            if recorded.to_dict() != with_absolute_paths(point.config).to_dict():
                raise StoreError(f"{run_dir} holds a run of another configuration than this sweep's point")
