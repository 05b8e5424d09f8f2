"""Sweeps: a grid of ordinary runs, one directory each, run here or on a Ray cluster.

    spec.py         the grid (--grid options or a [grid] table), its points, their names, sweep.toml
    points.py       where each point stands on disk: new, finished, or to be resumed
    run.py          one sweep start to end: checks, the backend, the report
    local.py        the local scheduler: up to K `ibtui run` / `ibtui resume` subprocesses at once
    ray_backend.py  the Ray backend: each point a Ray task whose events stream back to the driver's RunStore
    display.py      what a backend tells the front end (points started, progressing, ended)
    report.py       the verdict matrix of a sweep and SWEEP/REPORT.md (grid.png via ibtui.export.grid)
    listing.py      what `ibtui runs` lists

No matplotlib at import time (figures are drawn by ibtui.export, imported where needed).
"""
