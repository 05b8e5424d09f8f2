"""Real `ibtui run` processes interrupted with SIGINT and SIGKILL, then resumed with `ibtui resume`.

The resumed run must produce the same snapshots.jsonl as an uninterrupted run, byte for byte
apart from timing fields.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, run_cli, snapshot_lines_without_timing, tiny_config

CONFIG = tiny_config(**{"train.epochs": 300, "info.every": 10, "info.checkpoint_every": 3, "train.batch_size": 128})


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("preset") / "tiny.toml"
    path.write_text(CONFIG.to_toml())
    return path


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory, preset):
    out = tmp_path_factory.mktemp("whole") / "run"
    result = run_cli("run", "--preset", str(preset), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    return snapshot_lines_without_timing(out / "snapshots.jsonl")


def start_run(preset, out):
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "ibtui.cli", "run", "--preset", str(preset), "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL,
    )


def wait_for_snapshots(out, count, proc, timeout=60):
    log = out / "snapshots.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_bytes().count(b"\n") >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {count} snapshots: {proc.stderr.read()}")
        time.sleep(0.01)
    pytest.fail("timed out waiting for snapshots")


@pytest.mark.parametrize("after", [9])  # other moments and signals: tests/test_faults.py
def test_sigint_saves_exits_130_and_resumes_exactly(tmp_path, preset, whole_run, after):
    out = tmp_path / "run"
    proc = start_run(preset, out)
    wait_for_snapshots(out, after, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"ibtui resume {out}" in " ".join(stderr.split())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert (out / "info_plane.png").exists() and (out / "checkpoint.pt").exists()  # partial figures
    result = run_cli("resume", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert snapshot_lines_without_timing(out / "snapshots.jsonl") == whole_run
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("after", [5, 14])  # 1 and 20: tests/test_faults.py
def test_sigkill_at_any_moment_leaves_a_resumable_run(tmp_path, preset, whole_run, after):
    out = tmp_path / "run"
    proc = start_run(preset, out)
    wait_for_snapshots(out, after, proc)
    proc.kill()
    proc.wait(timeout=30)
    assert json.loads((out / "summary.json").read_text())["status"] in ("running", "created")
    result = run_cli("resume", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert snapshot_lines_without_timing(out / "snapshots.jsonl") == whole_run


def test_resume_of_a_finished_run_is_refused(tmp_path, preset):
    out = tmp_path / "run"
    assert run_cli("run", "--preset", str(preset), "--out", str(out), "--quiet", "--epochs", "5").returncode == 0
    result = run_cli("resume", str(out))
    assert result.returncode == 2 and "nothing to resume" in result.stderr and "Traceback" not in result.stderr
