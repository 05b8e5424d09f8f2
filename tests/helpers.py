"""Small shared helpers for the engine tests: tiny configs that train in well under a second."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ibtui.config import RunConfig
from ibtui.engine.events import TIMING_FIELDS
from ibtui.runs.presets import load_preset

REPO = Path(__file__).resolve().parents[1]


def tiny_config(**overrides) -> RunConfig:
    """The tanh preset cut down: a small net, few epochs, a snapshot every other epoch."""
    base = {
        "train.epochs": 12,
        "model.hidden": (6, 4, 3),
        "info.estimators": ("binning", "kde_upper"),
        "info.schedule": "every",
        "info.every": 2,
        "info.checkpoint_every": 2,
        "train.device": "cpu",
        "info.on": "test",  # MI on the 819 test inputs: 25x less O(N^2) work than all 4096
    }
    base.update(overrides)
    return load_preset("tanh").with_overrides(base)


def snapshot_lines_without_timing(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        for name in TIMING_FIELDS:
            record.pop(name, None)
    return records


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "ibtui.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
    )


def broken_estimator_initializer(*args) -> None:
    """Stands in for the estimator process's initializer to make the process pool break."""
    raise RuntimeError("this estimator process fails on purpose")


def crashing_engine_child(config, run_dir, run_id, control, events, log) -> None:
    """Stands in for runner._execute_in_child: says why on stderr and dies without a word sent."""
    import os
    import sys

    from ibtui.runs import runner

    with open(log, "ab", buffering=0) as sink:
        os.dup2(sink.fileno(), 2)
    print("Fatal Python error: Segmentation fault (pretend)", file=sys.stderr, flush=True)
    runner.os._exit(3)


def call_main(*args: str, capsys=None) -> tuple[int, str]:
    """`ibtui ARGS` in this process (no interpreter start-up): (exit code, stderr and stdout
    joined into one line of text; empty without capsys)."""
    from ibtui.cli import main

    saved = sys.argv
    sys.argv = ["ibtui", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    if capsys is None:
        return code, ""
    captured = capsys.readouterr()
    return code, " ".join((captured.err + " " + captured.out).split())
