"""Sweeps: a grid of ordinary runs, one directory each, run here or on a Ray cluster.

    spec.py      the grid (--grid options or a [grid] table), its points, their names, sweep.toml
    local.py     the local scheduler: up to K `ibtui run` subprocesses at once, resumable
    ray.py       the Ray backend: each point a Ray task whose events stream back to the driver's RunStore
    report.py    the verdict matrix of a sweep and SWEEP/REPORT.md (grid.png via ibtui.export.grid)

No matplotlib at import time (figures are drawn by ibtui.export, imported where needed).
"""
