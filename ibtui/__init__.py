"""ibtui: a terminal laboratory for the information plane of neural networks.

Importing ibtui changes nothing in the host process (no environment, no threads, no torch):
`ibtui.Recorder` is loaded on first use.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``ibtui.Recorder`` without importing torch when only ``import ibtui`` is needed."""
    if name in ("Recorder", "RecorderError"):
        from ibtui import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module 'ibtui' has no attribute {name!r}")
