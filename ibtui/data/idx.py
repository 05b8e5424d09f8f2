"""The IDX file format of MNIST and Fashion-MNIST, read with numpy (gzipped or not).

An IDX file is a 4-byte magic number ``0x00 0x00 T D`` (T the element type, D the number of
dimensions), D big-endian 32-bit sizes, then the elements in C order, big-endian. MNIST's
images are ``0x00000803`` (unsigned bytes, 3 dimensions: count, rows, columns) and its labels
``0x00000801`` (unsigned bytes, 1 dimension). A file whose magic number, type, dimension count
or length disagrees with what is expected is refused with one sentence (a DataError) before
any array is built from it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ibtui.errors import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

#: Element types of the IDX format: type byte -> big-endian numpy dtype.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, un-gzipped when it starts with gzip's magic (whatever its name)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"IDX file '{p}' cannot be read ({exc.strerror or exc}).") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"IDX file '{p}' is a damaged gzip file ({exc}).") from None
    return raw


def read_idx(path: str | os.PathLike[str], magic: int | None = None) -> np.ndarray:
    """The array stored in an IDX file, in native byte order.

    ``magic`` (e.g. ``IMAGES_MAGIC``) is the expected 32-bit magic number; None accepts any
    valid one. Raises DataError for a wrong magic number, an unknown element type, or a file
    whose length is not exactly header + prod(sizes) * element size.
    """
    p = Path(path)
    data = read_idx_bytes(p)
    if len(data) < 4:
        raise DataError(f"IDX file '{p}' is too short ({len(data)} bytes) to hold an IDX header.")
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        raise DataError(f"IDX file '{p}' has magic number 0x{found:08x}, not 0x{magic:08x} "
                        f"({_what(magic)}); is it the right file?")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES or data[3] == 0:
        raise DataError(f"IDX file '{p}' has magic number 0x{found:08x}, which is not an IDX header.")
    dtype = IDX_TYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"IDX file '{p}' ends inside its header ({len(data)} of {header} bytes).")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"IDX file '{p}' holds {len(data):,} bytes, but its header "
                        f"(sizes {' x '.join(map(str, shape))}) says {expected:,}.")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _what(magic: int) -> str:
    return {IMAGES_MAGIC: "an image file", LABELS_MAGIC: "a label file"}.get(magic, "IDX")


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` (a dtype of ``IDX_TYPES``) as an IDX file; gzipped when ``compress``
    (None: when the name ends in .gz). For tests and for users who make their own sets."""
    p = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"an IDX file cannot hold {array.dtype} values.")
    head = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = head + array.astype(IDX_TYPES[code], copy=False).tobytes()
    if compress if compress is not None else p.name.endswith(".gz"):
        body = gzip.compress(body)
    p.write_bytes(body)
