"""ibtui: a terminal laboratory for the information plane of neural networks."""

import os

__version__ = "0.1.0"

# OpenMP threads that spin while waiting turn torch's CPU kernels 10-100x slower whenever
# another busy process shares the cores (measured: KDE snapshot 127 ms -> 11 s on 2 cores with
# one other job). A sleeping waiter costs a wake-up (~60 us on a 2-core VM) each time a parallel
# region starts, which is why the compiled training step runs a whole epoch in one region. This
# only takes effect if ibtui is imported before torch; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name: str):
    """``ibtui.Recorder`` without importing torch when only ``import ibtui`` is needed."""
    if name in ("Recorder", "RecorderError"):
        from ibtui import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module 'ibtui' has no attribute {name!r}")
