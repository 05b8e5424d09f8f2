"""Datasets for the information-plane experiments: loading, generating, splitting.

Three datasets, chosen by name (``DATASETS``):

* ``tishby``: the 4096 12-bit patterns of Shwartz-Ziv & Tishby (``var_u``), generated exactly
  (see ``tishby_patterns``). Rows in pattern order: row n is n in binary, MSB first.
  Not standardised by default (the inputs are 0/1 bits, as in the paper).
* ``pokemon``: Pokemon Go sightings of Diglett, Seel and Tauros with the features
  (longitude, latitude, temperature, pressure). With ``csv_path`` the rows come from the
  user's copy of Kaggle's "Predict'em All" ``300k.csv`` (in file order, see
  ``read_pokemon_csv``); without it, from a documented synthetic stand-in
  (``synthetic_pokemon``), marked ``synthetic=True``. Standardised by default.
* ``csv``: any CSV with a header row, chosen numeric feature columns and a label column
  (``read_labelled_csv``). Rows in file order. Standardised by default.

Standardisation (when on) makes every feature zero-mean and unit-variance using statistics over
*all* rows (train and test together), so the inputs do not change with the split; a constant
feature is only centred. Splits are a plain (unstratified) shuffle with
``np.random.default_rng(split_seed)``: ``round(test_fraction * N)`` samples go to the test set,
the rest to training; both index arrays are sorted.

This module imports only numpy and the standard library. Problems with the user's data raise
``DataError`` and problems with the options ``ConfigError``, each with one sentence.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ibtui.errors import ConfigError, DataError, unknown_name

DATASETS = ("tishby", "pokemon", "csv")

#: A dataset with fewer rows than this (after filtering) is refused.
MIN_ROWS = 10
#: Largest allowed ``test_fraction``; at least 10 % of the data always trains.
MAX_TEST_FRACTION = 0.9

# --- tishby -------------------------------------------------------------------------------

TISHBY_BITS = 12
#: Any threshold in (7.5628, 7.7013) reproduces var_u.mat; this is the middle of the gap.
TISHBY_THRESHOLD = 7.63
TISHBY_POSITIVES = 2118


def _icosahedron_vertices() -> np.ndarray:
    """The 12 unit icosahedron vertices in var_u's column order (docs/design.md, "The datasets")."""
    phi = (1.0 + math.sqrt(5.0)) / 2.0
    v = np.array(
        [
            (0, 1, phi), (1, phi, 0), (phi, 0, -1), (phi, 0, 1),
            (0, 1, -phi), (-phi, 0, 1), (-phi, 0, -1), (-1, -phi, 0),
            (1, -phi, 0), (0, -1, -phi), (0, -1, phi), (-1, phi, 0),
        ],
        dtype=np.float64,
    )
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def tishby_patterns() -> tuple[np.ndarray, np.ndarray]:
    """All 4096 12-bit patterns and their labels, identical to var_u.mat's F and y.

    Returns ``(bits, y)``: ``bits`` is (4096, 12) uint8 where row n is n in binary with the
    most significant bit in column 0; ``y`` is (4096,) int64, 1 iff
    ``k + ||sum_i x_i v_i|| > 7.63`` with ``k = sum_i x_i`` and ``v_i`` the unit icosahedron
    vertices. Exactly 2118 labels are 1. (The original loaders one-hot this as [y, 1-y];
    here the class index is simply y.)
    """
    n = np.arange(2**TISHBY_BITS, dtype=np.int64)
    shifts = np.arange(TISHBY_BITS - 1, -1, -1, dtype=np.int64)
    bits = ((n[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    b = bits.astype(np.float64)
    radius = np.linalg.norm(b @ _icosahedron_vertices(), axis=1)
    y = (b.sum(axis=1) + radius > TISHBY_THRESHOLD).astype(np.int64)
    return bits, y


# --- pokemon ------------------------------------------------------------------------------

POKEMON_FEATURES = ("longitude", "latitude", "temperature", "pressure")
POKEMON_CLASSES = ("Diglett", "Seel", "Tauros")
POKEMON_IDS = (50, 86, 128)  # pokemonId of each class, same order as POKEMON_CLASSES
POKEMON_ID_COLUMN = "pokemonId"
#: Class sizes of the synthetic stand-in: the estimated sizes in the full 300k.csv.
POKEMON_SYNTHETIC_SIZES = (627, 770, 703)


class City(NamedTuple):
    """A centre that synthetic sightings cluster around."""

    name: str
    lat: float
    lon: float
    region: str  # "NA" North America, "EU", "AS", "OC" Oceania, "SA" South America, "AF"
    coastal: bool
    temp: float  # typical September air temperature, deg C
    weight: float  # relative number of players


#: City centres of the synthetic stand-in (a few dozen, on six continents; every one lies
#: inside lat -45..60, lon -125..150). North America is the box lat > 10, lon < -50.
POKEMON_CITIES: tuple[City, ...] = (
    City("New York", 40.71, -74.01, "NA", True, 21.0, 10.0),
    City("Los Angeles", 34.05, -118.24, "NA", True, 24.0, 9.0),
    City("Chicago", 41.88, -87.63, "NA", False, 19.0, 7.0),
    City("San Francisco", 37.77, -122.42, "NA", True, 18.0, 5.0),
    City("Seattle", 47.61, -122.33, "NA", True, 16.0, 4.0),
    City("Vancouver", 49.28, -123.12, "NA", True, 15.0, 4.0),
    City("Edmonton", 53.55, -113.49, "NA", False, 11.0, 3.0),
    City("Toronto", 43.65, -79.38, "NA", False, 17.0, 4.0),
    City("Boston", 42.36, -71.06, "NA", True, 18.0, 4.0),
    City("Halifax", 44.65, -63.57, "NA", True, 15.0, 2.0),
    City("Miami", 25.76, -80.19, "NA", True, 28.0, 3.0),
    City("Houston", 29.76, -95.37, "NA", False, 27.0, 4.0),
    City("Denver", 39.74, -104.99, "NA", False, 18.0, 3.0),
    City("Phoenix", 33.45, -112.07, "NA", False, 31.0, 3.0),
    City("Indianapolis", 39.77, -86.16, "NA", False, 20.0, 3.0),
    City("Mexico City", 19.43, -99.13, "NA", False, 16.0, 5.0),
    City("Monterrey", 25.69, -100.32, "NA", False, 26.0, 2.0),
    City("London", 51.51, -0.13, "EU", False, 15.0, 5.0),
    City("Amsterdam", 52.37, 4.90, "EU", True, 15.0, 3.0),
    City("Hamburg", 53.55, 9.99, "EU", True, 14.0, 2.0),
    City("Copenhagen", 55.68, 12.57, "EU", True, 14.0, 2.0),
    City("Oslo", 59.91, 10.75, "EU", True, 11.0, 2.0),
    City("Stockholm", 59.33, 18.07, "EU", True, 12.0, 2.0),
    City("Berlin", 52.52, 13.40, "EU", False, 15.0, 3.0),
    City("Prague", 50.08, 14.44, "EU", False, 14.0, 3.0),
    City("Madrid", 40.42, -3.70, "EU", False, 21.0, 2.0),
    City("Lisbon", 38.72, -9.14, "EU", True, 22.0, 2.0),
    City("Tokyo", 35.68, 139.69, "AS", True, 24.0, 4.0),
    City("Sapporo", 43.06, 141.35, "AS", True, 18.0, 2.0),
    City("Taipei", 25.03, 121.57, "AS", True, 28.0, 2.0),
    City("Kuala Lumpur", 3.14, 101.69, "AS", False, 28.0, 2.0),
    City("Singapore", 1.35, 103.82, "AS", True, 28.0, 2.0),
    City("Melbourne", -37.81, 144.96, "OC", True, 13.0, 3.0),
    City("Perth", -31.95, 115.86, "OC", True, 16.0, 2.0),
    City("Sao Paulo", -23.55, -46.63, "SA", False, 20.0, 3.0),
    City("Buenos Aires", -34.60, -58.38, "SA", True, 15.0, 2.0),
    City("Santiago", -33.45, -70.67, "SA", False, 13.0, 1.0),
    City("Cape Town", -33.92, 18.42, "AF", True, 15.0, 1.0),
)

_SYN_POSITION_SD = 0.25  # degrees of latitude (~28 km); longitude is widened by 1/cos(lat)
_SYN_TEMP_SD = 3.5  # day-to-day spread around the city's typical temperature, deg C
_SYN_SEEL_COLDER = 2.0  # Seel sightings fall on days this much colder, deg C
_SYN_PRESSURE_MEAN = 1015.0
_SYN_PRESSURE_SD = 5.0
_SYN_PRESSURE_PER_DEGREE = -0.3  # warmer than usual -> slightly lower pressure
_SYN_RANGES = {  # values are clipped into these, the ranges of the real data
    "latitude": (-45.0, 60.0),
    "longitude": (-125.0, 150.0),
    "temperature": (-5.0, 35.0),
    "pressure": (990.0, 1035.0),
}


def _city_weights(class_name: str) -> np.ndarray:
    weight = np.array([c.weight for c in POKEMON_CITIES])
    if class_name == "Tauros":
        return weight * np.array([c.region == "NA" for c in POKEMON_CITIES], dtype=np.float64)
    if class_name == "Seel":
        coast = np.array([3.0 if c.coastal else 0.3 for c in POKEMON_CITIES])
        cold = np.exp(-(np.array([c.temp for c in POKEMON_CITIES]) - 15.0) / 7.0)
        return weight * coast * cold
    return weight  # Diglett lives everywhere players are


def synthetic_pokemon(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic stand-in for the Diglett/Seel/Tauros sightings of 300k.csv.

    Returns ``(x, y)``: ``x`` is (2100, 4) float64 in raw units with columns
    ``POKEMON_FEATURES`` = (longitude, latitude, temperature, pressure); ``y`` is (2100,)
    int64 indices into ``POKEMON_CLASSES``. Deterministic given ``seed``.

    The rule, per class c with exactly ``POKEMON_SYNTHETIC_SIZES[c]`` = 627 / 770 / 703
    sightings:

    1. Pick a city of ``POKEMON_CITIES`` with probability proportional to its player weight
       times a class factor: Diglett 1 (everywhere); Seel 3 on a coast or 0.3 inland, times
       exp(-(T_city - 15) / 7) (colder cities); Tauros 1 in North America and 0 elsewhere
       (Tauros is region-exclusive to North America in the game).
    2. Position: the city centre plus Gaussian noise, sd 0.25 deg latitude and
       0.25 / cos(latitude) deg longitude.
    3. Temperature: T_city + N(0, 3.5^2), 2 deg C colder for Seel.
    4. Pressure (hPa): 1015 + N(0, 5^2) - 0.3 * (temperature - T_city).
    5. Every value is clipped to lat -45..60, lon -125..150, temperature -5..35,
       pressure 990..1035; then the rows are shuffled.

    So the classes overlap in every North American city (learnable but not trivially
    separable), Tauros never appears outside North America, and Seel leans to cold coasts.
    """
    rng = np.random.default_rng(seed)
    lat_c = np.array([c.lat for c in POKEMON_CITIES])
    lon_c = np.array([c.lon for c in POKEMON_CITIES])
    temp_c = np.array([c.temp for c in POKEMON_CITIES])
    xs, ys = [], []
    for label, (name, size) in enumerate(zip(POKEMON_CLASSES, POKEMON_SYNTHETIC_SIZES)):
        p = _city_weights(name)
        city = rng.choice(len(POKEMON_CITIES), size=size, p=p / p.sum())
        lat = lat_c[city] + rng.normal(0.0, _SYN_POSITION_SD, size)
        lon = lon_c[city] + rng.normal(0.0, _SYN_POSITION_SD, size) / np.cos(np.radians(lat))
        anomaly = rng.normal(0.0, _SYN_TEMP_SD, size) - (_SYN_SEEL_COLDER if name == "Seel" else 0.0)
        temp = temp_c[city] + anomaly
        pressure = (_SYN_PRESSURE_MEAN + rng.normal(0.0, _SYN_PRESSURE_SD, size)
                    + _SYN_PRESSURE_PER_DEGREE * anomaly)
        xs.append(np.stack([lon, lat, temp, pressure], axis=1))
        ys.append(np.full(size, label, dtype=np.int64))
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    for j, feature in enumerate(POKEMON_FEATURES):
        lo, hi = _SYN_RANGES[feature]
        x[:, j] = np.clip(x[:, j], lo, hi)
    order = rng.permutation(len(y))
    return x[order], y[order]


# --- reading CSV files --------------------------------------------------------------------


def _open_csv(path: str | os.PathLike[str]):
    """Open a CSV for reading as text, turning file-system problems into DataError."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"CSV file '{p}' does not exist.")
    if not p.is_file():
        raise DataError(f"CSV file '{p}' is not a regular file.")
    try:
        # utf-8-sig: a byte-order mark would otherwise glue itself to the first column name.
        return open(p, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"CSV file '{p}' cannot be read ({exc.strerror or exc}).") from None


class _ReadGuard:
    """Turn decoding and csv-syntax errors raised while iterating into DataError."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, UnicodeDecodeError):
            raise DataError(f"CSV file '{self.path}' is not UTF-8 text.") from None
        if exc_type is not None and issubclass(exc_type, csv.Error):
            raise DataError(f"CSV file '{self.path}' is not valid CSV ({exc}).") from None
        if exc_type is not None and issubclass(exc_type, OSError):
            raise DataError(f"CSV file '{self.path}' cannot be read ({exc}).") from None
        return False


def _read_header(path: Path, reader: Iterator[list[str]]) -> list[str]:
    header = next(reader, None)
    if header is None:
        raise DataError(f"CSV file '{path}' is empty.")
    header = [name.strip() for name in header]
    if not any(header):
        raise DataError(f"CSV file '{path}' has no header row with column names.")
    return header


def _column_index(path: Path, header: Sequence[str], name: str) -> int:
    if name not in header:
        raise DataError(f"CSV file '{path}': {unknown_name('column', name, [h for h in header if h])}.")
    return header.index(name)


def _parse_number(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = f"'{text}'" if text.strip() else "an empty value"
        raise DataError(f"CSV file '{path}', line {line}, column '{column}' holds {shown}, "
                        f"which is not a number.") from None
    if not math.isfinite(value):
        raise DataError(f"CSV file '{path}', line {line}, column '{column}' holds {text.strip()}; "
                        f"features must be finite numbers.")
    return value


class _LineCounter:
    lineno = 0
    id_column: int | None = None


def _prefiltered_lines(lines: Iterable[str], state: _LineCounter,
                       wanted: frozenset[str]) -> Iterator[str]:
    """Yield the file's lines, dropping (cheaply) whole records whose id is plainly unwanted.

    300k.csv has 208 columns and ~0.7 % of its rows are wanted, so splitting only up to the
    id column instead of csv-parsing every row is ~10x faster. A line is dropped only when it
    starts a record outside any quoted field, contains no quote at all and its id field is a
    plain integer not in ``wanted``; everything else goes to the csv parser as usual.
    """
    in_quotes = False
    for line in lines:
        state.lineno += 1
        k = state.id_column
        if k is not None and not in_quotes and '"' not in line:
            parts = line.split(",", k + 1)
            if len(parts) > k:
                field = parts[k].strip()
                if field.isdigit() and field not in wanted:
                    continue
        if line.count('"') % 2:
            in_quotes = not in_quotes
        yield line


def read_pokemon_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read the Diglett/Seel/Tauros rows of a "Predict'em All" CSV (such as 300k.csv).

    Returns ``(x, y)`` in file order: ``x`` (n, 4) float64 raw values of ``POKEMON_FEATURES``
    (longitude, latitude, temperature, pressure), ``y`` (n,) int64 indices into
    ``POKEMON_CLASSES`` (pokemonId 50, 86, 128). The file is streamed and only the needed
    columns of the matching rows are parsed. Does not enforce ``MIN_ROWS`` or a class
    count (``load_dataset`` does); raises DataError for a missing/unreadable/empty file,
    a missing column, or a non-numeric or non-finite feature in a matching row.
    """
    p = Path(path)
    wanted = {str(i): label for label, i in enumerate(POKEMON_IDS)}
    state = _LineCounter()
    rows: list[tuple[float, float, float, float]] = []
    labels: list[int] = []
    with _open_csv(p) as f, _ReadGuard(p):
        reader = csv.reader(_prefiltered_lines(f, state, frozenset(wanted)))
        header = _read_header(p, reader)
        id_col = _column_index(p, header, POKEMON_ID_COLUMN)
        cols = [_column_index(p, header, name) for name in POKEMON_FEATURES]
        state.id_column = id_col
        need = max([id_col, *cols])
        for row in reader:
            if len(row) <= id_col:
                if not row or not any(field.strip() for field in row):
                    continue  # blank line
                raise DataError(f"CSV file '{p}', line {state.lineno} has {len(row)} fields "
                                f"but the header has {len(header)}.")
            label = wanted.get(row[id_col].strip())
            if label is None:
                continue
            if len(row) <= need:
                raise DataError(f"CSV file '{p}', line {state.lineno} has {len(row)} fields "
                                f"but the header has {len(header)}.")
            rows.append(tuple(_parse_number(p, state.lineno, name, row[c])
                              for name, c in zip(POKEMON_FEATURES, cols)))
            labels.append(label)
    x = np.array(rows, dtype=np.float64).reshape(len(rows), len(POKEMON_FEATURES))
    return x, np.array(labels, dtype=np.int64)


def _class_names_and_indices(values: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names and per-row class indices for label values.

    When every value is a number the classes are ordered numerically and named by the
    number ("2", "10", "0.5"; "1" and "1.0" are the same class); otherwise the classes are
    the distinct strings in sorted order.
    """
    try:
        numbers = [float(v) for v in values]
        numeric = all(math.isfinite(n) for n in numbers)
    except ValueError:
        numeric = False
    if numeric:
        distinct = sorted(set(numbers))
        names = tuple(str(int(n)) if n.is_integer() else repr(n) for n in distinct)
        lookup = {n: i for i, n in enumerate(distinct)}
        return names, np.array([lookup[n] for n in numbers], dtype=np.int64)
    names = tuple(sorted(set(values)))
    lookup = {n: i for i, n in enumerate(names)}
    return names, np.array([lookup[v] for v in values], dtype=np.int64)


def read_labelled_csv(
    path: str | os.PathLike[str],
    label: str,
    features: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Read a CSV with a header row into ``(x, y, feature_names, class_names)``.

    ``x`` is (n, d) float64 in file order and column order ``features``; when ``features`` is
    None it is every named column, other than ``label``, whose every value is a number.
    ``y`` holds indices into ``class_names`` (see ``_class_names_and_indices``). Blank
    lines are skipped. Does not enforce ``MIN_ROWS`` or two classes (``load_dataset`` does).
    """
    p = Path(path)
    with _open_csv(p) as f, _ReadGuard(p):
        reader = csv.reader(f)
        header = _read_header(p, reader)
        label_col = _column_index(p, header, label)
        if features is not None:
            features = tuple(features)
            if not features:
                raise ConfigError("the csv dataset needs at least one feature column.")
            dupes = sorted({name for name in features if features.count(name) > 1})
            if dupes:
                raise ConfigError(f"feature column '{dupes[0]}' is listed more than once.")
            if label in features:
                raise ConfigError(f"column '{label}' cannot be both a feature and the label.")
            cols = [_column_index(p, header, name) for name in features]
        else:
            cols = [j for j, name in enumerate(header) if name and j != label_col
                    and header.index(name) == j]
        names = [header[j] for j in cols]
        strict = features is not None
        values: list[list[float]] = [[] for _ in cols]
        numeric = [True] * len(cols)
        first_bad: list[tuple[int, str] | None] = [None] * len(cols)  # first non-finite value
        labels: list[str] = []
        for row in reader:
            if not row or not any(field.strip() for field in row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise DataError(f"CSV file '{p}', line {line} has {len(row)} fields "
                                f"but the header has {len(header)}.")
            text = row[label_col].strip()
            if not text:
                raise DataError(f"CSV file '{p}', line {line} has an empty label "
                                f"in column '{label}'.")
            labels.append(text)
            for k, j in enumerate(cols):
                if strict:
                    values[k].append(_parse_number(p, line, names[k], row[j]))
                elif numeric[k]:
                    try:
                        v = float(row[j])
                    except ValueError:
                        numeric[k] = False
                        values[k] = []
                        continue
                    if first_bad[k] is None and not math.isfinite(v):
                        first_bad[k] = (line, row[j].strip())
                    values[k].append(v)
    if not labels:
        raise DataError(f"CSV file '{p}' has a header but no data rows.")
    if not strict:
        for k in range(len(cols)):
            if numeric[k] and first_bad[k] is not None:
                line, text = first_bad[k]
                raise DataError(f"CSV file '{p}', line {line}, column '{names[k]}' holds {text}; "
                                f"features must be finite numbers.")
        keep = [k for k in range(len(cols)) if numeric[k]]
        if not keep:
            raise DataError(f"CSV file '{p}' has no numeric column besides the label "
                            f"'{label}' to use as a feature.")
        names = [names[k] for k in keep]
        values = [values[k] for k in keep]
    x = np.array(values, dtype=np.float64).T.reshape(len(labels), len(names))
    class_names, y = _class_names_and_indices(labels)
    return x, y, tuple(names), class_names


# --- the dataset --------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """Every sample of a dataset, its train/test split and what to call things."""

    name: str  # "tishby" | "pokemon" | "csv"
    x: np.ndarray  # (N, d) float32, every sample, in the dataset's documented order
    y: np.ndarray  # (N,) int64 class indices 0..C-1
    train_idx: np.ndarray  # int64 indices into x / y, sorted
    test_idx: np.ndarray  # int64 indices into x / y, sorted; empty when test_fraction is 0
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    synthetic: bool  # True when the data is a generated stand-in for real data
    description: str  # one line, for run headers and figure titles
    source: str  # file path, or "generated"

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])


def split_indices(n: int, test_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A shuffled train/test split of ``range(n)``: ``round(test_fraction * n)`` go to test.

    Uses ``np.random.default_rng(split_seed).permutation(n)``: the first ``n_test`` shuffled
    indices are the test set. Not stratified. Both returned arrays are sorted int64.
    """
    _check_test_fraction(test_fraction)
    n_test = int(round(test_fraction * n))
    order = np.random.default_rng(split_seed).permutation(n).astype(np.int64)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _check_test_fraction(test_fraction: float) -> None:
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not math.isfinite(test_fraction)
            or not 0.0 <= test_fraction <= MAX_TEST_FRACTION):
        raise ConfigError(f"test_fraction must be a number from 0 to {MAX_TEST_FRACTION}, "
                          f"not {test_fraction!r}.")


def standardize_columns(x: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance columns (population std over all rows); constant ones are only centred."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)


def _check_usable(what: str, y: np.ndarray, class_names: Sequence[str]) -> None:
    """Refuse data too small to split and train on: ``what`` names it ("CSV file 'x.csv'")."""
    if len(y) < MIN_ROWS:
        raise DataError(f"{what} has only {len(y)} rows; at least {MIN_ROWS} are needed.")
    present = np.unique(y)
    if len(present) < 2:
        only = class_names[int(present[0])]
        raise DataError(f"{what} has only one class ('{only}'); at least two are needed.")


def load_dataset(
    name: str,
    *,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    csv_path: str | os.PathLike[str] | None = None,
    features: tuple[str, ...] | None = None,
    label: str | None = None,
    standardize: bool | None = None,
    synthetic_seed: int = 0,
) -> Dataset:
    """Load dataset ``name`` (one of ``DATASETS``) with a seeded train/test split.

    ``csv_path``: for "pokemon", the user's 300k.csv (None: the synthetic stand-in,
    generated with ``synthetic_seed``); for "csv", required. ``features`` and ``label`` apply
    to "csv" only (``label`` required; ``features`` None means every numeric column but the
    label). ``standardize`` None means the dataset's default: False for tishby, True for
    pokemon and csv.
    """
    if name not in DATASETS:
        raise DataError(unknown_name("dataset", name, DATASETS))
    _check_test_fraction(test_fraction)
    if name != "csv" and (features is not None or label is not None):
        raise ConfigError(f"features and label apply only to the csv dataset, not '{name}'.")

    synthetic = False
    if name == "tishby":
        if csv_path is not None:
            raise ConfigError("the tishby dataset is generated and takes no csv_path.")
        bits, y = tishby_patterns()
        x = bits.astype(np.float64)
        feature_names = tuple(f"x{i}" for i in range(TISHBY_BITS))
        class_names = ("0", "1")
        source = "generated"
        description = (f"Tishby 12-bit patterns (var_u, {len(y):,} rows, "
                       f"{int(y.sum()):,} positive)")
        default_standardize = False
    elif name == "pokemon":
        feature_names, class_names = POKEMON_FEATURES, POKEMON_CLASSES
        if csv_path is None:
            x, y = synthetic_pokemon(synthetic_seed)
            synthetic = True
            source = "generated"
            description = f"Pokemon Go sightings (SYNTHETIC stand-in, {len(y):,} rows)"
        else:
            source = str(csv_path)
            x, y = read_pokemon_csv(csv_path)
            _check_usable(f"Pokemon CSV '{source}' (its Diglett, Seel and Tauros rows)", y,
                          class_names)
            description = (f"Pokemon Go sightings ({len(y):,} Diglett/Seel/Tauros rows "
                           f"of {Path(source).name})")
        default_standardize = True
    else:
        if csv_path is None:
            raise ConfigError("the csv dataset needs a csv_path.")
        if label is None:
            raise ConfigError("the csv dataset needs a label column.")
        source = str(csv_path)
        x, y, feature_names, class_names = read_labelled_csv(csv_path, label, features)
        _check_usable(f"CSV file '{source}'", y, class_names)
        description = (f"{Path(source).name} (label '{label}', {len(feature_names)} features, "
                       f"{len(class_names)} classes, {len(y):,} rows)")
        default_standardize = True

    if standardize if standardize is not None else default_standardize:
        x = standardize_columns(x)
    train_idx, test_idx = split_indices(len(y), test_fraction, split_seed)
    return Dataset(
        name=name,
        x=np.ascontiguousarray(x, dtype=np.float32),
        y=np.ascontiguousarray(y, dtype=np.int64),
        train_idx=train_idx,
        test_idx=test_idx,
        feature_names=tuple(feature_names),
        class_names=tuple(class_names),
        synthetic=synthetic,
        description=description,
        source=source,
    )
