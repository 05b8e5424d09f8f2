"""The project's own error types.

Every problem caused by what a user gave us (a preset, an option, a CSV, a run directory)
is raised as an IbtuiError whose message is one clear sentence; the CLI prints it and exits 2.
Anything else that escapes is a bug in ibtui.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class IbtuiError(Exception):
    """A problem with the user's input, explained in one sentence."""


class ConfigError(IbtuiError):
    """A run configuration, preset or option is invalid."""


class DataError(IbtuiError):
    """A dataset cannot be loaded or is unusable."""


class StoreError(IbtuiError):
    """A run directory cannot be written, read or resumed."""


class TrainingDiverged(IbtuiError):
    """The loss became NaN or infinite."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """'unknown activation 'tahn'; did you mean 'tanh'? (known: ...)' as one sentence."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {kind} '{name}'{hint} (known: {', '.join(known)})"
