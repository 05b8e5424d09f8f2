"""Benchmarks (speed is measured here, never by timed tests)."""

# First, as the ibtui command does: it sets the OpenMP environment before torch loads.
import ibtui  # noqa: F401
