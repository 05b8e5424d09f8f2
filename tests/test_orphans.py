"""No orphans (issue 14, item 5): the processes ibtui starts die with the process that started
them, even when it is SIGKILLed and cannot clean up. The test asserts on process existence with
a generous bound, never on how fast they go."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO

pytestmark = pytest.mark.slow  # real processes started and killed

PARENT = """
import os, sys, time
from ibtui.config import InfoConfig
from ibtui.engine import workers
if sys.argv[1] == "fork":  # as `ibtui run` starts them
    workers.prestart(2, 1, InfoConfig(), fork=True)
    pool = workers.prestarted_pool()
else:
    pool = workers.estimator_pool(2)
pids = set()
while len(pids) < 2:  # the pool starts its processes as work arrives
    pids |= {f.result() for f in [pool.submit(os.getpid) for _ in range(8)]}
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(600)
"""


def children_of(pid: int) -> list[int]:
    """The processes whose parent is pid (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie waiting for its reaper counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return fields[0] != "Z"


ENGINE_PARENT = """
import sys
from helpers import tiny_config
from ibtui.engine.control import RunControl
from ibtui.runs.runner import execute_in_process
execute_in_process(tiny_config(**{"train.epochs": 10**5, "info.estimators": ("binning",)}), sys.argv[1], None, [lambda event: print(type(event).__name__, flush=True)],
                   RunControl(shared=True))
"""


def kill_parent_and_wait(parent, children):
    """SIGKILL the parent; wait (generously) for the children to go; the ones still alive."""
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 60  # generous: a loaded machine; they normally go at once
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in children if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_app_engine_process_dies_with_its_parent(tmp_path):
    """... and leaves no log behind in the temp folder, though the parent could not clean up."""
    temp = tmp_path / "temp"
    temp.mkdir()
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}", TMPDIR=str(temp))
    parent = subprocess.Popen([sys.executable, "-c", ENGINE_PARENT, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True,
                              env=env, cwd=REPO)
    try:
        while parent.stdout.readline().strip() != "Snapshot":  # the engine runs
            assert parent.poll() is None
        children = children_of(parent.pid)  # the engine process, multiprocessing's resource tracker
        assert children
        assert kill_parent_and_wait(parent, children) == []
        assert not list(temp.glob("ibtui-engine-*"))
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("start", ["spawn", "fork"])
def test_estimator_processes_die_with_their_parent(start):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, start], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        line = parent.stdout.readline()
        workers = [int(pid) for pid in line.split()]
        assert len(workers) == 2 and all(alive(pid) for pid in workers), line
        children = children_of(parent.pid)  # the workers and multiprocessing's resource tracker
        assert set(workers) <= set(children)
        assert kill_parent_and_wait(parent, children) == []
    finally:
        if parent.poll() is None:
            parent.kill()


def test_the_openmp_policy_is_set_in_ibtuis_children_only(monkeypatch):
    """Importing ibtui leaves the host's environment alone; ibtui's own processes get PASSIVE."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    code = "import os, ibtui, ibtui.engine.trainer, ibtui.engine.workers; print(os.environ.get('OMP_WAIT_POLICY'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.stdout.split()[-1] == "None", result.stderr

    from ibtui.engine.processes import spawn_context

    context = spawn_context()
    queue = context.SimpleQueue()
    child = context.Process(target=_report_policy, args=(queue,))
    child.start()
    child.join(120)
    assert queue.get() == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in os.environ  # set for the child's start only


def _report_policy(queue):
    queue.put(os.environ.get("OMP_WAIT_POLICY"))
