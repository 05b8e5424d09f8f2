"""`ibtui export RUN --movie / --csv / --format`: the GIF's frames, the flat CSV, vector figures."""

from __future__ import annotations

import csv

import pytest
from PIL import Image

from sweep_helpers import cli
from test_png import fake_run


def test_the_movie_has_a_frame_per_snapshot_and_holds_the_last(tmp_path):
    from ibtui.export.movie import GIF_FILE, movie_animation, movie_frames, write_movie
    from ibtui.runs.record import load_run

    run = fake_run(tmp_path / "run", epochs=12)  # 13 snapshots, 13 frames
    record = load_run(run)
    _, animation, frames = movie_animation(record)
    animation._draw_was_started = True  # built to count its frames, never drawn: no "deleted without rendering" warning
    assert frames == len(record.snapshots)  # few snapshots: every one is a frame
    written = write_movie(run)
    assert [p.name for p in written][0] == GIF_FILE
    with Image.open(run / GIF_FILE) as gif:
        assert gif.format == "GIF"
        first = gif.convert("RGB").tobytes()
        gif.seek(gif.n_frames - 1)
        last = gif.convert("RGB").tobytes()
        assert 2 <= gif.n_frames <= frames + 1 and first != last  # the plane moves
    assert (run / GIF_FILE).stat().st_mode & 0o044  # an ordinary file, readable by others as the PNGs
    import numpy as np

    epochs = np.array([0, *np.geomspace(1, 10_000, 900)])
    picked = movie_frames(epochs, 120)
    assert picked[0] == 0 and picked[-1] == len(epochs) - 1 and len(picked) <= 120


def test_export_csv_has_one_row_per_snapshot_seed_estimator_layer(tmp_path, monkeypatch, capsys):
    run = fake_run(tmp_path / "run", seeds=2, epochs=50)
    code, out, err = cli(monkeypatch, capsys, "export", str(run), "--csv")
    assert code == 0, err
    from ibtui.runs.record import load_run

    record = load_run(run)
    with open(run / "snapshots.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "seed", "estimator", "layer", "layer_name", "I(X;T)", "I(T;Y)"]
    assert len(rows) == len(record.snapshots) * 2 * 2 * 6
    last = record.snapshots[-1]
    row = next(r for r in rows if r["epoch"] == str(last.epoch) and r["seed"] == "1" and r["estimator"] == "binning"
               and r["layer"] == "3")
    assert float(row["I(X;T)"]) == last.mi["binning"][1][2][0] and float(row["I(T;Y)"]) == last.mi["binning"][1][2][1]
    assert row["layer_name"] == "L3 tanh 5"
    assert str(run / "snapshots.csv") in out


def test_export_formats_write_each_figure_in_each_format(tmp_path, monkeypatch, capsys):
    run = fake_run(tmp_path / "run", grad=True)
    code, out, err = cli(monkeypatch, capsys, "export", str(run), "--format", "svg,pdf")
    assert code == 0, err
    for stem in ("info_plane", "loss", "snr", "mi_curves"):
        assert (run / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
        assert (run / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    assert len(out.splitlines()) == 8


def test_an_unknown_format_is_one_sentence_and_writes_nothing(tmp_path, monkeypatch, capsys):
    run = fake_run(tmp_path / "run")
    before = sorted(p.name for p in run.iterdir())
    code, _, err = cli(monkeypatch, capsys, "export", str(run), "--format", "png,jpeg")
    assert code == 2 and "unknown figure format 'jpeg'" in err and err.count("\n") == 1
    assert sorted(p.name for p in run.iterdir()) == before


@pytest.mark.parametrize("option", ["--movie", "--csv"])
def test_movie_and_csv_of_a_run_without_snapshots(tmp_path, monkeypatch, capsys, option):
    run = fake_run(tmp_path / "run", snapshots=False, status="interrupted", stop_at=0)
    code, _, err = cli(monkeypatch, capsys, "export", str(run), option)
    # A run with nothing measured yet has nothing to draw or tabulate: one sentence, exit 2.
    assert code == 2 and "no snapshots yet" in err and err.count("\n") == 1
    assert not (run / "info_plane.gif").exists() and not (run / "snapshots.csv").exists()
