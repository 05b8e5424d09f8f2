"""The 12-bit task of Shwartz-Ziv & Tishby (their ``var_u.mat``), generated exactly.

4096 rows in pattern order: row n is n in binary, most significant bit first. The label rule
(an icosahedral threshold) and the threshold's derivation are in ``tishby_patterns``; docs/design.md
("The datasets") has the column order of the vertices.
"""

from __future__ import annotations

import math

import numpy as np

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


