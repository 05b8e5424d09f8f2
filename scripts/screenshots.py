"""Make screenshots/*.png of the app from Textual's SVG screenshots (cairosvg).

    python scripts/screenshots.py [--epochs 1500] [--size 120x36]
    python scripts/screenshots.py --size 80x24      # files named *-80x24.png
    python scripts/screenshots.py --out /tmp/shots  # elsewhere than screenshots/

settings.png: the form on the tanh preset; running.png: a real tanh run in progress;
finished.png: the same run finished (with the verdicts notification); verdicts.png: its
compression verdicts (the v key). Uses the real engine (kde_upper) in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import cairosvg

from ibtui.runs.presets import load_preset
from ibtui.tui.app import IbtuiApp

DEFAULT_SIZE = (120, 36)
OUT = Path(__file__).resolve().parents[1] / "screenshots"


def save(app: IbtuiApp, name: str, out: Path = OUT) -> Path:
    width, height = app.size
    suffix = "" if (width, height) == DEFAULT_SIZE else f"-{width}x{height}"
    path = out / f"{name}{suffix}.png"
    cairosvg.svg2png(bytestring=app.export_screenshot(title="ibtui").encode(), write_to=str(path), output_width=15 * width)
    print(f"wrote {path}")
    return path


async def main(epochs: int, running_at: float, size: tuple[int, int], out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    config = load_preset("tanh").with_overrides(
        {"train.epochs": epochs, "info.estimators": ("kde_upper",), "train.device": "cpu"}
    )
    with tempfile.TemporaryDirectory() as tmp:
        app = IbtuiApp(config=config, out=Path(tmp) / "tanh-demo")
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.5)
            save(app, "settings", out)
            await pilot.press("s")
            # Estimates run behind training (in processes of their own): wait for the plane too.
            while app.run_state is None or app.run_state.started is None or len(app.run_state.snapshots) < running_at * len(app.run_state.started.schedule):
                await pilot.pause(0.2)
            await pilot.pause(0.5)
            app.clear_notifications()
            await pilot.pause(0.3)
            save(app, "running", out)
            deadline = time.monotonic() + 600
            while app.run_state.active and time.monotonic() < deadline:
                await pilot.pause(0.5)
            deadline = time.monotonic() + 60  # the PNG export and its notification
            while not any("PNGs" in (n.title or "") for n in app._notifications) and time.monotonic() < deadline:
                await pilot.pause(0.5)
            while app.verdicts is None and time.monotonic() < deadline:
                await pilot.pause(0.5)
            await pilot.pause(0.5)
            save(app, "finished", out)
            await pilot.press("v")
            await pilot.pause(0.5)
            save(app, "verdicts", out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1500)
    parser.add_argument("--running-at", type=float, default=0.6, help="fraction of the snapshots estimated for running.png")
    parser.add_argument("--size", default="120x36", help="terminal size, COLUMNSxROWS")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (default: screenshots/)")
    args = parser.parse_args()
    columns, rows = (int(v) for v in args.size.lower().split("x"))
    asyncio.run(main(args.epochs, args.running_at, (columns, rows), args.out))
