"""Resume checks what it resumes (issue 14, item 2): the log, the checkpoint's owner and epoch,
the config it started with; and a run is never "finished" with snapshots missing."""

import json
import shutil

import pytest
import torch

from ibtui.errors import StoreError
from ibtui.engine.events import RunFinished, RunStarted, Snapshot
from ibtui.runs.runner import execute, prepare_resume, prepare_run
from ibtui.runs.record import load_run
from ibtui.runs.store import RunStore

from helpers import snapshot_lines_without_timing, tiny_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished tiny run (12 epochs, a snapshot every 2, a checkpoint every 2 snapshots)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert execute(*prepare_run(tiny_config(), run)).status == "finished"
    return run


def run_until_checkpoint(config, run, epoch):
    """Feed a store until the checkpoint of `epoch`, then drop everything: a kill just after it."""
    trainer, store = prepare_run(config, run)
    from ibtui.engine.events import Checkpoint

    for event in trainer.run():
        store.handle(event)
        if isinstance(event, Checkpoint) and event.epoch == epoch:
            break
    store.close()
    return run


@pytest.fixture
def mid_run(tmp_path):
    """A tiny run killed just after its checkpoint at epoch 6 (the 4th snapshot)."""
    return run_until_checkpoint(tiny_config(), tmp_path / "mid", 6)


def test_a_deleted_log_is_refused_not_finished_with_holes(mid_run):
    (mid_run / "snapshots.jsonl").unlink()
    with pytest.raises(StoreError, match=r"lacks the snapshots of epochs 0, 2, 4, 6 .*checkpoint at epoch 6"):
        prepare_resume(mid_run)
    assert json.loads((mid_run / "summary.json").read_text())["status"] == "running"  # untouched


def test_a_log_with_a_hole_is_refused(mid_run):
    log = mid_run / "snapshots.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2] + lines[3:]))  # epoch 4 gone
    with pytest.raises(StoreError, match="lacks the snapshots of epochs 4 "):
        prepare_resume(mid_run)


def test_a_checkpoint_from_another_run_is_refused(tmp_path, mid_run):
    foreign = run_until_checkpoint(tiny_config(**{"train.seed": 3}), tmp_path / "foreign", 6)
    shutil.copy(foreign / "checkpoint.pt", mid_run / "checkpoint.pt")
    with pytest.raises(StoreError, match="written by another run"):
        prepare_resume(mid_run)


def test_a_checkpoint_of_the_same_config_but_another_run_id_is_refused(tmp_path, mid_run):
    state = torch.load(mid_run / "checkpoint.pt", weights_only=True)
    state["run_id"] = "someone"
    torch.save(state, mid_run / "checkpoint.pt")
    with pytest.raises(StoreError, match="written by another run"):
        prepare_resume(mid_run)


def test_a_checkpoint_beyond_the_configs_epochs_is_refused(mid_run):
    state = torch.load(mid_run / "checkpoint.pt", weights_only=True)
    state["epoch"] = 5000
    torch.save(state, mid_run / "checkpoint.pt")
    with pytest.raises(StoreError, match="epoch 5000, outside this run's 0 to 12 epochs"):
        prepare_resume(mid_run)


def test_an_edited_config_is_refused_naming_the_field(mid_run):
    text = (mid_run / "config.toml").read_text()
    assert "lr = 0.0004" in text
    (mid_run / "config.toml").write_text(text.replace("lr = 0.0004", "lr = 0.001"))
    with pytest.raises(StoreError, match=r"edited after the run started \(train.lr changed\)"):
        prepare_resume(mid_run)


def test_a_reformatted_but_equal_config_resumes(tmp_path, mid_run, finished):
    text = (mid_run / "config.toml").read_text()
    (mid_run / "config.toml").write_text("# my notes\n" + text.replace(" = ", "=  "))
    assert execute(*prepare_resume(mid_run)).status == "finished"
    assert snapshot_lines_without_timing(mid_run / "snapshots.jsonl") == snapshot_lines_without_timing(finished / "snapshots.jsonl")


def test_activations_beyond_the_checkpoint_are_removed_on_resume(tmp_path):
    config = tiny_config(**{"info.save_activations": True})
    run = tmp_path / "run"
    trainer, store = prepare_run(config, run)
    from ibtui.engine.events import Checkpoint

    seen_checkpoint = False
    for event in trainer.run():
        store.handle(event)
        seen_checkpoint = seen_checkpoint or (isinstance(event, Checkpoint) and event.epoch == 6)
        if seen_checkpoint and isinstance(event, Snapshot) and event.epoch == 10:
            break  # killed after the snapshot of epoch 10, the checkpoint stands at 6
    store.close()
    saved = sorted(p.name for p in (run / "activations").iterdir())
    assert "epoch_0000010.npz" in saved
    trainer, store = prepare_resume(run)
    store.close()
    assert sorted(p.name for p in (run / "activations").iterdir()) == [f"epoch_{e:07d}.npz" for e in (0, 2, 4, 6)]


def test_never_finished_with_snapshots_missing(tmp_path):
    """A RunFinished after a stream that skipped scheduled snapshots is recorded as failed."""
    config = tiny_config()
    store = RunStore.create(tmp_path / "r", config)
    started = RunStarted("id", config, ("L1",), (6,), (0,), 10, 1.0, (0, 2, 4), 0, "cpu", "d", True)
    store.handle(started)
    snap = Snapshot("id", 0, 0.0, [1.0], [1.0], [0.5], [0.5], {"binning": [[[1.0, 0.5]]]})
    store.handle(snap)
    store.handle(RunFinished("id", "finished", 4, 1.0))
    store.close()
    summary = load_run(tmp_path / "r").summary
    assert summary["status"] == "failed" and "epochs 2, 4" in summary["reason"]
