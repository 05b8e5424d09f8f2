"""One writer per run directory (issue 14, item 1): the flock on RUN/.lock, the holder's PID in
the refusal, a dead holder that never blocks, default run names that never collide, and ibtui's
own hidden files that never make a directory "not empty"."""

import os
import subprocess
import sys
import textwrap

import pytest

from ibtui.errors import StoreError
from ibtui.runs.reestimate import reestimate
from ibtui.runs.runner import default_run_dir, execute, prepare_resume, prepare_run
from ibtui.runs.files import LOCK_FILE, PROBE_FILE, claim_run_dir
from ibtui.runs.lock import locked_run
from ibtui.runs.store import RunStore

from helpers import REPO, tiny_config


def test_a_second_writer_is_refused_naming_the_holders_pid(tmp_path):
    run = tmp_path / "run"
    store = RunStore.create(run, tiny_config())
    assert (run / LOCK_FILE).read_text().strip() == str(os.getpid())
    with pytest.raises(StoreError, match=f"is being written by process {os.getpid()}"):
        RunStore.reopen(run)
    with pytest.raises(StoreError, match=f"is being written by process {os.getpid()}"):
        with locked_run(run):
            pass
    store.close()
    assert not (run / LOCK_FILE).exists()  # a closed run leaves no lock file behind
    other, _ = RunStore.reopen(run)  # released by close(): the next writer may come
    other.close()


def test_a_writer_that_opened_a_lock_file_being_removed_locks_the_new_one(tmp_path, monkeypatch):
    """unlink-on-release must not let two writers in: after locking, RunLock checks that the
    path still names the file it locked, and otherwise retries with the new one."""
    from ibtui.runs.lock import RunLock

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text("")
    stale = os.open(run / LOCK_FILE, os.O_RDWR)  # opened just before the holder removed it
    (run / LOCK_FILE).unlink()
    real_open = RunLock._open
    handed = []

    def racing_open(self, run_dir):
        if not handed:
            handed.append(stale)
            return stale
        return real_open(self, run_dir)

    monkeypatch.setattr(RunLock, "_open", racing_open)
    lock = RunLock(run)
    assert handed and (run / LOCK_FILE).exists()
    assert os.stat(run / LOCK_FILE).st_ino == os.fstat(lock._fd).st_ino  # the file others will find
    lock.release()


def test_a_resume_while_the_run_is_written_is_refused_and_changes_nothing(tmp_path):
    run = tmp_path / "run"
    trainer, store = prepare_run(tiny_config(), run)
    events = trainer.run()
    for event in events:
        store.handle(event)
        if type(event).__name__ == "Checkpoint":
            break  # mid-run, lock held
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(StoreError, match="being written by process"):
        prepare_resume(run)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    events.close()
    store.close()


def test_a_lock_left_by_a_killed_process_never_blocks(tmp_path):
    run = tmp_path / "run"
    RunStore.create(run, tiny_config()).close()
    code = textwrap.dedent(f"""
        import os, sys
        from ibtui.runs.lock import RunLock
        from pathlib import Path
        lock = RunLock(Path({str(run)!r}))
        print("locked", flush=True)
        sys.stdin.read()
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match=f"process {holder.pid}"):
            with locked_run(run):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert (run / LOCK_FILE).read_text().strip() == str(holder.pid)  # a killed holder leaves the file, not the lock
    with locked_run(run):
        pass


def test_default_run_dirs_never_collide(tmp_path):
    names = {claim_run_dir(tmp_path, "same") for _ in range(5)}  # made with mkdir: one winner each
    assert len(names) == 5 and all(path.is_dir() for path in names)
    config = tiny_config()
    proposed = default_run_dir(config, tmp_path)  # the app's proposal is not made until the run starts
    assert not proposed.exists()


def test_prepare_run_without_out_makes_its_own_directory(tmp_path):
    trainer, store = prepare_run(tiny_config(), None, root=tmp_path)
    trainer2, store2 = prepare_run(tiny_config(), None, root=tmp_path)
    assert store.path != store2.path and store.path.parent == tmp_path
    store.close()
    store2.close()


def test_ibtuis_own_hidden_files_never_make_a_directory_not_empty(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text("12345\n")  # a lock file left by an attempt that was refused
    (out / PROBE_FILE).write_bytes(b"\0" * 10)  # a write probe left by a process killed during it
    RunStore.create(out, tiny_config()).close()
    assert not (out / PROBE_FILE).exists()


def test_a_refused_run_leaves_no_lock_in_a_foreign_directory(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty"):
        RunStore.create(out, tiny_config())
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_estimate_into_a_run_that_is_being_written_is_refused(tmp_path):
    run = tmp_path / "run"
    execute(*prepare_run(tiny_config(**{"info.save_activations": True, "train.epochs": 4}), run))
    with locked_run(run):
        with pytest.raises(StoreError, match="being written by process"):
            reestimate(run, load_config(run))
    assert not (run / "estimates").exists()


def load_config(run):
    from ibtui.runs.record import load_run

    return load_run(run).config
