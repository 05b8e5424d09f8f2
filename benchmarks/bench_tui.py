"""Epochs per second with the TUI open versus headless, same config, real engine.

    python benchmarks/bench_tui.py [--epochs 1000] [--preset tanh]

Headless: prepare_run + execute with no listener (what `ibtui run -q` does, minus the PNGs).
TUI: the app in a headless Textual session (run_test) at 120x36, driving the same run through its
worker, buffer and 5-per-second redraws. Speed is epochs / the engine's own elapsed_s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from ibtui.runs.presets import load_preset
from ibtui.runs.runner import execute, prepare_run


def config_for(preset: str, epochs: int, estimator: str):
    return load_preset(preset).with_overrides({"train.epochs": epochs, "info.estimators": (estimator,)})


def headless(config, root: Path) -> float:
    trainer, store = prepare_run(config, root / "headless")
    outcome = execute(trainer, store)
    assert outcome.status == "finished", outcome
    return outcome.epoch / outcome.elapsed_s


async def with_tui(config, root: Path) -> float:
    from ibtui.tui.app import IbtuiApp

    app = IbtuiApp(config=config, out=root / "tui", exporter=lambda run_dir: [])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("s")
        while app.run_state is None or app.run_state.active:
            await pilot.pause(0.2)
    summary = json.loads((root / "tui" / "summary.json").read_text())
    assert summary["status"] == "finished", summary
    return summary["epoch"] / summary["elapsed_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tanh")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--estimator", default="kde_upper", help="binning makes the run training-bound")
    args = parser.parse_args()
    config = config_for(args.preset, args.epochs, args.estimator)
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            h = headless(config, root)
            t = asyncio.run(with_tui(config, root))
        print(f"{args.preset} {args.epochs} epochs {args.estimator}: headless {h:.1f} epochs/s, TUI open {t:.1f} epochs/s ({t / h:.0%})")


if __name__ == "__main__":
    main()
