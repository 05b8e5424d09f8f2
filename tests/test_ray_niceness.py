"""A local Ray instance started by ibtui runs its workers at nice 0 (Ray's default is 15)."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from ibtui.sweeps import ray_backend  # noqa: E402


@pytest.mark.parametrize("address,cpus,local", [(None, None, True), ("local", 2, True), ("auto", None, False)])
def test_a_local_instance_gets_workers_at_nice_0(monkeypatch, address, cpus, local):
    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.update(kwargs))
    assert ray_backend.connect(address, cpus) is True
    if local:
        assert seen["_system_config"] == {"worker_niceness": 0}
        assert seen.get("num_cpus") == cpus
        assert "address" not in seen
    else:  # an existing cluster keeps its own settings
        assert "_system_config" not in seen and seen["address"] == "auto"
