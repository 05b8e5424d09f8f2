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


# The fault campaign's run (tests/test_faults.py): binning only (the fastest estimator) and 300
# epochs, long enough to be hit anywhere by a signal, a snapshot every 3 epochs (101 in all) and
# a checkpoint every 4 snapshots. Its uninterrupted run is made once per session (conftest.py).
CAMPAIGN_CONFIG = tiny_config(**{
    "train.epochs": 300, "info.every": 3, "info.checkpoint_every": 4, "train.batch_size": 128,
    "info.estimators": ("binning",),
})


def snapshot_lines_without_timing(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        for name in TIMING_FIELDS:
            record.pop(name, None)
    return records


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`ibtui ARGS` in a fresh interpreter. The timeout only guards against a hang: the first run
    of a fresh checkout compiles the numba kernels (minutes on a loaded 2-core machine)."""
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


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def _signal_dispositions() -> dict:
    import signal

    return {name: signal.getsignal(getattr(signal, name)) for name in STOP_SIGNALS if hasattr(signal, name)}


def _restore_signal_dispositions(saved: dict) -> None:
    """A command run in-process may leave stop signals ignored (`ibtui run` does so after its
    figures, until its process exits): give pytest its own handlers back."""
    import signal

    for name, handler in saved.items():
        if handler is not None:
            signal.signal(getattr(signal, name), handler)


def main_exit_code(*args: str) -> int:
    """Run `ibtui ARGS` through cli.main in this process and return its exit code; sys.argv and
    the signal handlers are put back as they were."""
    from ibtui.cli import main

    saved = sys.argv
    handlers = _signal_dispositions()
    sys.argv = ["ibtui", *args]
    try:
        main()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
        _restore_signal_dispositions(handlers)


def call_main(*args: str, capsys=None) -> tuple[int, str]:
    """`ibtui ARGS` in this process (no interpreter start-up): (exit code, stderr and stdout
    joined into one line of text; empty without capsys). The signal handlers are restored after."""
    code = main_exit_code(*args)
    if capsys is None:
        return code, ""
    captured = capsys.readouterr()
    return code, " ".join((captured.err + " " + captured.out).split())


def exit_code(process, timeout: float = 300.0) -> int | None:
    """A multiprocessing child's exit code once it has ended (None if it is still running after
    `timeout`, a guard against a hang). Joining in a loop, not once: a pool's manager thread may
    reap the child at the same moment, and the join that loses that race returns with the exit
    code not yet set (multiprocessing's poll treats ECHILD as "not ended")."""
    import time

    deadline = time.monotonic() + timeout
    while process.exitcode is None and time.monotonic() < deadline:
        process.join(0.1)
    return process.exitcode
