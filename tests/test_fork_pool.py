"""The estimator processes `ibtui run` forks (workers.prestart(fork=True)): forked only where a
fork is safe, with the parent's modules loaded, the same estimates as in-process, and ended by
terminate() whatever SIGTERM handler the parent had when it forked."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is used on Linux only")]


def _python(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_fork_is_offered_only_while_this_is_the_one_thread():
    code = (
        "import threading\n"
        "from ibtui.engine.processes import fork_context\n"
        "print(fork_context() is not None)\n"
        "stop = threading.Event(); thread = threading.Thread(target=stop.wait); thread.start()\n"
        "print(fork_context() is not None)\n"
        "stop.set(); thread.join()\n"
        "print(fork_context() is not None)\n"
    )
    assert _python(code) == ["True", "False", "True"]


FORKED = """
import os, signal, sys
import numpy as np
from ibtui import estimators
from ibtui.config import InfoConfig
from ibtui.engine import workers

def started_as():
    return open("/proc/self/cmdline", "rb").read() == open(f"/proc/{os.getppid()}/cmdline", "rb").read()

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the parent's handler, which the children must not keep
info = InfoConfig(estimators=("kde_upper", "kde_lower", "binning"), noise_variance=1e-2, bin_size=0.1)
workers.prestart(2, 1, info, fork=True)
pool = workers.prestarted_pool()
processes = list(pool._processes.values())
rng = np.random.default_rng(0)
layers = [np.tanh(rng.normal(size=(1, 3000, w)) * 2).astype(np.float32) for w in (6, 3)]
labels = rng.integers(0, 2, 3000)
there = pool.submit(estimators.estimate_info_plane, layers, labels, info).result()
print(len(processes), all(pool.submit(started_as).result() for _ in range(4)))
print(there == estimators.estimate_info_plane(layers, labels, info))
workers.close_prestarted(terminate=True)
for process in processes:
    process.join(60)
print(all(process.exitcode == -signal.SIGTERM for process in processes))
"""


def test_forked_estimator_processes_estimate_as_here_and_end_on_terminate():
    assert _python(FORKED) == ["2", "True", "True", "True"]
