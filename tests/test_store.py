import json
import os
import stat
import subprocess

import pytest

from ibtui.errors import DataError, StoreError
from ibtui.runs.runner import execute, prepare_resume, prepare_run
from ibtui.runs.files import write_atomic
from ibtui.runs.record import load_run, read_snapshot_lines
from ibtui.runs.store import RunStore

from helpers import snapshot_lines_without_timing, tiny_config


def test_run_directory_is_complete(tmp_path):
    config = tiny_config()
    execute(*prepare_run(config, tmp_path / "run"))
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.toml", "snapshots.jsonl", "summary.json", "checkpoint.pt"}
    record = load_run(run)
    assert record.config == config
    assert record.summary["status"] == "finished" and record.summary["epoch"] == 12
    assert record.summary["snapshots"] == len(record.snapshots) == 7
    assert record.summary["layers"][-1] == "out softmax 2"
    assert not any(p.name.endswith(".tmp") for p in run.iterdir())


def test_refuses_a_directory_that_holds_a_run_and_overwrites_nothing(tmp_path):
    config = tiny_config()
    execute(*prepare_run(config, tmp_path / "run"))
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(StoreError, match="already holds a run"):
        prepare_run(tiny_config(**{"train.epochs": 3}), tmp_path / "run")
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty"):
        prepare_run(config, tmp_path / "other")


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody can write into: chmod for users, the immutable flag for root."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        yield locked
        locked.chmod(stat.S_IRWXU)
        return
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a filesystem without chattr +i: cannot make a read-only directory")
    try:
        yield locked
    finally:
        subprocess.run(["chattr", "-i", str(locked)], capture_output=True)


def test_read_only_directory_fails_before_training(read_only_dir):
    with pytest.raises(StoreError, match="cannot write the run directory .*(ermission|not permitted)"):
        prepare_run(tiny_config(), read_only_dir / "run")
    with pytest.raises(StoreError, match="cannot write"):
        prepare_run(tiny_config(), read_only_dir)


def test_unwritable_location_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot write the run directory"):
        prepare_run(tiny_config(), blocker / "run")


def test_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"epoch": 0}\n{"epoch": 1}\n{"epo')
    records, good = read_snapshot_lines(path)
    assert records == [{"epoch": 0}, {"epoch": 1}] and good == len(b'{"epoch": 0}\n{"epoch": 1}\n')
    path.write_bytes(b'{"epoch": 0}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(StoreError, match="damaged at line 2"):
        read_snapshot_lines(path)


def test_resume_after_a_torn_write_recomputes_and_matches(tmp_path):
    config = tiny_config(**{"info.checkpoint_every": 3})
    execute(*prepare_run(config, tmp_path / "whole"))
    execute(*prepare_run(config, tmp_path / "cut"))
    # Make it look killed mid-write after the last checkpoint: torn line, status "running".
    log = tmp_path / "cut" / "snapshots.jsonl"
    log.write_bytes(log.read_bytes() + b'{"epoch": 14, "tr')
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    summary["status"] = "running"
    (tmp_path / "cut" / "summary.json").write_text(json.dumps(summary))
    execute(*prepare_resume(tmp_path / "cut"))
    assert snapshot_lines_without_timing(log) == snapshot_lines_without_timing(tmp_path / "whole" / "snapshots.jsonl")


def test_corrupt_checkpoint_is_a_clear_error_not_a_restart(tmp_path):
    control_dir = tmp_path / "run"
    store = RunStore.create(control_dir, tiny_config())
    store.summary["status"] = "interrupted"
    store._write_summary()
    store.close()
    (control_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(StoreError, match="checkpoint .* is damaged"):
        prepare_resume(control_dir)
    assert (control_dir / "checkpoint.pt").exists()


def test_finished_runs_and_foreign_directories_are_refused(tmp_path):
    execute(*prepare_run(tiny_config(), tmp_path / "run"))
    with pytest.raises(StoreError, match="finished run"):
        prepare_resume(tmp_path / "run")
    with pytest.raises(StoreError, match="does not exist"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no config.toml"):
        load_run(tmp_path / "empty")
    (tmp_path / "run" / "config.toml").write_text("format_version = 7\n")
    with pytest.raises(StoreError, match="cannot read"):
        load_run(tmp_path / "run")


def test_write_atomic_replaces_whole_files_with_normal_permissions(tmp_path):
    target = tmp_path / "f.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["f.json"]
    assert stat.S_IMODE(target.stat().st_mode) & 0o044  # readable by group/others under a usual umask


def test_a_resume_that_cannot_start_changes_nothing(tmp_path, monkeypatch):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(60)))
    monkeypatch.chdir(tmp_path)
    config = tiny_config(**{"data.name": "csv", "data.csv": "data.csv", "data.label": "label", "info.on": "all"})
    trainer, store = prepare_run(config, tmp_path / "run")
    assert load_run(tmp_path / "run").config.data.csv == str(csv)  # stored absolute
    execute(trainer, store)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    summary["status"] = "interrupted"
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "run" / "checkpoint.pt").unlink()  # resuming would start over ...
    before = (tmp_path / "run" / "snapshots.jsonl").read_bytes()
    csv.rename(tmp_path / "moved.csv")  # ... but the data is gone
    with pytest.raises(DataError, match="does not exist"):
        prepare_resume(tmp_path / "run")
    assert (tmp_path / "run" / "snapshots.jsonl").read_bytes() == before


def test_write_atomic_syncs_the_directory_after_the_rename(tmp_path, monkeypatch):
    """The rename is durable only once the directory itself is fsynced."""
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_atomic(tmp_path / "f.json", b"one")
    assert synced == [False, True]  # the file's data, then the directory's entry
