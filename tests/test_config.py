import pytest
from hypothesis import given, settings, strategies as st

from ibtui.config import RunConfig, from_dict, load_toml
from ibtui.errors import ConfigError, IbtuiError
from ibtui.runs.presets import load_preset, preset_paths
from ibtui.engine.schedule import log_epochs, saxe_epochs, snapshot_epochs

EXPECTED_PRESETS = {"tanh", "relu", "tishby", "pokemon-relu", "pokemon-tanh", "pokemon-relu-l2", "pokemon-tanh-l2"}


def test_every_preset_loads_and_round_trips_through_toml(tmp_path):
    assert EXPECTED_PRESETS <= set(preset_paths())
    for name in preset_paths():
        config = load_preset(name)
        path = tmp_path / f"{name}.toml"
        path.write_text(config.to_toml())
        assert load_toml(path) == config


def test_saxe_preset_matches_the_paper():
    c = load_preset("tanh")
    assert c.model.hidden == (10, 7, 5, 4, 3) and c.model.activation == "tanh"
    assert (c.train.lr, c.train.batch_size, c.train.epochs) == (4e-4, 256, 10_000)
    assert c.data.test_fraction == 0.2 and c.info.on == "all" and c.info.measure_output
    assert c.info.noise_variance == 1e-3 and c.info.bin_size == 0.07
    assert load_preset("relu").model.activation == "relu"
    t = load_preset("tishby")
    assert (t.train.batch_size, t.train.epochs, t.info.n_bins, t.info.bin_range) == (512, 8000, 30, (-1.0, 1.0))


def test_pokemon_presets():
    for act in ("relu", "tanh"):
        plain, l2 = load_preset(f"pokemon-{act}"), load_preset(f"pokemon-{act}-l2")
        assert plain.model.hidden == (16, 16, 8) and plain.model.activation == act
        assert plain.train.l2 == 0 and l2.train.l2 == 0.001 and plain.train.epochs == 25_000
        assert plain.data.name == "pokemon" and plain.info.estimators == ("kde_upper",)


def test_overrides_replace_fields_and_validate():
    c = load_preset("tanh").with_overrides({"train.epochs": 20, "info.estimators": ["binning"], "model.hidden": [3, 2]})
    assert c.train.epochs == 20 and c.info.estimators == ("binning",) and c.model.hidden == (3, 2)
    assert c.with_overrides({"train.epochs": None}) == c


@pytest.mark.parametrize(
    "path, value, words",
    [
        ("model.activation", "tahn", "did you mean 'tanh'"),
        ("info.estimators", ("kde",), "unknown estimator 'kde'"),
        ("info.noise_variance", 0.0, "noise variance must be positive"),
        ("info.noise_variance", -1.0, "noise variance must be positive"),
        ("train.epochs", 0, "at least 1"),
        ("model.hidden", (10, 0), "positive integers"),
        ("model.hidden", (10, 2.5), "whole number"),
        ("train.lr", "fast", "must be a number"),
        ("train.device", "tpu", "unknown device"),
        ("train.epochs_", 3, "unknown setting"),
        ("data.test_fraction", 0.95, "between 0 and 0.9"),
    ],
)
def test_bad_values_raise_one_sentence(path, value, words):
    with pytest.raises(ConfigError) as info:
        load_preset("tanh").with_overrides({path: value})
    message = str(info.value)
    assert words in message and "\n" not in message


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown preset 'tahn'; did you mean 'tanh'.*known: .*pokemon-relu"):
        load_preset("tahn")


def test_malformed_toml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[train]\nepochs = = 3\n')
    with pytest.raises(ConfigError, match=r"bad.toml is not valid TOML.*line 3"):
        load_toml(bad)


def test_toml_with_wrong_types_or_unknown_keys(tmp_path):
    for text, words in [
        ('[train]\nepochs = "many"\n', "train.epochs must be a whole number"),
        ("[trian]\nepochs = 3\n", "did you mean 'train'"),
        ("[model]\nwidths = [3]\n", "unknown setting"),
        ("format_version = 99\n", "format_version 99"),
    ]:
        path = tmp_path / "c.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=words):
            load_toml(path)


def test_saxe_schedule_has_the_reference_211_snapshots_plus_the_last_epoch():
    epochs = saxe_epochs(10_000)
    assert len(epochs) == 212 and epochs[:21] == list(range(21))[:20] + [20]
    assert epochs[-2:] == [9900, 10_000]
    assert [e for e in epochs if 100 <= e < 140] == [100, 120]


def test_log_and_every_schedules():
    epochs = log_epochs(25_000, 100)
    assert epochs[0] == 0 and epochs[-1] == 25_000 and 80 <= len(epochs) <= 101
    assert epochs == sorted(set(epochs))
    info = RunConfig().info
    assert snapshot_epochs(info.__class__(schedule="every", every=3), 10) == [0, 3, 6, 9, 10]


settings_values = st.one_of(st.integers(-5, 50_000), st.floats(allow_nan=True), st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(-2, 20), max_size=4))


@settings(max_examples=300, deadline=None)
@given(
    section=st.sampled_from(["data", "model", "train", "info", "nonsense"]),
    key=st.sampled_from(["epochs", "lr", "hidden", "activation", "noise_variance", "estimators", "seeds", "test_fraction", "bin_range", "name", "x"]),
    value=settings_values,
)
def test_random_configs_load_or_raise_our_error(section, key, value):
    doc = {section: {key: value}} if value is not None else {section: {}}
    try:
        config = from_dict(doc)
    except IbtuiError:
        return
    assert isinstance(config, RunConfig)


def test_titles_name_the_activation_when_it_is_not_the_presets():
    from ibtui.config import what_ran

    tanh = load_preset("tanh")
    assert what_ran(tanh, "tanh") == ["tanh", "hidden 10-7-5-4-3"]
    assert what_ran(tanh.with_overrides({"model.activation": "relu"}), "tanh") == ["tanh", "relu, hidden 10-7-5-4-3"]
    assert what_ran(tanh.with_overrides({"train.l2": 0.001}), "tanh")[-1] == "L2 1e-3"
