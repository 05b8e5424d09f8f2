"""Benchmarks (speed is measured here, never by timed tests)."""

import os

# First, as the ibtui command does: the OpenMP wait policy, before torch loads. The user's own
# setting is kept for the benchmarks that stand for the user's process (bench_recorder).
from ibtui.engine.processes import POLICY_VARIABLE, set_openmp_policy

USER_POLICY = os.environ.get(POLICY_VARIABLE)
set_openmp_policy()
