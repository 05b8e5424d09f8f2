"""`ibtui watch RUN`: the app on a run directory that another process writes, or a finished run.

Read-only: it takes no lock and writes nothing into RUN (see ibtui/tui/follow.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import app, fail


@app.command()
def watch(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory (being written, or finished).")],
) -> None:
    """Follow a run live from any terminal (plane, curves, status, verdicts when it ends), or replay
    a finished one. Reads only RUN; never writes to it."""
    from ibtui.tui.follow import RunFollower

    follower = RunFollower(run_dir)  # not a run directory: StoreError, one sentence, exit 2
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("watch needs a terminal; without one use 'ibtui report RUN'")
    from ibtui.tui.app import IbtuiApp

    IbtuiApp(watch=follower).run()
