"""The fault campaign of issue 14, not timed: real `ibtui run` processes stopped by SIGKILL,
SIGTERM and SIGHUP at varied points (the first snapshots included) and resumed; two writers on
one run; a full disk; malformed run files. Every case ends in a resumable run whose snapshots
equal an uninterrupted run's (timing fields aside), or in one sentence and exit 2.

A stop finishes the estimates of every snapshot already taken and checkpoints where training
stopped, so nothing measured or trained is lost; a second signal skips those estimates.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ibtui.runs import store as store_module
from ibtui.runs.runner import execute, prepare_resume, prepare_run

from helpers import CAMPAIGN_CONFIG as CONFIG, REPO, call_main, snapshot_lines_without_timing, tiny_config

# The campaign's run (helpers.CAMPAIGN_CONFIG: binning only, 300 epochs, 101 snapshots) and its
# uninterrupted reference come from conftest.py's session fixtures `campaign_preset` and `whole`.


@pytest.fixture
def preset(campaign_preset):
    return campaign_preset


def _default_stop_signals() -> None:
    """In the child before exec: SIGINT and SIGHUP at their defaults. A shell's background job
    (`cmd &`) starts with SIGINT ignored and nohup with SIGHUP ignored; a run inherits both, and
    rightly keeps an ignored signal ignored, which is not what these tests send it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def start_run(preset, out, *extra):
    """`ibtui run` in its own process with SIGINT and SIGHUP at their defaults, as in a terminal
    or an SSH session, however pytest itself was started."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", COLUMNS="200")
    return subprocess.Popen(
        [sys.executable, "-m", "ibtui.cli", "run", "--preset", str(preset), "--out", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL,
        preexec_fn=_default_stop_signals,
    )


def wait_for_snapshots(out, count, proc, timeout=600):
    log = out / "snapshots.jsonl"
    deadline = time.monotonic() + timeout  # a guard against a hang, not an assertion on speed
    while time.monotonic() < deadline:
        if log.exists() and log.read_bytes().count(b"\n") >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {count} snapshots: {proc.stderr.read()}")
        time.sleep(0.005)
    pytest.fail("timed out waiting for snapshots")


def summary(out):
    return json.loads((out / "summary.json").read_text())


def resume_in_process(out):
    outcome = execute(*prepare_resume(out))
    assert outcome.status == "finished", outcome


# -- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signals, after, code",
    [
        ((signal.SIGTERM,), 1, 143),  # the first snapshot (epoch 0): a scheduler's stop
        ((signal.SIGHUP,), 4, 129),  # an SSH session closed
        ((signal.SIGINT,), 9, 130),  # Ctrl-C mid-run, resumed with `ibtui resume`
        ((signal.SIGTERM, signal.SIGTERM), 12, 143),  # the second skips the pending estimates
        ((signal.SIGINT, signal.SIGINT, signal.SIGINT), 25, 130),  # the third aborts
    ],
    ids=["sigterm-first-snapshot", "sighup", "sigint", "sigterm-twice", "sigint-thrice"],
)
@pytest.mark.slow
def test_a_stop_signal_saves_exits_128_plus_signum_and_resumes_exactly(tmp_path, preset, whole, capsys, signals, after, code):
    out = tmp_path / "run"
    proc = start_run(preset, out, "--quiet")
    wait_for_snapshots(out, after, proc)
    for signum in signals:
        proc.send_signal(signum)
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"ibtui resume {out}" in " ".join(stderr.split())
    status = summary(out)["status"]
    assert status == "interrupted", (status, stderr)  # never "failed", however many signals
    if len(signals) == 1:  # every estimate taken was kept, and the checkpoint is where training stopped
        records = snapshot_lines_without_timing(out / "snapshots.jsonl")
        assert summary(out)["checkpoint_epoch"] >= records[-1]["epoch"]
        assert summary(out)["checkpoint_epoch"] == summary(out)["epoch"]  # what resume continues from
        assert (out / "checkpoint.pt").exists() and (out / "info_plane.png").exists()  # the partial figures
    if signals == (signal.SIGINT,):  # the command a user types
        resumed, text = call_main("resume", str(out), "--quiet", capsys=capsys)
        assert resumed == 0, text
    else:
        resume_in_process(out)
    assert snapshot_lines_without_timing(out / "snapshots.jsonl") == whole
    assert summary(out)["status"] == "finished"


@pytest.mark.slow
def test_a_stop_signal_after_the_last_snapshot_keeps_the_finished_run(tmp_path, preset, whole):
    """SIGTERM once every snapshot is logged (the final checkpoint, the figures or the exit): the
    run stays finished and whole, with no traceback; the figures may be skipped, never the run."""
    out = tmp_path / "run"
    proc = start_run(preset, out, "--quiet")
    wait_for_snapshots(out, len(whole), proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert summary(out)["status"] == "finished"
    assert snapshot_lines_without_timing(out / "snapshots.jsonl") == whole


@pytest.mark.slow
@pytest.mark.parametrize("after", [1, 20])
def test_sigkill_at_the_first_snapshots_and_later_resumes_exactly(tmp_path, preset, whole, after):
    out = tmp_path / "run"
    proc = start_run(preset, out, "--quiet")
    wait_for_snapshots(out, after, proc)
    proc.kill()
    proc.wait(timeout=60)
    assert summary(out)["status"] in ("running", "created")
    resume_in_process(out)
    assert snapshot_lines_without_timing(out / "snapshots.jsonl") == whole
    assert summary(out)["status"] == "finished"


def test_resume_of_a_finished_run_is_refused_and_changes_nothing(campaign_run, capsys):
    before = {p.name: p.read_bytes() for p in campaign_run.iterdir() if p.is_file()}
    code, text = call_main("resume", str(campaign_run), capsys=capsys)
    assert code == 2 and "nothing to resume" in text and "Traceback" not in text, text
    assert {p.name: p.read_bytes() for p in campaign_run.iterdir() if p.is_file()} == before


def test_nohup_keeps_sighup_ignored():
    """A run started under nohup (SIGHUP ignored) is not stopped by SIGHUP: the handler is not installed."""
    from ibtui.cli.train import StopOnSignals
    from ibtui.engine.control import RunControl

    before = signal.getsignal(signal.SIGTERM)  # pytest's, or what an earlier test (Ray) left
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        control = RunControl()
        with StopOnSignals(control):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
            assert not control.stop_requested
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            assert control.stop_requested
        assert signal.getsignal(signal.SIGTERM) is before  # put back as it was
    finally:
        signal.signal(signal.SIGHUP, previous)


# -- two writers ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_writers_on_one_run(tmp_path, preset, whole, capsys):
    out = tmp_path / "run"
    proc = start_run(preset, out, "--quiet")
    wait_for_snapshots(out, 3, proc)
    code, text = call_main("resume", str(out), capsys=capsys)
    assert code == 2 and f"is being written by process {proc.pid}" in text, text
    code, text = call_main("run", "--preset", "tanh", "--out", str(out), capsys=capsys)
    assert code == 2 and "already holds a run" in text, text
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert snapshot_lines_without_timing(out / "snapshots.jsonl") == whole  # nothing interleaved


# -- a full disk ---------------------------------------------------------------------------------


class FullDisk:
    """write_atomic raising ENOSPC for one file name, as a full disk does."""

    def __init__(self, monkeypatch, name):
        real = store_module.write_atomic
        self.hits = 0

        def write_atomic(path, data):
            if Path(path).name == name:
                self.hits += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            return real(path, data)

        monkeypatch.setattr(store_module, "write_atomic", write_atomic)


def test_enospc_mid_run_is_one_sentence_exit_1_status_recorded_and_resumable(tmp_path, monkeypatch, capsys, whole):
    out = tmp_path / "run"
    disk = FullDisk(monkeypatch, "checkpoint.pt")
    code, text = call_main("run", "--preset", str(write_preset(tmp_path)), "--out", str(out), "--quiet", capsys=capsys)
    assert disk.hits == 1
    assert code == 1, text
    assert "Traceback" not in text and text.count("ibtui:") == 1
    assert "No space left on device" in text and f"ibtui resume {out}" in text
    assert summary(out)["status"] == "failed" and "No space left on device" in summary(out)["reason"]
    monkeypatch.undo()  # space is back
    resume_in_process(out)
    assert snapshot_lines_without_timing(out / "snapshots.jsonl") == whole


def test_enospc_when_even_the_status_cannot_be_written(tmp_path, monkeypatch, capsys, whole):
    out = tmp_path / "run"
    trainer, store = prepare_run(CONFIG, out)
    real = store_module.write_atomic
    count = {"n": 0}

    def full_after_a_while(path, data):
        count["n"] += 1
        if count["n"] > 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(store_module, "write_atomic", full_after_a_while)
    with pytest.raises(OSError):
        execute(trainer, store)
    monkeypatch.undo()
    assert store.status_recorded is False
    assert summary(out)["status"] == "running"  # the last status the disk took
    resume_in_process(out)
    assert snapshot_lines_without_timing(out / "snapshots.jsonl") == whole


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=80k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root, or no permission)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_real_full_disk_tmpfs(tiny_tmpfs, preset, whole):
    out = tiny_tmpfs / "run"
    proc = start_run(preset, out, "--quiet")
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "No space left on device" in stderr
    assert not any(p.name.startswith(".") and p.name.endswith(".tmp") for p in out.iterdir())
    subprocess.run(["mount", "-o", "remount,size=20m", str(tiny_tmpfs)], check=True)
    resume_in_process(out)
    assert snapshot_lines_without_timing(out / "snapshots.jsonl") == whole


# -- malformed run files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("good") / "run"
    execute(*prepare_run(tiny_config(**{"train.epochs": 4, "info.estimators": ("binning",), "info.save_activations": True}), out))
    return out


BAD_SUMMARIES = ["null", "[]", '"text"', "5", '{"status": 5}', '{"epoch": "5"}', '{"layers": [1, 2]}', '{"run_id": []}', "[[[[[[" * 10000]
BAD_LINES = ["null", "[]", "5", '{"epoch": "5"}', '{"epoch": 0}', "{}",
             '{"epoch":0,"elapsed_s":0,"train_loss":[1],"test_loss":[1],"train_acc":[1],"test_acc":[1],"mi":{"binning":[[[1]]]}}',
             '{"epoch":0,"elapsed_s":0,"train_loss":"x","test_loss":[1],"train_acc":[1],"test_acc":[1],"mi":{}}',
             '{"epoch":true,"elapsed_s":0,"train_loss":[1],"test_loss":[1],"train_acc":[1],"test_acc":[1],"mi":{"b":[[[1,2]]]}}']


def damaged_copies(good_run, tmp_path):
    for i, text in enumerate(BAD_SUMMARIES):
        run = tmp_path / f"summary{i}"
        shutil.copytree(good_run, run)
        (run / "summary.json").write_text(text)
        yield run, "summary.json"
    for i, text in enumerate(BAD_LINES):
        run = tmp_path / f"line{i}"
        shutil.copytree(good_run, run)
        log = run / "snapshots.jsonl"
        lines = log.read_text().splitlines(keepends=True)
        log.write_text(lines[0] + text + "\n" + "".join(lines[1:]))
        yield run, "snapshots.jsonl"


@pytest.mark.parametrize("command", ["resume", "report", "export", "estimate"])
def test_malformed_run_files_are_one_sentence_and_exit_2(tmp_path, good_run, capsys, command):
    for run, name in damaged_copies(good_run, tmp_path):
        code, text = call_main(command, str(run), capsys=capsys)
        assert code == 2, (run.name, text)
        assert "Traceback" not in text and name in text, (run.name, text)


def test_path_components_over_255_bytes_are_one_sentence(capsys):
    for command in ("resume", "report", "export", "estimate"):
        code, text = call_main(command, "/tmp/" + "x" * 300, capsys=capsys)
        assert code == 2 and "Traceback" not in text and "File name too long" in text, text


def test_export_and_estimate_on_a_read_only_run_are_one_sentence(tmp_path, good_run, capsys):
    run = tmp_path / "ro"
    shutil.copytree(good_run, run)
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(run)], capture_output=True).returncode != 0:
            pytest.skip("root without chattr +i: cannot make a read-only directory")
    else:
        run.chmod(0o555)
    try:
        for args in (("export", str(run)), ("estimate", str(run), "--bin-size", "0.1")):
            code, text = call_main(*args, capsys=capsys)
            assert code == 2 and "Traceback" not in text and "cannot write the run directory" in text, text
    finally:
        subprocess.run(["chattr", "-i", str(run)], capture_output=True)
        run.chmod(0o755)


# -- helpers -------------------------------------------------------------------------------------


def write_preset(tmp_path):
    path = tmp_path / "campaign.toml"
    path.write_text(CONFIG.to_toml())
    return path
