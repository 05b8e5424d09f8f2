"""Benchmarks (speed is measured here, never by timed tests)."""

# First, as the ibtui command does: the OpenMP wait policy, before torch loads.
from ibtui.engine.processes import set_openmp_policy

set_openmp_policy()
