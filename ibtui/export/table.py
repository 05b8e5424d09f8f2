"""snapshots.csv: every information-plane estimate of a run as one flat row, for people's own plots.

Columns: epoch, seed (the training seed itself, not its index), estimator, layer (1-based),
layer_name, I(X;T), I(T;Y) in bits. One row per snapshot x seed x estimator x layer, in that
order; NaN estimates are written as "nan". No plotting library is needed to read it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ibtui.runs.files import write_atomic

from ibtui.runs.record import load_run

CSV_FILE = "snapshots.csv"
HEADER = ("epoch", "seed", "estimator", "layer", "layer_name", "I(X;T)", "I(T;Y)")


def snapshots_csv(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write the flat CSV (default RUN/snapshots.csv) atomically; its path."""
    record = load_run(run_dir)
    seeds = list(record.summary.get("seeds") or range(record.config.train.seed, record.config.train.seed + record.config.train.seeds))
    names = record.layer_names
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for snapshot in record.snapshots:
        for estimator, per_seed in snapshot.mi.items():
            for s, layers in enumerate(per_seed):
                seed = seeds[s] if s < len(seeds) else s
                for i, (ixt, ity) in enumerate(layers):
                    name = names[i] if i < len(names) else f"layer {i + 1}"
                    writer.writerow((snapshot.epoch, seed, estimator, i + 1, name, repr(float(ixt)), repr(float(ity))))
    target = Path(path) if path else record.path / CSV_FILE
    write_atomic(target, buffer.getvalue().encode())
    return target
