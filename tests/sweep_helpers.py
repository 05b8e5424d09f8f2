"""Shared by the sweep tests: a tiny sweep spec and the CLI run in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

TINY = [
    "--set", "model.hidden=[6,4,3]", "--set", 'info.estimators=["binning"]', "--set", "info.schedule=every",
    "--set", "info.every=2", "--set", "info.checkpoint_every=2", "--set", "train.device=cpu", "--set", "info.on=test",
    "--epochs", "12",
]

TINY_SETTINGS = {"model.hidden": [6, 4, 3], "info.estimators": ["binning"], "info.schedule": "every", "info.every": 2,
                 "info.checkpoint_every": 2, "train.device": "cpu", "info.on": "test", "train.epochs": 12}


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ibtui.cli.main in-process: (exit code, stdout, stderr)."""
    from ibtui import cli as cli_module

    from helpers import _restore_signal_dispositions, _signal_dispositions

    monkeypatch.setattr(sys, "argv", ["ibtui", *args])
    handlers = _signal_dispositions()
    code = 0
    try:
        cli_module.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        _restore_signal_dispositions(handlers)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def status(run_dir: Path) -> str:
    return json.loads((run_dir / "summary.json").read_text())["status"]


def records_without_timing(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "snapshots.jsonl").read_text().splitlines()]
    for record in records:
        record.pop("elapsed_s", None)
    return records


def tree(path: Path) -> dict[str, bytes]:
    """Every file under path (relative name -> bytes), to prove that nothing was written."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
