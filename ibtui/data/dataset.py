"""A dataset by name: its samples, a seeded train/test split, standardisation, MI subsets.

``load_dataset`` dispatches on the name (``DATASETS``) to the module that knows the data
(tishby, pokemon, csv, images) and returns a ``Dataset``: every sample as float32 rows, the
split, and names for features and classes.

Standardisation (when on) makes every feature zero-mean and unit-variance using statistics over
*all* rows (train and test together), so the inputs do not change with the split; a constant
feature is only centred. Splits are a plain (unstratified) shuffle with
``np.random.default_rng(split_seed)``: ``round(test_fraction * N)`` samples go to the test set,
the rest to training; both index arrays are sorted. MNIST and Fashion-MNIST keep their
published split (60,000 / 10,000) instead; ``test_fraction`` and ``split_seed`` do not apply.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ibtui.data.csv import read_labelled_csv
from ibtui.data.images import IDX_SETS, load_digits_set, load_idx_set
from ibtui.data.pokemon import POKEMON_CLASSES, POKEMON_FEATURES, read_pokemon_csv, synthetic_pokemon
from ibtui.data.tishby import TISHBY_BITS, tishby_patterns
from ibtui.errors import ConfigError, DataError, unknown_name

#: Names load_dataset knows. "recorded" (a run written by ibtui.Recorder from a user's own
#: model and data) is a valid config value but cannot be loaded: its data lives in the script.
DATASETS = ("tishby", "pokemon", "csv", "digits", "mnist", "fashion-mnist")
RECORDED = "recorded"

#: A dataset with fewer rows than this (after filtering) is refused.
MIN_ROWS = 10
#: Largest allowed ``test_fraction``; at least 10 % of the data always trains.
MAX_TEST_FRACTION = 0.9
#: Default largest MI sample set (``DataConfig.mi_samples``): the KDE's work grows as N^2.
MI_SAMPLES_DEFAULT = 10_000


@dataclass(frozen=True)
class Dataset:
    """Every sample of a dataset, its train/test split and what to call things."""

    name: str  # one of DATASETS
    x: np.ndarray  # (N, d) float32, every sample, in the dataset's documented order
    y: np.ndarray  # (N,) int64 class indices 0..C-1
    train_idx: np.ndarray  # int64 indices into x / y, sorted
    test_idx: np.ndarray  # int64 indices into x / y, sorted; empty when test_fraction is 0
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    synthetic: bool  # True when the data is a generated stand-in for real data
    description: str  # one line, for run headers and figure titles
    source: str  # file path, or "generated"
    #: (channels, height, width) of an image set whose rows are flattened images; else None.
    image_shape: tuple[int, ...] | None = None

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


def stratified_subset(labels: Sequence[int] | np.ndarray, n: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``n`` of ``labels``' positions with the classes in proportion.

    ``n`` None, or ``n >= len(labels)``: every index (``arange``), so a set no larger than the
    limit is measured whole. Otherwise class c gets ``floor(n * n_c / N)`` samples and the
    ``n - sum`` left over go, one each, to the classes with the largest remainders (ties to the
    lower class index): the largest-remainder rule, so the subset's class frequencies are the
    set's to within one sample each, and H(Y) barely moves. Within a class the samples are a
    uniform draw without replacement from ``np.random.default_rng(seed)`` (classes drawn in
    ascending order). Deterministic given (labels, n, seed).
    """
    y = np.asarray(labels)
    total = len(y)
    if n is None or n >= total:
        return np.arange(total, dtype=np.int64)
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ConfigError(f"the MI sample count must be a positive whole number, not {n!r}.")
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    exact = counts * (n / total)
    take = np.floor(exact).astype(np.int64)
    left = n - int(take.sum())
    if left:
        order = sorted(range(len(classes)), key=lambda c: (-(exact[c] - take[c]), c))
        for c in order[:left]:
            take[c] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(inverse == c), size=int(take[c]), replace=False)
              for c in range(len(classes)) if take[c]]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


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
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Dataset:
    """Load dataset ``name`` (one of ``DATASETS``) with a seeded train/test split.

    ``csv_path``: for "pokemon", the user's 300k.csv (None: the synthetic stand-in,
    generated with ``synthetic_seed``); for "csv", required. ``features`` and ``label`` apply
    to "csv" only (``label`` required; ``features`` None means every numeric column but the
    label). ``data_dir``: the folder of MNIST's / Fashion-MNIST's IDX files (None: the cache,
    downloaded into when ``download``). ``standardize`` None means the dataset's default: True
    for pokemon and csv, False for tishby (0/1 bits) and the image sets (pixels in [0, 1]).
    """
    if name == RECORDED:
        raise DataError("a recorded run's data lives in the script that recorded it; "
                        "ibtui cannot load it to train or resume.")
    if name not in DATASETS:
        raise DataError(unknown_name("dataset", name, DATASETS))
    _check_test_fraction(test_fraction)
    if name != "csv" and (features is not None or label is not None):
        raise ConfigError(f"features and label apply only to the csv dataset, not '{name}'.")
    if name not in IDX_SETS and data_dir is not None:
        raise ConfigError(f"data_dir applies only to {' and '.join(IDX_SETS)}, not '{name}'.")
    if name not in ("pokemon", "csv") and csv_path is not None:
        generated = "is generated and " if name == "tishby" else ""
        raise ConfigError(f"the {name} dataset {generated}takes no csv_path.")

    synthetic = False
    image_shape = None
    split = None
    if name == "tishby":
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
    elif name == "csv":
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
    elif name == "digits":
        images, y = load_digits_set()
        x = images.reshape(len(y), -1) / 16.0
        image_shape = (1, *images.shape[1:])
        feature_names = tuple(f"px{r}_{c}" for r in range(images.shape[1]) for c in range(images.shape[2]))
        class_names = tuple(str(d) for d in range(10))
        source = "scikit-learn load_digits"
        description = f"8x8 handwritten digits (scikit-learn, {len(y):,} images)"
        default_standardize = False
    else:
        spec = IDX_SETS[name]
        images, y, n_train = load_idx_set(name, data_dir, download=download)
        x = images.reshape(len(y), -1).astype(np.float64) / 255.0
        image_shape = (1, *images.shape[1:])
        feature_names = tuple(f"px{r}_{c}" for r in range(images.shape[1]) for c in range(images.shape[2]))
        class_names = spec.class_names
        source = str(data_dir) if data_dir is not None else "download cache"
        description = (f"{spec.title} ({images.shape[1]}x{images.shape[2]}, {n_train:,} training "
                       f"+ {len(y) - n_train:,} test images)")
        split = (np.arange(n_train, dtype=np.int64), np.arange(n_train, len(y), dtype=np.int64))
        default_standardize = False

    if standardize if standardize is not None else default_standardize:
        x = standardize_columns(x)
    train_idx, test_idx = split if split is not None else split_indices(len(y), test_fraction, split_seed)
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
        image_shape=image_shape,
    )


def with_label_noise(dataset: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """The dataset with ``round(fraction * n_train)`` training labels replaced at random.

    The replaced samples are a uniform draw without replacement from ``train_idx`` and each gets
    a class drawn uniformly from all ``n_classes`` (so about 1/C of them keep their class), both
    from ``np.random.default_rng(seed)``. Test labels are never changed, so test accuracy still
    measures the true task; ``fraction = 1.0`` is the random-label control of Zhang et al. (and
    IDNNs' ``rand_labels``). ``fraction = 0`` returns the dataset itself.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"the label noise must be a fraction from 0 to 1, not {fraction!r}.")
    if fraction == 0:
        return dataset
    rng = np.random.default_rng(seed)
    count = round(fraction * len(dataset.train_idx))
    chosen = rng.choice(dataset.train_idx, size=count, replace=False)
    y = dataset.y.copy()
    y[chosen] = rng.integers(0, dataset.n_classes, size=count)
    return replace(dataset, y=y, description=f"{dataset.description}; {fraction:.0%} of training labels random")


def dataset_from_config(data: Any) -> Dataset:
    """``load_dataset`` with the fields of a ``DataConfig`` (``config.data``), label noise included."""
    dataset = load_dataset(
        data.name,
        test_fraction=data.test_fraction,
        split_seed=data.split_seed,
        csv_path=data.csv,
        features=data.features,
        label=data.label,
        standardize=data.standardize,
        synthetic_seed=data.synthetic_seed,
        data_dir=getattr(data, "data_dir", None),
    )
    return with_label_noise(dataset, getattr(data, "label_noise", 0.0), getattr(data, "label_noise_seed", 0))
