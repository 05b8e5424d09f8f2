"""Tests for the IDX reader and the MNIST / Fashion-MNIST loaders, on small generated IDX files."""

from __future__ import annotations

import gzip
import hashlib
import io
import urllib.error

import numpy as np
import pytest

from ibtui import data as D
from ibtui.data import images
from ibtui.data.idx import IMAGES_MAGIC, LABELS_MAGIC
from ibtui.errors import DataError


def make_set(folder, n_train=30, n_test=10, size=5, gz=True, seed=0):
    """A tiny MNIST-shaped set in folder; returns (train_images, train_labels, test_images, test_labels)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8)[::-1].copy(),
    }
    for stem, array in arrays.items():
        D.write_idx(folder / (stem + (".gz" if gz else "")), array)
    return list(arrays.values())


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip_and_header(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    D.write_idx(path, array)
    raw = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3]) and raw[4:8] == (2).to_bytes(4, "big")
    np.testing.assert_array_equal(D.read_idx(path, IMAGES_MAGIC), array)
    floats = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    D.write_idx(tmp_path / "f.idx", floats)
    np.testing.assert_array_equal(D.read_idx(tmp_path / "f.idx"), floats)


def test_idx_wrong_magic_and_sizes_are_one_sentence(tmp_path):
    labels = tmp_path / "labels.idx"
    D.write_idx(labels, np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError, match=r"magic number 0x00000801, not 0x00000803 \(an image file\)"):
        D.read_idx(labels, IMAGES_MAGIC)
    short = tmp_path / "short.idx"
    short.write_bytes(labels.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"holds 12 bytes, but its header \(sizes 5\) says 13"):
        D.read_idx(short, LABELS_MAGIC)
    long = tmp_path / "long.idx"
    long.write_bytes(labels.read_bytes() + b"\0")
    with pytest.raises(DataError, match="says 13"):
        D.read_idx(long, LABELS_MAGIC)
    junk = tmp_path / "junk.idx"
    junk.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DataError, match="not an IDX header"):
        D.read_idx(junk)
    tiny = tmp_path / "tiny.idx"
    tiny.write_bytes(b"\0\0")
    with pytest.raises(DataError, match="too short"):
        D.read_idx(tiny)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(labels.read_bytes())[:-6])
    with pytest.raises(DataError, match="damaged gzip"):
        D.read_idx(broken)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_data_dir_keeps_the_published_split(tmp_path, name, gz):
    tr_x, tr_y, te_x, te_y = make_set(tmp_path / "d", gz=gz)
    ds = D.load_dataset(name, data_dir=tmp_path / "d")
    assert ds.n_samples == 40 and ds.n_features == 25 and ds.image_shape == (1, 5, 5)
    np.testing.assert_array_equal(ds.train_idx, np.arange(30))
    np.testing.assert_array_equal(ds.test_idx, np.arange(30, 40))
    np.testing.assert_allclose(ds.x[:30], tr_x.reshape(30, -1) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x[30:], te_x.reshape(10, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y, np.concatenate([tr_y, te_y]))
    assert ds.n_classes == 10 and ds.x.dtype == np.float32
    assert ("Fashion-MNIST" if name == "fashion-mnist" else "MNIST") in ds.description
    # a subfolder named after the set works too
    make_set(tmp_path / "root" / name, gz=gz)
    assert D.load_dataset(name, data_dir=tmp_path / "root").n_samples == 40


def test_mnist_missing_or_inconsistent_files_are_one_sentence(tmp_path):
    make_set(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"does not hold MNIST's t10k-labels-idx1-ubyte \(gzipped or not\)"):
        D.load_dataset("mnist", data_dir=tmp_path / "d")
    with pytest.raises(DataError, match="is not a folder"):
        D.load_dataset("mnist", data_dir=tmp_path / "nowhere")
    make_set(tmp_path / "e")
    D.write_idx(tmp_path / "e" / "t10k-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8))
    with pytest.raises(DataError, match="test files disagree: 10 images but 9 labels"):
        D.load_dataset("mnist", data_dir=tmp_path / "e")
    make_set(tmp_path / "f")
    D.write_idx(tmp_path / "f" / "train-labels-idx1-ubyte.gz", np.full(30, 12, dtype=np.uint8))
    with pytest.raises(DataError, match="labels hold 12, but the set has 10 classes"):
        D.load_dataset("mnist", data_dir=tmp_path / "f")
    make_set(tmp_path / "g")
    # labels where images belong: the magic number says so
    D.write_idx(tmp_path / "g" / "train-images-idx3-ubyte.gz", np.zeros(30, dtype=np.uint8))
    with pytest.raises(DataError, match="magic number 0x00000801, not 0x00000803"):
        D.load_dataset("mnist", data_dir=tmp_path / "g")


def test_offline_without_files_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("IBTUI_CACHE", str(tmp_path / "cache"))

    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(images.urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as err:
        D.load_dataset("mnist")
    message = str(err.value)
    assert "MNIST is not in" in message and "cannot be downloaded" in message
    assert "Temporary failure in name resolution" in message and "--data-dir FOLDER" in message
    assert "\n" not in message
    assert not list((tmp_path / "cache" / "mnist").glob("*.gz"))


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_checks_digests_and_keeps_only_good_files(tmp_path, monkeypatch):
    monkeypatch.setenv("IBTUI_CACHE", str(tmp_path / "cache"))
    make_set(tmp_path / "server")
    served = {p.name: p.read_bytes() for p in (tmp_path / "server").iterdir()}
    digests = {name: "sha256:" + hashlib.sha256(data).hexdigest() for name, data in served.items()}
    fake = images.IdxSet("MNIST", ("https://example.invalid/",), digests, tuple(str(d) for d in range(10)))
    monkeypatch.setitem(images.IDX_SETS, "mnist", fake)
    urls = []

    def serve(url, timeout=None):
        urls.append(url)
        return FakeResponse(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(images.urllib.request, "urlopen", serve)
    ds = D.load_dataset("mnist")
    assert ds.n_samples == 40 and len(urls) == 4
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(served)
    D.load_dataset("mnist")  # cached: nothing downloaded again
    assert len(urls) == 4
    # a file that does not match its digest is refused and not kept
    (tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    served["t10k-images-idx3-ubyte.gz"] = b"tampered"
    with pytest.raises(DataError, match=r"has sha256 [0-9a-f]{64}, not the published"):
        D.load_dataset("mnist")
    assert not (tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert not list((tmp_path / "cache" / "mnist").glob(".*part"))


def test_the_published_digests_are_well_formed():
    for spec in images.IDX_SETS.values():
        assert sorted(spec.digests) == sorted(stem + ".gz" for stem in images.IDX_FILES.values())
        for digest in spec.digests.values():
            algorithm, _, hexdigest = digest.partition(":")
            assert len(hexdigest) == hashlib.new(algorithm).digest_size * 2
            int(hexdigest, 16)
