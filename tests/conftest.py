# The suite runs as the ibtui command does: OpenMP threads sleep while they wait (an import of
# ibtui no longer sets this for the host process; see ibtui/engine/processes.py).
from ibtui.engine.processes import set_openmp_policy

set_openmp_policy()

import pytest  # noqa: E402

from helpers import CAMPAIGN_CONFIG, snapshot_lines_without_timing  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """The `slow` tests (real processes, real training) first, each group in its usual order:
    on two xdist workers the short tests then fill in around them instead of one long test
    running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def campaign_preset(tmp_path_factory):
    """CAMPAIGN_CONFIG as a preset file, for `ibtui run --preset FILE` processes."""
    path = tmp_path_factory.mktemp("preset") / "campaign.toml"
    path.write_text(CAMPAIGN_CONFIG.to_toml())
    return path


@pytest.fixture(scope="session")
def campaign_run(tmp_path_factory):
    """One uninterrupted run of CAMPAIGN_CONFIG, finished, shared read-only by every test that
    compares an interrupted and resumed run with it (made once per session, in-process)."""
    from ibtui.runs.runner import execute, prepare_run

    out = tmp_path_factory.mktemp("whole") / "run"
    assert execute(*prepare_run(CAMPAIGN_CONFIG, out)).status == "finished"
    return out


@pytest.fixture(scope="session")
def whole(campaign_run):
    """The uninterrupted campaign run's snapshot records, timing fields aside."""
    return snapshot_lines_without_timing(campaign_run / "snapshots.jsonl")
