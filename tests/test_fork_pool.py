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

def forked_from_parent():
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
print(len(processes), all(pool.submit(forked_from_parent).result() for _ in range(4)))
print(there == estimators.estimate_info_plane(layers, labels, info))
pids = set()
while len(pids) < 2:  # both have run their initializer (a busy machine may start one late)
    pids |= {future.result() for future in [pool.submit(os.getpid) for _ in range(4)]}
for process in processes:  # what end_pool does after its shutdown; the shutdown alone may
    process.terminate()      # let an idle child exit by itself first (code 0)
from tests.helpers import exit_code
codes = [exit_code(process) for process in processes]
workers.close_prestarted(terminate=True)
print(all(code == -signal.SIGTERM for code in codes), codes)
"""


def test_forked_estimator_processes_estimate_as_here_and_end_on_terminate():
    assert _python(FORKED) == ["2", "True", "True", "True", "[-15,", "-15]"]


RECORDED = """
import json, os, sys
import torch
from torch import nn
import ibtui

torch.set_num_threads(2)
a = torch.randn(1500, 1500)
float((a @ a).tanh().sum())  # the user's process has run OpenMP and BLAS regions before recording
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(6, 128), nn.ReLU(), nn.Linear(128, 3))
x, y = torch.randn(400, 6), torch.arange(400) % 3
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
with ibtui.Recorder(model, inputs=x, labels=y, out=sys.argv[1], epochs=6, schedule="every", png=False) as rec:
    (process,) = rec._pool._processes.values()
    forked = open(f"/proc/{process.pid}/cmdline", "rb").read() == open("/proc/self/cmdline", "rb").read()
    for epoch in range(6):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        rec.epoch_end(epoch, train_loss=loss.item())
lines = open(os.path.join(sys.argv[1], "snapshots.jsonl")).read().splitlines()
print(forked, len(lines), sorted(json.loads(lines[-1])["mi"]))
"""


def test_the_recorder_forks_its_process_from_a_user_process_that_has_trained(tmp_path):
    # The 128-wide layers take the KDE's product path (BLAS and QR in the child, on one thread).
    code = RECORDED.replace("sys.argv[1]", repr(str(tmp_path / "run")))
    assert _python(code) == ["True", "7", "['binning',", "'kde_upper']"]
