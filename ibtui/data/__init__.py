"""Datasets for the information-plane experiments: loading, generating, splitting.

One module per job:

* ``tishby``: the 4096 12-bit patterns of Shwartz-Ziv & Tishby (``var_u``), generated exactly.
* ``pokemon``: Pokemon Go sightings of Diglett, Seel and Tauros: the user's Kaggle
  ``300k.csv``, or a documented synthetic stand-in (marked ``synthetic=True``).
* ``csv``: any CSV with a header row, numeric feature columns and a label column.
* ``idx`` and ``images``: MNIST / Fashion-MNIST from IDX files (a folder or a checked
  download) and scikit-learn's 8x8 digits.
* ``dataset``: the ``Dataset``, splits, standardisation, stratified MI subsets and
  ``load_dataset``, which picks a dataset by name (``DATASETS``).

These modules import only numpy and the standard library (scikit-learn lazily, for digits).
Problems with the user's data raise ``DataError`` and problems with the options
``ConfigError``, each with one sentence; a CSV column left out is named in a ``DataWarning``.
"""

from ibtui.data.csv import DataWarning, class_names_and_indices, read_labelled_csv
from ibtui.data.dataset import (
    DATASETS,
    MAX_TEST_FRACTION,
    MI_SAMPLES_DEFAULT,
    MIN_ROWS,
    RECORDED,
    Dataset,
    dataset_from_config,
    load_dataset,
    split_indices,
    standardize_columns,
    stratified_subset,
    with_label_noise,
)
from ibtui.data.idx import read_idx, write_idx
from ibtui.data.images import IDX_FILES, IDX_SETS, cache_dir, load_digits_set, load_idx_set
from ibtui.data.pokemon import (
    POKEMON_CITIES,
    POKEMON_CLASSES,
    POKEMON_FEATURES,
    POKEMON_ID_COLUMN,
    POKEMON_IDS,
    POKEMON_SYNTHETIC_SIZES,
    City,
    read_pokemon_csv,
    synthetic_pokemon,
)
from ibtui.data.tishby import TISHBY_BITS, TISHBY_POSITIVES, TISHBY_THRESHOLD, _icosahedron_vertices, tishby_patterns

__all__ = [
    "DATASETS",
    "IDX_FILES",
    "IDX_SETS",
    "MAX_TEST_FRACTION",
    "MIN_ROWS",
    "MI_SAMPLES_DEFAULT",
    "POKEMON_CITIES",
    "POKEMON_CLASSES",
    "POKEMON_FEATURES",
    "POKEMON_IDS",
    "POKEMON_ID_COLUMN",
    "POKEMON_SYNTHETIC_SIZES",
    "RECORDED",
    "TISHBY_BITS",
    "TISHBY_POSITIVES",
    "TISHBY_THRESHOLD",
    "City",
    "DataWarning",
    "Dataset",
    "_icosahedron_vertices",
    "cache_dir",
    "class_names_and_indices",
    "dataset_from_config",
    "load_dataset",
    "load_digits_set",
    "load_idx_set",
    "read_idx",
    "read_labelled_csv",
    "read_pokemon_csv",
    "split_indices",
    "standardize_columns",
    "stratified_subset",
    "synthetic_pokemon",
    "tishby_patterns",
    "with_label_noise",
    "write_idx",
]
