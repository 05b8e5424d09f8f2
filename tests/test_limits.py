"""Range checks (issue 14, item 8): what cannot be computed is refused by config validation, in
one sentence that names the limit, before anything is written or allocated."""

import pytest

from ibtui.cli.common import _split_list
from ibtui.config import MAX_SNAPSHOTS, InfoConfig, from_dict, schedule_size
from ibtui.engine.schedule import snapshot_epochs
from ibtui.errors import ConfigError, IbtuiError
from ibtui.runs.presets import load_preset

from helpers import run_cli


@pytest.mark.parametrize(
    "path, value, words",
    [
        ("train.epochs", 10**12, "at most 10,000,000"),
        ("model.hidden", (1,) * 100_000, "at most 100 are allowed"),
        ("model.hidden", (10, 10**9), "at most 100,000"),
        ("train.seed", 2**64, "below 2**63"),
        ("train.seed", 2**63 - 1, "below 2**63"),  # seed + seeds - 1 must fit too (seeds = 1 is fine; see below)
        ("train.seeds", 10**9, "at most 10,000"),
        ("info.bin_size", 1e-300, "at least 1e-09"),
        ("data.split_seed", -1, "[0, 2**63)"),
        ("data.synthetic_seed", 2**70, "[0, 2**63)"),
        ("info.snapshots", 10**9, f"at most {MAX_SNAPSHOTS:,}"),
        ("info.adaptive_bins", 10**9, "at most 100,000"),
        ("info.n_bins", 10**9, "at most 100,000"),
    ],
)
def test_absurd_sizes_are_refused_with_the_limit(path, value, words):
    base = load_preset("tanh")
    if path == "train.seed" and value == 2**63 - 1:
        base = base.with_overrides({"train.seeds": 2})
    with pytest.raises(ConfigError) as caught:
        base.with_overrides({path: value})
    assert words in str(caught.value)


def test_the_largest_allowed_seed_is_accepted():
    assert load_preset("tanh").with_overrides({"train.seed": 2**63 - 1}).train.seed == 2**63 - 1


def test_every_1_with_huge_epochs_is_refused_without_building_the_schedule():
    with pytest.raises(ConfigError, match=r"takes 10,000,001 snapshots; at most 200,000 .*every to at least 51"):
        load_preset("tanh").with_overrides({"train.epochs": 10_000_000, "info.schedule": "every", "info.every": 1})


def test_the_saxe_schedule_at_the_epoch_limit_is_allowed():
    config = load_preset("tanh").with_overrides({"train.epochs": 10_000_000})
    assert schedule_size(config.info, config.train.epochs) == 100_112


@pytest.mark.parametrize("schedule", ["saxe", "every", "log"])
@pytest.mark.parametrize("epochs", [1, 2, 19, 20, 21, 99, 100, 101, 1999, 2000, 2001, 2099, 12345])
def test_schedule_size_counts_what_the_schedule_builds(schedule, epochs):
    for every in (1, 3, 100):
        info = InfoConfig(schedule=schedule, every=every, snapshots=every + 5)
        built = len(snapshot_epochs(info, epochs))
        size = schedule_size(info, epochs)
        assert size >= built if schedule == "log" else size == built


@pytest.mark.parametrize("name", ["/elsewhere/escaped", "../up", "a/b", "..", ".", "nul\0byte", "back\\slash", "x" * 201])
def test_a_preset_name_cannot_place_a_run_outside_the_runs_folder(name):
    doc = {"name": name}
    with pytest.raises(ConfigError, match="run name"):
        from_dict(doc)


def test_ordinary_names_are_fine():
    assert from_dict({"name": "pokemon-relu-l2 (v2)"}).name == "pokemon-relu-l2 (v2)"


@pytest.mark.parametrize("text", ["10,,3", "10,3,", ",10", " , "])
def test_an_empty_entry_in_a_list_option_is_refused(text):
    with pytest.raises(IbtuiError, match="empty entry"):
        _split_list(text, int)
    assert _split_list("10, 7 ,3", int) == (10, 7, 3)


def test_the_cli_refuses_huge_epochs_at_once_and_writes_nothing(tmp_path):
    result = run_cli("run", "--epochs", "1000000000000", "--out", str(tmp_path / "r"), timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "at most 10,000,000" in " ".join(result.stderr.split())
    assert not (tmp_path / "r").exists()
    result = run_cli("run", "--hidden", "10,,3", "--out", str(tmp_path / "r"), timeout=60)
    assert result.returncode == 2 and "empty entry" in result.stderr and not (tmp_path / "r").exists()


def test_a_feasible_but_huge_run_says_how_big_it_is():
    """Within the limits but hours of estimating: one sentence with the size, before the run."""
    from ibtui.config import InfoConfig
    from ibtui.engine.workers import workload_note

    info = InfoConfig()  # kde_upper and binning
    assert workload_note(info, snapshots=212, seeds=1, layers=6, n=4096) is None  # the tanh preset
    note = workload_note(info, snapshots=212, seeds=10, layers=5, n=60_000)
    assert note is not None and "212 snapshots x 5 layers x 10 seed(s) on 60,000 samples" in note
    hours = float(note.split("about ")[1].split(" hours")[0])
    assert 3 < hours < 4  # 212 * 10 * 5 * 60,000^2 = 3.8e13 terms at 3e9 per second: 3.5 h
    assert workload_note(InfoConfig(estimators=("binning",)), 212, 10, 5, 60_000) is None  # no KDE: cheap
