"""Pokemon Go sightings of Diglett, Seel and Tauros: Kaggle's "Predict'em All" CSV or a stand-in.

``read_pokemon_csv`` reads the user's copy of ``300k.csv`` (streamed, only the wanted rows
parsed); ``synthetic_pokemon`` generates a documented, seeded stand-in with the same features
(longitude, latitude, temperature, pressure) and classes when the file is absent.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ibtui.data.csv import ReadGuard, column_index, column_lookup, open_csv, parse_number, read_header
from ibtui.errors import DataError

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
    with open_csv(p) as f, ReadGuard(p):
        reader = csv.reader(_prefiltered_lines(f, state, frozenset(wanted)))
        header = read_header(p, reader)
        lookup = column_lookup(header)
        id_col = column_index(p, lookup, POKEMON_ID_COLUMN)
        cols = [column_index(p, lookup, name) for name in POKEMON_FEATURES]
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
            rows.append(tuple(parse_number(p, state.lineno, name, row[c])
                              for name, c in zip(POKEMON_FEATURES, cols)))
            labels.append(label)
    x = np.array(rows, dtype=np.float64).reshape(len(rows), len(POKEMON_FEATURES))
    return x, np.array(labels, dtype=np.int64)
