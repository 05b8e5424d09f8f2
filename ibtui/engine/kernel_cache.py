"""Whether numba's cache already holds ibtui's compiled CPU kernels, so that a run says
"compiling kernels" only when it is about to (20-45 s on a machine's first run) and "loading" when
the kernels come from the cache (well under a second).

numba caches each kernel beside its source, in the package's __pycache__, as an index file
(`MODULE.FUNCTION-LINE.pyXY.nbi`) and its machine code. Where the package folder is read-only
numba uses its user cache directory instead; this check then reports "not cached" and the run
says "compiling", as it would without the check.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
# The kernels every CPU run needs: the training step and the KDE.
_KERNELS = (("engine", "step_cpu.train_steps"), ("estimators", "_kde_cpu.triangle_sums"))


def kernels_cached() -> bool:
    """True when the training step's and the KDE's compiled code are in the package's cache."""
    return all(any((_PACKAGE / folder / "__pycache__").glob(f"{stem}-*.nbi")) for folder, stem in _KERNELS)


def waiting_message(short: bool = False) -> str:
    """What a CPU run shows until its first epoch (`short`: for the app's status line)."""
    if kernels_cached():
        return "loading the compiled kernels"
    return "compiling kernels (once, 30 s to 2 min)" if short else "compiling kernels on a first run (once, 30 s to 2 min)"
