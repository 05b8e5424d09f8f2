"""Real image sets: MNIST and Fashion-MNIST from IDX files, scikit-learn's 8x8 digits.

* ``mnist`` / ``fashion-mnist``: the four standard IDX files (gzipped or not) found in
  ``data_dir`` (or its ``mnist/`` / ``fashion-mnist/`` subfolder); without ``data_dir``, in the
  cache folder (``$IBTUI_CACHE``, else ``$XDG_CACHE_HOME/ibtui``, else ``~/.cache/ibtui``),
  downloaded there once when missing, each file checked against its published digest before
  it is kept. Offline and absent: one sentence saying where to put the files. Rows: the
  60,000 training images, then the 10,000 test images; the split is the published one.
* ``digits``: ``sklearn.datasets.load_digits`` (1,797 8x8 images, bundled with scikit-learn,
  so it works offline); scikit-learn is the optional extra ``ibtui[datasets]``.

Pixels are scaled to [0, 1] (MNIST / 255 as in ibsgd's ``get_mnist``, digits / 16) and
flattened row by row; ``image_shape`` keeps (channels, height, width) for models that want
images back. The loaders return uint8/float arrays and know nothing of splits or configs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ibtui.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from ibtui.errors import DataError

DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class IdxSet:
    """Where one IDX image set comes from and how to check it."""

    title: str
    urls: tuple[str, ...]  # base URLs (mirrors), tried in order
    digests: dict[str, str]  # gzipped file name -> "algorithm:hex digest" as published
    class_names: tuple[str, ...]


#: The four files of each set, by role.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

IDX_SETS = {
    "mnist": IdxSet(
        title="MNIST",
        urls=("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        digests={
            "train-images-idx3-ubyte.gz": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        class_names=tuple(str(d) for d in range(10)),
    ),
    # Zalando publishes MD5 digests of these files (the ones torchvision checks too).
    "fashion-mnist": IdxSet(
        title="Fashion-MNIST",
        urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        digests={
            "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
        },
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"),
    ),
}


def cache_dir() -> Path:
    """Where downloaded sets are kept: $IBTUI_CACHE, $XDG_CACHE_HOME/ibtui or ~/.cache/ibtui."""
    if os.environ.get("IBTUI_CACHE"):
        return Path(os.environ["IBTUI_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ibtui"


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_idx_files(name: str, folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The files of set ``name`` in ``folder`` or ``folder/name``: (role -> path, missing names)."""
    for candidate in (folder / name, folder):
        found = {role: _find(candidate, stem) for role, stem in IDX_FILES.items()}
        if all(found.values()):
            return found, []  # type: ignore[return-value]
    found = {role: _find(folder, stem) for role, stem in IDX_FILES.items()}
    return {r: p for r, p in found.items() if p}, [IDX_FILES[r] for r, p in found.items() if p is None]


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_set(name: str, folder: Path) -> None:
    """Download the missing gzipped files of ``name`` into ``folder``, each kept only when its
    digest matches; DataError (one sentence) when offline or a file does not match."""
    spec = IDX_SETS[name]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the cache folder {folder} for {spec.title} ({exc.strerror or exc}).") from None
    for filename, expected in spec.digests.items():
        target = folder / filename
        if target.is_file():
            continue
        algorithm, _, want = expected.partition(":")
        errors = []
        for base in spec.urls:
            try:
                _fetch(base + filename, target, algorithm, want)
                break
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                errors.append(getattr(exc, "reason", None) or exc)
        else:
            raise DataError(
                f"{spec.title} is not in {folder} and cannot be downloaded ({errors[0]}); put its four "
                f"IDX files ({', '.join(IDX_FILES.values())}, gzipped or not) in a folder and pass "
                f"--data-dir FOLDER.")


def _fetch(url: str, target: Path, algorithm: str, want: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        digest = hashlib.new(algorithm)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != want:
            raise DataError(f"the download of {url} has {algorithm} {digest.hexdigest()}, not the published "
                            f"{want}; it was not kept (a broken mirror or proxy?).")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_idx_set(name: str, data_dir: str | os.PathLike[str] | None = None,
                 download: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """``(images, labels, n_train)`` of ``mnist`` or ``fashion-mnist``: images (N, rows, cols)
    uint8, labels (N,) int64, the first ``n_train`` rows the published training set.

    With ``data_dir`` the files must be there (nothing is downloaded); without it they come
    from ``cache_dir()/name``, downloaded when missing and ``download`` is true.
    """
    spec = IDX_SETS[name]
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise DataError(f"--data-dir {folder} is not a folder.")
        files, missing = find_idx_files(name, folder)
        if missing:
            raise DataError(f"{folder} does not hold {spec.title}'s {', '.join(missing)} "
                            f"(gzipped or not).")
    else:
        folder = cache_dir() / name
        files, missing = find_idx_files(name, folder)
        if missing:
            if not download:
                raise DataError(f"{spec.title} is not in {folder}; pass --data-dir FOLDER with its IDX files.")
            download_set(name, folder)
            files, missing = find_idx_files(name, folder)
    parts = {}
    for role, path in files.items():
        parts[role] = read_idx(path, IMAGES_MAGIC if role.endswith("images") else LABELS_MAGIC)
    for split in ("train", "test"):
        images, labels = parts[f"{split}_images"], parts[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{spec.title}'s {split} files disagree: {len(images):,} images but "
                            f"{len(labels):,} labels.")
        if labels.size and int(labels.max()) >= len(spec.class_names):
            raise DataError(f"{spec.title}'s {split} labels hold {int(labels.max())}, but the set has "
                            f"{len(spec.class_names)} classes.")
    if parts["train_images"].shape[1:] != parts["test_images"].shape[1:]:
        raise DataError(f"{spec.title}'s training and test images differ in size "
                        f"({parts['train_images'].shape[1:]} and {parts['test_images'].shape[1:]}).")
    images = np.concatenate([parts["train_images"], parts["test_images"]])
    labels = np.concatenate([parts["train_labels"], parts["test_labels"]]).astype(np.int64)
    return images, labels, len(parts["train_labels"])


def load_digits_set() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: images (1797, 8, 8) float64 in 0..16, labels (1797,) int64."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits dataset needs scikit-learn; install it with "
                        "pip install 'ibtui[datasets]' (or pip install scikit-learn).") from None
    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
