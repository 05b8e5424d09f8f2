"""The command line: the app by default; run, resume, presets, export and the science commands.

One module per command family registers its commands on the shared typer `app` (cli/common.py).
Headless commands never import textual (the app is imported lazily), so `ibtui run` starts fast,
and every bad input becomes one sentence on stderr with exit code 2.
"""

from __future__ import annotations

import sys

from ibtui.cli import (  # noqa: F401  (each module registers its commands)
    compare, estimate, export, presets, report, reproduce, runs, sensitivity, sweep, train, watch,
)
from ibtui.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, app, err_console
from ibtui.engine.processes import set_openmp_policy, skip_exit_collection
from ibtui.errors import IbtuiError


def main() -> None:
    """Console entry point: IbtuiError becomes one sentence and exit 2, an OSError that escapes
    (a disk that filled up) one sentence and exit 1; never a traceback."""
    set_openmp_policy()  # this process is ibtui's own: before any command imports torch
    skip_exit_collection()  # and it ends with the command: no collection of torch's objects at exit
    try:
        app()
    except IbtuiError as exc:
        _say(f"ibtui: {exc}")
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        _say("ibtui: aborted")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:  # a full disk, a read-only filesystem: one sentence, not a traceback
        where = f" {exc.filename}" if exc.filename else ""
        _say(f"ibtui: cannot access{where}: {exc.strerror or exc}")
        sys.exit(EXIT_FAILED)


def _say(text: str) -> None:
    try:
        err_console.print(text, style="bold red", highlight=False, markup=False, soft_wrap=True)
    except OSError:
        pass


