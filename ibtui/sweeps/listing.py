"""What `ibtui runs` lists: every run and sweep under a folder, read without locking anything.

A run is a folder with config.toml; a sweep a folder with sweep.toml (its points are listed
under it, indented). Verdicts come from summary.json's "analysis" (written by the run store when
a run ends), one character per layer for I(X;T) of the first estimator: C compression, - none,
? inconclusive, . not measured. Damaged or foreign folders are shown with status "unreadable".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ibtui.sweeps.report import SYMBOLS

MAX_DEPTH = 3


@dataclass
class Entry:
    kind: str  # run | sweep
    name: str
    depth: int
    status: str = ""
    what: str = ""
    epochs: str = ""
    seeds: str = ""
    date: str = ""
    verdicts: str = ""
    path: Path | None = None


def verdict_chars(analysis: dict | None) -> str:
    estimators = (analysis or {}).get("estimators") or {}
    if not estimators:
        return ""
    name, entries = next(iter(estimators.items()))
    return "".join(SYMBOLS.get(e.get("ixt", {}).get("verdict"), ".") for e in entries) + f" ({name})"


def run_entry(path: Path, depth: int, name: str | None = None) -> Entry:
    from ibtui.config import ConfigError, load_toml, what_ran

    entry = Entry("run", name or path.name, depth, path=path)
    try:
        config = load_toml(path / "config.toml")
        summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").exists() else {}
    except (ConfigError, OSError, json.JSONDecodeError, UnicodeDecodeError):
        entry.status = "unreadable"
        return entry
    entry.status = str(summary.get("status", "created"))
    entry.what = ", ".join(what_ran(config, config.name)[1:]) + f" on {config.data.name}"
    done, total = summary.get("epoch", 0), config.train.epochs
    entry.epochs = f"{total:,}" if entry.status == "finished" else f"{done:,}/{total:,}"
    entry.seeds = str(config.train.seeds)
    entry.date = str(summary.get("started", ""))[:16].replace("T", " ")
    entry.verdicts = verdict_chars(summary.get("analysis"))
    return entry


def sweep_entries(path: Path, depth: int) -> list[Entry]:
    from ibtui.errors import IbtuiError
    from ibtui.sweeps.spec import read_sweep

    head = Entry("sweep", path.name + "/", depth, path=path)
    try:
        spec = read_sweep(path)
        points = spec.points()
    except IbtuiError:
        head.status = "unreadable"
        return [head]
    rows = []
    for point in points:
        if (path / point.name / "config.toml").exists():
            rows.append(run_entry(path / point.name, depth + 1))
        else:
            rows.append(Entry("run", point.name, depth + 1, status="not run", path=path / point.name))
    finished = sum(r.status == "finished" for r in rows)
    head.status = "finished" if finished == len(rows) else f"{finished}/{len(rows)} finished"
    head.what = "sweep of " + " x ".join(f"{axis} ({len(values)})" for axis, values in spec.grid) + f" on {spec.preset}"
    head.epochs = rows[0].epochs.split("/")[-1] if rows and rows[0].epochs else ""
    head.seeds = rows[0].seeds if rows else ""
    head.date = min((r.date for r in rows if r.date), default="")
    return [head, *rows]


def list_runs(directory: str | Path) -> list[Entry]:
    """The runs and sweeps in `directory` and in plain folders below it (up to MAX_DEPTH), by path."""
    from ibtui.errors import StoreError
    from ibtui.sweeps.spec import is_sweep_dir

    root = Path(directory)
    if not root.is_dir():
        raise StoreError(f"{root} is not a directory")
    if is_sweep_dir(root):
        return sweep_entries(root, 0)
    if (root / "config.toml").exists():
        return [run_entry(root, 0)]
    entries: list[Entry] = []

    def walk(folder: Path, level: int) -> None:
        for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            name = child.relative_to(root).as_posix()
            if is_sweep_dir(child):
                found = sweep_entries(child, 0)
                found[0].name = name + "/"
                entries.extend(found)
            elif (child / "config.toml").exists():
                entries.append(run_entry(child, 0, name))
            elif level < MAX_DEPTH:
                walk(child, level + 1)

    walk(root, 0)
    return entries
