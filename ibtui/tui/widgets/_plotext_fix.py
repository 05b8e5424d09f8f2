"""Make plotext draw overlapping points in a fixed order.

plotext de-duplicates each series' points with list(set(...)) (plotext._utility.no_duplicates);
the points are tuples holding strings, so with Python's per-process hash seed the order, and so
which of two points in the same terminal cell is drawn on top, changes from run to run. An
order-keeping de-duplication draws later points (later epochs) on top, every time.
"""

from __future__ import annotations

import plotext._utility as _utility


def _no_duplicates(data):
    return list(dict.fromkeys(data))


_utility.no_duplicates = _no_duplicates
