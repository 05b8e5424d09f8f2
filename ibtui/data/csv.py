"""Labelled CSV files: a header row, numeric feature columns and a label column.

``read_labelled_csv`` is the generic reader behind the ``csv`` dataset; the helpers above it
(opening, the header, column lookup, number parsing) are shared with the Pokemon reader. Rows
are parsed by the standard library's ``csv`` module; each header is looked up through one dict
built once, so a file with a million columns costs linear time. Duplicate column names are
refused (which of two ``y`` columns would be the label is a guess), and a feature column left
out because it holds a non-number is named in a ``DataWarning`` (shown on stderr).
"""

from __future__ import annotations

import csv
import difflib
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ibtui.errors import ConfigError, DataError

#: Columns named in a warning about dropped feature columns before "and N more".
SHOWN_COLUMNS = 10
#: Above this many columns a missing-column message does not search for a close name.
SUGGEST_MAX_COLUMNS = 2000


class DataWarning(UserWarning):
    """Something in the user's data was left out or changed; the run goes on."""


def open_csv(path: str | os.PathLike[str]):
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


class ReadGuard:
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


def read_header(path: Path, reader: Iterator[list[str]]) -> list[str]:
    """The stripped column names of the first row; empty or duplicated names are refused
    (an unnamed column is allowed, and ignored, as an index column often is)."""
    header = next(reader, None)
    if header is None:
        raise DataError(f"CSV file '{path}' is empty.")
    header = [name.strip() for name in header]
    if not any(header):
        raise DataError(f"CSV file '{path}' has no header row with column names.")
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if not name:
            continue
        if name in seen:
            raise DataError(f"CSV file '{path}' has two columns named '{name}' (columns {seen[name] + 1} "
                            f"and {j + 1}); column names must be unique.")
        seen[name] = j
    return header


def column_lookup(header: Sequence[str]) -> dict[str, int]:
    """Column name -> index, for the named columns of a header read by ``read_header``."""
    return {name: j for j, name in enumerate(header) if name}


def column_index(path: Path, lookup: dict[str, int], name: str) -> int:
    """The index of column ``name``; DataError naming the known columns (or a close one)."""
    j = lookup.get(name)
    if j is not None:
        return j
    if len(lookup) > SUGGEST_MAX_COLUMNS:
        raise DataError(f"CSV file '{path}' has no column '{name}' (it has {len(lookup):,} named columns).")
    close = difflib.get_close_matches(name, list(lookup), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    known = sorted(lookup)
    shown = ", ".join(known[:50]) + (f", ... ({len(known) - 50} more)" if len(known) > 50 else "")
    raise DataError(f"CSV file '{path}': unknown column '{name}'{hint} (known: {shown}).")


def parse_number(path: Path, line: int, column: str, text: str) -> float:
    """``float(text)``, or DataError naming the file, line and column of a non-number or a
    non-finite value."""
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


def class_names_and_indices(values: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
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
    None it is every named column, other than ``label``, whose every value is a number (the
    columns left out for a non-number are named in one ``DataWarning``). ``y`` holds indices
    into ``class_names`` (see ``class_names_and_indices``). Blank lines are skipped. Does not
    enforce ``MIN_ROWS`` or two classes (``load_dataset`` does).
    """
    p = Path(path)
    with open_csv(p) as f, ReadGuard(p):
        reader = csv.reader(f)
        header = read_header(p, reader)
        lookup = column_lookup(header)
        label_col = column_index(p, lookup, label)
        if features is not None:
            features = tuple(features)
            if not features:
                raise ConfigError("the csv dataset needs at least one feature column.")
            counts: dict[str, int] = {}
            for name in features:
                counts[name] = counts.get(name, 0) + 1
            dupes = sorted(name for name, count in counts.items() if count > 1)
            if dupes:
                raise ConfigError(f"feature column '{dupes[0]}' is listed more than once.")
            if label in counts:
                raise ConfigError(f"column '{label}' cannot be both a feature and the label.")
            cols = [column_index(p, lookup, name) for name in features]
        else:
            cols = [j for j in lookup.values() if j != label_col]
        names = [header[j] for j in cols]
        strict = features is not None
        values: list[list[float]] = [[] for _ in cols]
        numeric = [True] * len(cols)
        first_bad: list[tuple[int, str] | None] = [None] * len(cols)  # first non-finite value
        dropped: list[tuple[int, int, str]] = []  # (column k, line, text) of the first non-number
        labels: list[str] = []
        n_fields = len(header)
        for row in reader:
            if not row or not any(field.strip() for field in row):
                continue
            line = reader.line_num
            if len(row) != n_fields:
                raise DataError(f"CSV file '{p}', line {line} has {len(row)} fields "
                                f"but the header has {n_fields}.")
            text = row[label_col].strip()
            if not text:
                raise DataError(f"CSV file '{p}', line {line} has an empty label "
                                f"in column '{label}'.")
            labels.append(text)
            for k, j in enumerate(cols):
                if strict:
                    values[k].append(parse_number(p, line, names[k], row[j]))
                elif numeric[k]:
                    try:
                        v = float(row[j])
                    except ValueError:
                        numeric[k] = False
                        values[k] = []
                        dropped.append((k, line, row[j].strip()))
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
        if dropped:
            warnings.warn(_dropped_message(p, [(names[k], line, text) for k, line, text in dropped]),
                          DataWarning, stacklevel=2)
        names = [names[k] for k in keep]
        values = [values[k] for k in keep]
    x = np.array(values, dtype=np.float64).T.reshape(len(labels), len(names))
    class_names, y = class_names_and_indices(labels)
    return x, y, tuple(names), class_names


def _dropped_message(path: Path, dropped: list[tuple[str, int, str]]) -> str:
    """One sentence naming the feature columns left out and the first non-number of each."""
    shown = "; ".join(f"'{name}' (line {line} holds "
                      f"{repr(text) if text else 'an empty value'})" for name, line, text in dropped[:SHOWN_COLUMNS])
    more = f"; and {len(dropped) - SHOWN_COLUMNS} more" if len(dropped) > SHOWN_COLUMNS else ""
    which = "column is" if len(dropped) == 1 else f"{len(dropped)} columns are"
    return (f"CSV file '{path}': this {which} not used as a feature because it holds a value "
            f"that is not a number: {shown}{more}.")
