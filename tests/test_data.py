"""Tests for ibtui.data: the tishby patterns, the Pokemon reader and stand-in, CSVs, splits."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ibtui import data as D
from ibtui.errors import ConfigError, DataError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
POKEMON_SAMPLE = SHARED_DATA / "pokemon_go_predictemall_first300rows.csv"
IB_NPZ = SHARED_DATA / "IB_data_2017_12_21_16_51_3_275766.npz"


def shared_file(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared reference file {path} is not available")
    return path


def bits_to_int(bits: np.ndarray) -> np.ndarray:
    weights = 1 << np.arange(bits.shape[1] - 1, -1, -1)
    return bits.astype(np.int64) @ weights


# --- tishby -------------------------------------------------------------------------------


def test_tishby_patterns_are_binary_counting_msb_first():
    bits, y = D.tishby_patterns()
    assert bits.shape == (4096, 12) and bits.dtype == np.uint8
    assert y.shape == (4096,) and y.dtype == np.int64
    np.testing.assert_array_equal(bits_to_int(bits), np.arange(4096))
    np.testing.assert_array_equal(bits[5], [0] * 9 + [1, 0, 1])
    assert int(y.sum()) == 2118
    assert set(np.unique(y)) == {0, 1}
    # a few labels by hand: the empty pattern and the full one
    assert y[0] == 0 and y[4095] == 1


def test_tishby_is_deterministic_and_labels_are_icosahedrally_invariant():
    bits1, y1 = D.tishby_patterns()
    bits2, y2 = D.tishby_patterns()
    np.testing.assert_array_equal(bits1, bits2)
    np.testing.assert_array_equal(y1, y2)
    # the antipodal map v_i -> -v_i is a symmetry: it permutes the 12 columns
    v = D._icosahedron_vertices()
    perm = [int(np.argmin(np.linalg.norm(v + v[i], axis=1))) for i in range(12)]
    assert sorted(perm) == list(range(12))
    moved = bits_to_int(bits1[:, perm])
    np.testing.assert_array_equal(y1[moved], y1)


def test_tishby_matches_var_u_mat_bit_for_bit():
    path = shared_file(SHARED_DATA / "var_u.mat")
    sio = pytest.importorskip("scipy.io")
    mat = sio.loadmat(str(path))
    bits, y = D.tishby_patterns()
    assert mat["F"].shape == (4096, 12)
    np.testing.assert_array_equal(mat["F"], bits)
    np.testing.assert_array_equal(mat["y"].reshape(-1).astype(np.int64), y)


def test_tishby_agrees_with_ib_data_npz_split():
    npz = np.load(shared_file(IB_NPZ))
    _, y = D.tishby_patterns()
    for xs, ys in (("X_train", "y_train"), ("X_test", "y_test")):
        idx = bits_to_int(npz[xs])
        np.testing.assert_array_equal(y[idx], npz[ys].astype(np.int64))
    together = np.concatenate([bits_to_int(npz["X_train"]), bits_to_int(npz["X_test"])])
    np.testing.assert_array_equal(np.sort(together), np.arange(4096))


def test_load_tishby_dataset():
    ds = D.load_dataset("tishby")
    assert ds.name == "tishby" and not ds.synthetic and ds.source == "generated"
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int64
    assert (ds.n_samples, ds.n_features, ds.n_classes) == (4096, 12, 2)
    assert ds.class_names == ("0", "1")
    bits, y = D.tishby_patterns()
    np.testing.assert_array_equal(ds.x, bits.astype(np.float32))  # not standardised
    np.testing.assert_array_equal(ds.y, y)
    assert (len(ds.train_idx), len(ds.test_idx)) == (3277, 819)
    assert "4,096" in ds.description and "\n" not in ds.description


# --- pokemon ------------------------------------------------------------------------------


def test_read_pokemon_sample_rows_match_the_file():
    path = shared_file(POKEMON_SAMPLE)
    x, y = D.read_pokemon_csv(path)
    # the expected rows, straight from the file with the csv module
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["pokemonId"] in ("50", "86", "128")]
    assert len(rows) == 3
    expected_x = [[float(r[c]) for c in ("longitude", "latitude", "temperature", "pressure")]
                  for r in rows]
    expected_y = [{"50": 0, "86": 1, "128": 2}[r["pokemonId"]] for r in rows]
    np.testing.assert_array_equal(x, np.array(expected_x))
    np.testing.assert_array_equal(y, expected_y)
    # and the literal values (Diglett near Vancouver, two Tauros in the US)
    np.testing.assert_allclose(x, [[-122.638105, 49.146199, 13.5, 1019.84],
                                   [-73.212749, 44.476769, 21.8, 1013.77],
                                   [-86.161068, 39.767486, 26.0, 1015.52]], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(y, [0, 2, 2])
    assert x.dtype == np.float64 and y.dtype == np.int64


def test_load_pokemon_from_the_sample_is_too_small(tmp_path):
    path = shared_file(POKEMON_SAMPLE)
    with pytest.raises(DataError, match="only 3 rows") as err:
        D.load_dataset("pokemon", csv_path=path)
    assert str(path) in str(err.value)


def write_pokemon_csv(path: Path, rows: list[tuple], quoted_extra: bool = False) -> Path:
    header = ["", "pokemonId", "latitude", "longitude", "city", "temperature", "pressure"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, (pid, lat, lon, t, p) in enumerate(rows):
            city = 'Some "odd",\ncity' if quoted_extra and i % 3 == 0 else "New_York"
            w.writerow([i, pid, lat, lon, city, t, p])
    return path


def test_load_pokemon_from_a_csv_filters_and_orders_classes(tmp_path):
    rows = []
    for i in range(30):
        pid = (50, 86, 128, 16, 19)[i % 5]
        rows.append((pid, 40.0 + i, -70.0 - i, 10.0 + i / 2, 1000.0 + i))
    path = write_pokemon_csv(tmp_path / "300k.csv", rows, quoted_extra=True)
    x, y = D.read_pokemon_csv(path)
    kept = [r for r in rows if r[0] in (50, 86, 128)]
    np.testing.assert_array_equal(x, [[r[2], r[1], r[3], r[4]] for r in kept])
    np.testing.assert_array_equal(y, [{50: 0, 86: 1, 128: 2}[r[0]] for r in kept])
    ds = D.load_dataset("pokemon", csv_path=path, test_fraction=0.25)
    assert not ds.synthetic and ds.source == str(path)
    assert ds.class_names == ("Diglett", "Seel", "Tauros")
    assert ds.feature_names == ("longitude", "latitude", "temperature", "pressure")
    assert ds.n_samples == 18 and len(ds.test_idx) == round(0.25 * 18)
    np.testing.assert_allclose(ds.x.mean(axis=0), 0, atol=1e-5)


def test_pokemon_csv_with_one_class_is_refused(tmp_path):
    rows = [(128, 40.0 + i, -70.0, 20.0, 1010.0) for i in range(12)]
    path = write_pokemon_csv(tmp_path / "tauros.csv", rows)
    with pytest.raises(DataError, match="only one class"):
        D.load_dataset("pokemon", csv_path=path)


def test_pokemon_csv_missing_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("pokemonId,latitude,longitude,temperature\n50,1,2,3\n")
    with pytest.raises(DataError, match="pressure") as err:
        D.read_pokemon_csv(path)
    assert str(path) in str(err.value)


def test_synthetic_pokemon_class_sizes_and_ranges():
    x, y = D.synthetic_pokemon(0)
    assert x.shape == (2100, 4) and y.shape == (2100,)
    counts = np.bincount(y, minlength=3)
    for got, want in zip(counts, (627, 770, 703)):
        assert abs(got - want) <= 0.03 * want
    lon, lat, temp, pressure = x.T
    assert lat.min() >= -45 and lat.max() <= 60
    assert lon.min() >= -125 and lon.max() <= 150
    assert temp.min() >= -5 and temp.max() <= 35
    assert pressure.min() >= 990 and pressure.max() <= 1035
    # spread over several continents, not a single blob
    assert (lon > -30).mean() > 0.15 and (lat < 0).mean() > 0.03


def test_synthetic_tauros_only_in_north_america():
    x, y = D.synthetic_pokemon(3)
    lon, lat = x[:, 0], x[:, 1]
    north_america = (lat > 10) & (lon < -50)
    assert north_america[y == 2].all()
    assert (~north_america[y == 0]).sum() > 100  # Diglett lives everywhere
    assert (~north_america[y == 1]).sum() > 100


def test_synthetic_seel_prefers_cold():
    x, y = D.synthetic_pokemon(0)
    temp = x[:, 2]
    assert temp[y == 1].mean() < temp[y == 0].mean() - 2
    assert temp[y == 1].mean() < temp[y == 2].mean() - 2


def test_synthetic_pokemon_is_deterministic_per_seed():
    x1, y1 = D.synthetic_pokemon(7)
    x2, y2 = D.synthetic_pokemon(7)
    x3, _ = D.synthetic_pokemon(8)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


def test_load_pokemon_default_is_synthetic_and_standardised():
    ds = D.load_dataset("pokemon", synthetic_seed=2)
    assert ds.synthetic and ds.source == "generated"
    assert "SYNTHETIC" in ds.description and "2,100" in ds.description
    assert ds.class_names == ("Diglett", "Seel", "Tauros")
    assert ds.x.dtype == np.float32 and ds.x.shape == (2100, 4)
    np.testing.assert_allclose(ds.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x.std(axis=0), 1, atol=1e-5)
    raw = D.load_dataset("pokemon", synthetic_seed=2, standardize=False)
    x, y = D.synthetic_pokemon(2)
    np.testing.assert_array_equal(raw.x, x.astype(np.float32))
    np.testing.assert_array_equal(raw.y, y)
    np.testing.assert_allclose(ds.x, ((x - x.mean(0)) / x.std(0)).astype(np.float32), atol=1e-5)


# --- generic CSV --------------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def good_rows(n: int = 20) -> list[list]:
    species = ["setosa", "virginica", "versicolor"]
    return [[i * 0.5, 10 - i, species[i % 3], f"id{i}"] for i in range(n)]


def test_good_csv_with_string_labels(tmp_path):
    path = write_csv(tmp_path / "iris.csv", ["a", "b", "species", "name"], good_rows())
    with pytest.warns(D.DataWarning, match=r"not used as a feature .* 'name' \(line 2 holds"):
        ds = D.load_dataset("csv", csv_path=path, label="species", standardize=False,
                            test_fraction=0.25)
    assert ds.feature_names == ("a", "b")  # 'name' is not numeric, so not a feature
    assert ds.class_names == ("setosa", "versicolor", "virginica")
    np.testing.assert_array_equal(ds.x[:, 0], np.arange(20) * 0.5)
    np.testing.assert_array_equal(ds.x[:, 1], 10 - np.arange(20))
    lookup = {"setosa": 0, "versicolor": 1, "virginica": 2}
    np.testing.assert_array_equal(ds.y, [lookup[r[2]] for r in good_rows()])
    assert ds.source == str(path) and not ds.synthetic
    assert (len(ds.train_idx), len(ds.test_idx)) == (15, 5)
    assert "iris.csv" in ds.description
    chosen = D.load_dataset("csv", csv_path=path, label="species", features=("b",))
    assert chosen.feature_names == ("b",)
    np.testing.assert_allclose(chosen.x.std(axis=0), 1, atol=1e-5)  # standardised by default


def test_csv_numeric_labels_sort_numerically(tmp_path):
    rows = [[i, (2, 10, 1)[i % 3]] for i in range(12)]
    path = write_csv(tmp_path / "n.csv", ["f", "y"], rows)
    ds = D.load_dataset("csv", csv_path=path, label="y")
    assert ds.class_names == ("1", "2", "10")
    np.testing.assert_array_equal(ds.y, [(1, 2, 0)[i % 3] for i in range(12)])


def expect_error(path: Path, match: str, error=DataError, **kwargs) -> None:
    kwargs.setdefault("label", "species")
    with pytest.raises(error, match=match) as err:
        D.load_dataset("csv", csv_path=path, **kwargs)
    message = str(err.value)
    assert str(path) in message
    assert "\n" not in message and "Traceback" not in message


def test_csv_missing_file(tmp_path):
    expect_error(tmp_path / "nope.csv", "does not exist")


def test_csv_unreadable(tmp_path):
    directory = tmp_path / "dir.csv"
    directory.mkdir()
    expect_error(directory, "not a regular file")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"a,species\n\xff\xfe,1\n")
    expect_error(binary, "not UTF-8")


def test_csv_empty(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    expect_error(empty, "is empty")
    header_only = write_csv(tmp_path / "header.csv", ["a", "species"], [])
    expect_error(header_only, "no data rows")


def test_csv_missing_column_lists_columns_and_suggests(tmp_path):
    path = write_csv(tmp_path / "iris.csv", ["a", "b", "species", "name"], good_rows())
    expect_error(path, r"unknown column 'specis'; did you mean 'species'\? "
                       r"\(known: a, b, name, species\)", label="specis")
    expect_error(path, r"unknown column 'c'", features=("a", "c"))


def test_csv_non_numeric_feature(tmp_path):
    rows = good_rows()
    rows[4][1] = "ten"
    path = write_csv(tmp_path / "bad.csv", ["a", "b", "species", "name"], rows)
    expect_error(path, r"line 6, column 'b' holds 'ten', which is not a number",
                 features=("a", "b"))
    rows[4][1] = ""
    path = write_csv(tmp_path / "blank.csv", ["a", "b", "species", "name"], rows)
    expect_error(path, r"column 'b' holds an empty value", features=("a", "b"))


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity"])
@pytest.mark.parametrize("features", [("a", "b"), None])
def test_csv_non_finite_feature(tmp_path, bad, features):
    rows = good_rows()
    rows[7][0] = bad
    path = write_csv(tmp_path / "nan.csv", ["a", "b", "species", "name"], rows)
    expect_error(path, r"line 9, column 'a' .*finite", features=features)


def test_csv_single_class(tmp_path):
    rows = [[i, 2 * i, "setosa"] for i in range(20)]
    path = write_csv(tmp_path / "one.csv", ["a", "b", "species"], rows)
    expect_error(path, r"only one class \('setosa'\)")


def test_csv_too_few_rows(tmp_path):
    path = write_csv(tmp_path / "few.csv", ["a", "b", "species"], [r[:3] for r in good_rows(D.MIN_ROWS - 1)])
    expect_error(path, f"only {D.MIN_ROWS - 1} rows")
    ok = write_csv(tmp_path / "enough.csv", ["a", "b", "species"], [r[:3] for r in good_rows(D.MIN_ROWS)])
    assert D.load_dataset("csv", csv_path=ok, label="species").n_samples == D.MIN_ROWS


def test_csv_ragged_row_and_no_numeric_columns(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,species\n1,x\n2\n")
    expect_error(path, "line 3 has 1 fields but the header has 2")
    words = write_csv(tmp_path / "words.csv", ["w", "species"],
                      [[f"w{i}", "ab"[i % 2]] for i in range(12)])
    expect_error(words, "no numeric column")


def test_csv_option_errors(tmp_path):
    path = write_csv(tmp_path / "iris.csv", ["a", "b", "species", "name"], good_rows())
    with pytest.raises(ConfigError, match="label"):
        D.load_dataset("csv", csv_path=path)
    with pytest.raises(ConfigError, match="csv_path"):
        D.load_dataset("csv", label="species")
    with pytest.raises(ConfigError, match="both a feature and the label"):
        D.load_dataset("csv", csv_path=path, label="species", features=("a", "species"))
    with pytest.raises(ConfigError, match="only to the csv dataset"):
        D.load_dataset("tishby", label="y")


def test_unknown_dataset_name():
    with pytest.raises(DataError, match=r"unknown dataset 'pokemn'; did you mean 'pokemon'\?"):
        D.load_dataset("pokemn")


# --- splits -------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.2, 0.5, 0.9])
def test_split_sizes_disjoint_and_covering(fraction):
    ds = D.load_dataset("pokemon", test_fraction=fraction, split_seed=5)
    n = ds.n_samples
    assert len(ds.test_idx) == round(fraction * n)
    assert len(ds.train_idx) + len(ds.test_idx) == n
    assert ds.train_idx.dtype == np.int64 and ds.test_idx.dtype == np.int64
    assert not np.intersect1d(ds.train_idx, ds.test_idx).size
    np.testing.assert_array_equal(np.sort(np.concatenate([ds.train_idx, ds.test_idx])),
                                  np.arange(n))


def test_split_is_deterministic_per_seed():
    a = D.load_dataset("tishby", split_seed=1)
    b = D.load_dataset("tishby", split_seed=1)
    c = D.load_dataset("tishby", split_seed=2)
    np.testing.assert_array_equal(a.test_idx, b.test_idx)
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    assert not np.array_equal(a.test_idx, c.test_idx)
    # the split is a seeded shuffle, independent of the data
    train, test = D.split_indices(4096, 0.2, 1)
    np.testing.assert_array_equal(test, a.test_idx)
    np.testing.assert_array_equal(train, a.train_idx)


def test_zero_test_fraction_gives_empty_test_set():
    ds = D.load_dataset("tishby", test_fraction=0)
    assert ds.test_idx.shape == (0,) and ds.test_idx.dtype == np.int64
    np.testing.assert_array_equal(ds.train_idx, np.arange(4096))


@pytest.mark.parametrize("bad", [-0.1, 0.95, 1.0, float("nan"), True, "0.2"])
def test_bad_test_fraction(bad):
    with pytest.raises(ConfigError, match="test_fraction"):
        D.load_dataset("tishby", test_fraction=bad)


# --- CSV: duplicate names, wide files, dropped columns (issue 14, item 9) -----------------------


def test_csv_duplicate_column_names_are_refused(tmp_path):
    rows = [[i, i % 2, i * 2.0, i % 3] for i in range(12)]
    twice_label = write_csv(tmp_path / "y.csv", ["x1", "y", "x2", "y"], rows)
    expect_error(twice_label, r"two columns named 'y' \(columns 2 and 4\)", label="y")
    twice_feature = write_csv(tmp_path / "x.csv", ["x1", "y", "x1", "z"], rows)
    expect_error(twice_feature, r"two columns named 'x1' \(columns 1 and 3\)", label="y")
    # unnamed columns (an index column) are not duplicates of each other
    unnamed = write_csv(tmp_path / "u.csv", ["", "y", "", "x"], rows)
    assert D.load_dataset("csv", csv_path=unnamed, label="y").feature_names == ("x",)


def test_csv_with_a_million_columns_is_read_in_linear_time(tmp_path):
    n = 1_000_000
    path = tmp_path / "wide.csv"
    header = ",".join(f"c{j}" for j in range(n)) + ",y\n"
    row = ",".join("1" for _ in range(n))
    path.write_text(header + row + ",0\n" + row.replace("1", "2") + ",1\n")
    x, y, names, classes = D.read_labelled_csv(path, "y", ("c999999", "c3"))
    assert names == ("c999999", "c3") and x.tolist() == [[1.0, 1.0], [2.0, 2.0]] and y.tolist() == [0, 1]
    # the quadratic part used to be the search for every column in the header, when features
    # are chosen automatically: 200,000 named columns would take ~20e9 comparisons
    m = 200_000
    path2 = tmp_path / "wide2.csv"
    path2.write_text(",".join(f"c{j}" for j in range(m)) + ",y\n"
                     + ",".join("0.5" for _ in range(m)) + ",a\n" + ",".join("1.5" for _ in range(m)) + ",b\n")
    x, y, names, classes = D.read_labelled_csv(path2, "y")
    assert x.shape == (2, m) and names[-1] == f"c{m - 1}" and classes == ("a", "b")
    with pytest.raises(DataError, match=r"has no column 'nope' \(it has 200,001 named columns\)"):
        D.read_labelled_csv(path2, "nope")


def test_csv_feature_columns_dropped_for_a_non_number_are_named(tmp_path):
    rows = [[i, "n/a" if i == 4 else i * 2, f"id{i}", i % 2] for i in range(12)]
    path = write_csv(tmp_path / "d.csv", ["a", "b", "name", "y"], rows)
    with pytest.warns(D.DataWarning) as caught:
        ds = D.load_dataset("csv", csv_path=path, label="y")
    assert ds.feature_names == ("a",)
    message = str(caught[0].message)
    assert "'b' (line 6 holds 'n/a')" in message and "'name' (line 2 holds 'id0')" in message
    assert str(path) in message and "2 columns are not used as a feature" in message
    # shown on stderr by the CLI's default warning filter
    import subprocess
    import sys
    code = ("from ibtui.data import load_dataset; "
            f"load_dataset('csv', csv_path={str(path)!r}, label='y')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": ""}, check=False)
    assert result.returncode == 0 and "'b' (line 6 holds 'n/a')" in result.stderr


def test_csv_all_numeric_columns_warn_nothing(tmp_path, recwarn):
    rows = [[i, i * 2, i % 2] for i in range(12)]
    path = write_csv(tmp_path / "ok.csv", ["a", "b", "y"], rows)
    assert D.load_dataset("csv", csv_path=path, label="y").feature_names == ("a", "b")
    assert not [w for w in recwarn if issubclass(w.category, D.DataWarning)]


# --- stratified MI subsets ----------------------------------------------------------------


def test_stratified_subset_keeps_class_proportions_and_is_seeded():
    y = np.array([0] * 700 + [1] * 200 + [2] * 100)
    rng = np.random.default_rng(5)
    y = y[rng.permutation(len(y))]
    idx = D.stratified_subset(y, 101, seed=1)
    assert len(idx) == 101 and len(set(idx.tolist())) == 101
    assert np.all(np.diff(idx) > 0)
    # exact shares 70.7 / 20.2 / 10.1: floors 70 / 20 / 10 and the one left over to the largest remainder
    assert np.bincount(y[idx]).tolist() == [71, 20, 10]
    np.testing.assert_array_equal(idx, D.stratified_subset(y, 101, seed=1))
    assert not np.array_equal(idx, D.stratified_subset(y, 101, seed=2))
    np.testing.assert_array_equal(D.stratified_subset(y, 1000, 0), np.arange(1000))
    np.testing.assert_array_equal(D.stratified_subset(y, None, 0), np.arange(1000))
    with pytest.raises(ConfigError, match="positive whole number"):
        D.stratified_subset(y, 0, 0)


def test_new_data_config_fields_are_validated():
    from ibtui.config import RunConfig

    base = RunConfig()
    assert base.data.mi_samples == D.MI_SAMPLES_DEFAULT and base.data.data_dir is None
    with pytest.raises(ConfigError, match="data.data_dir applies only to mnist"):
        base.with_overrides({"data.data_dir": "/tmp"})
    with pytest.raises(ConfigError, match="data.mi_samples must be from 2"):
        base.with_overrides({"data.mi_samples": 1})
    with pytest.raises(ConfigError, match="model.layers describes recorded runs only"):
        base.with_overrides({"model.layers": ["a"] * 5})
    ok = base.with_overrides({"data.name": "mnist", "data.data_dir": "/data/mnist", "data.mi_samples": 500})
    assert ok.data.data_dir == "/data/mnist"


def test_label_noise_replaces_a_seeded_fraction_of_training_labels_only():
    ds = D.load_dataset("tishby", test_fraction=0.2, split_seed=0)
    noisy = D.with_label_noise(ds, 0.5, seed=7)
    changed = np.flatnonzero(noisy.y != ds.y)
    assert set(changed.tolist()) <= set(ds.train_idx.tolist())  # test labels untouched
    np.testing.assert_array_equal(noisy.y[ds.test_idx], ds.y[ds.test_idx])
    # half the training labels redrawn from 2 classes: about half of those keep their class
    n = len(ds.train_idx)
    assert 0.15 * n < len(changed) < 0.35 * n
    np.testing.assert_array_equal(noisy.y, D.with_label_noise(ds, 0.5, seed=7).y)
    assert not np.array_equal(noisy.y, D.with_label_noise(ds, 0.5, seed=8).y)
    assert D.with_label_noise(ds, 0.0) is ds
    control = D.with_label_noise(ds, 1.0, seed=1)
    agree = np.mean(control.y[ds.train_idx] == ds.y[ds.train_idx])
    assert 0.45 < agree < 0.55 and "100% of training labels random" in control.description
    with pytest.raises(ConfigError, match="fraction from 0 to 1"):
        D.with_label_noise(ds, 1.5)


def test_dataset_from_config_applies_every_data_field(tmp_path):
    from ibtui.config import RunConfig

    config = RunConfig().with_overrides({"data.label_noise": 1.0, "data.label_noise_seed": 3, "data.split_seed": 2})
    ds = D.dataset_from_config(config.data)
    expected = D.with_label_noise(D.load_dataset("tishby", split_seed=2), 1.0, 3)
    np.testing.assert_array_equal(ds.y, expected.y)
    np.testing.assert_array_equal(ds.test_idx, expected.test_idx)
    with pytest.raises(ConfigError, match="data.label_noise must be a fraction"):
        RunConfig().with_overrides({"data.label_noise": 2.0})
