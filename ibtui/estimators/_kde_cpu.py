"""The KDE's kernel sums on the CPU, as one fused loop compiled by numba.

For the rows i of one layer, with a_i = t_i * sqrt(c) and c = log2(e) / (8 s2), this computes

    e_ij = 2^max(-|a_i - a_j|^2, -126)      (the lower bound's kernel, exp(-D_ij / (8 s2)))
    u_ij = max(e_ij, 2^-31.5)^4              (the upper bound's, exp(-D_ij / (2 s2)))

and sums both over all j and over j in i's class (samples sorted by label, so a class is one
contiguous block of columns). Why a compiled loop rather than torch operations: torch makes about
nine passes over every stripe of the N x N matrix (product, clamp, exp2, squarings, sums), each
a separate call that writes memory and, in Python threads, takes the GIL. The fused loop reads
only the points' coordinates and keeps every intermediate in registers, and threads scale fully
because it holds no GIL (figures in docs/performance.md, measured by benchmarks/bench_mi.py).

Numerics, which the tests hold against float64 formulas:

* D_ij is summed from coordinate differences, not from |t_i|^2 + |t_j|^2 - 2 t_i.t_j, so there is
  no cancellation: identical points give exactly D = 0 and a term of exactly 1, and the results
  are 100-1000x closer to float64 than the torch path's (1e-8 bits against 1e-6 to 2e-5).
* 2^x is evaluated as 2^n (built from the exponent bits), n = round(x), times a degree-6
  polynomial for 2^f on [-1/2, 1/2] that is exactly 1 at f = 0 (relative error 8e-8 as evaluated
  in float32), so LLVM vectorises the whole loop. Clamping x at -126 keeps every term a normal
  float32.
* Terms are added in float32 over runs of at most _CHUNK columns (vectorised, so each lane adds a
  few hundred terms) and the runs in float64, so the error does not grow with N.

Every row's sums are computed over the full row (not the lower triangle and its mirror), which
costs twice the pairs but writes no column sums, so rows are independent: any split of the rows
over threads gives bitwise the same result.

The loops index 1-D views from zero: with numba 0.68, `for j in range(lo, hi)` was left
unvectorised (10x slower, measured), while `view = row[lo:hi]; for j in range(view.shape[0])`
vectorises.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ibtui._fastmath import FAST as _FAST, MIN_EXPONENT as _LOWEST, exp2 as _exp2

# Coordinates in the fused loop; those before them are summed into a buffer first, one pass each.
# Measured on the 6-layer benchmark (widths 10 to 2): 4 is 10-15 % faster than 8, whose zero
# padding of the narrow layers costs more than the buffer passes of the wide ones.
GROUP = 4
_CHUNK = 2048  # columns added in float32 before the float64 accumulation
_UPPER_FLOOR = np.float32(2.0**-31.5)  # (2^-31.5)^4 = 2^-126
@njit(inline="always", fastmath=_FAST, boundscheck=False)
def _range_sums(cols, base, point, partial, lo, hi):
    """(sum of e_ij, sum of u_ij) over columns j in [lo, hi), in float64; `partial` holds the
    squared distances over the coordinates before `base`, `point` is row i's coordinates."""
    t0, t1, t2, t3 = point[base], point[base + 1], point[base + 2], point[base + 3]
    sum_e = 0.0
    sum_u = 0.0
    for start in range(lo, hi, _CHUNK):
        stop = min(start + _CHUNK, hi)
        c0, c1, c2, c3 = cols[base][start:stop], cols[base + 1][start:stop], cols[base + 2][start:stop], cols[base + 3][start:stop]
        before = partial[start:stop]
        run_e = np.float32(0.0)
        run_u = np.float32(0.0)
        for j in range(c0.shape[0]):
            d0, d1, d2, d3 = t0 - c0[j], t1 - c1[j], t2 - c2[j], t3 - c3[j]
            squared = before[j] + (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
            e = _exp2(max(-squared, _LOWEST))
            u = max(e, _UPPER_FLOOR)
            u = u * u
            run_e += e
            run_u += u * u
        sum_e += run_e
        sum_u += run_u
    return sum_e, sum_u


@njit(nogil=True, fastmath=_FAST, boundscheck=False, cache=True)
def kernel_row_sums(cols, block_start, block_end, row_lo, row_hi, out):
    """For rows i in [row_lo, row_hi): out[:, i] = (sum_j e_ij, sum_j u_ij, the same two over j in
    [block_start[i], block_end[i])). cols is (GROUP * g, N) float32, already scaled by sqrt(c)."""
    width, n = cols.shape
    last = width - GROUP
    partial = np.zeros(n, np.float32)
    for i in range(row_lo, row_hi):
        point = cols[:, i].copy()
        if last > 0:
            # Coordinates beyond the last GROUP: their squared distances, summed in one buffer.
            for j in range(n):
                partial[j] = np.float32(0.0)
            for k in range(last):
                row = cols[k]
                tk = point[k]
                for j in range(n):
                    diff = tk - row[j]
                    partial[j] += diff * diff
        a, b = block_start[i], block_end[i]
        before_e, before_u = _range_sums(cols, last, point, partial, 0, a)
        class_e, class_u = _range_sums(cols, last, point, partial, a, b)
        after_e, after_u = _range_sums(cols, last, point, partial, b, n)
        out[0, i] = before_e + class_e + after_e
        out[1, i] = before_u + class_u + after_u
        out[2, i] = class_e
        out[3, i] = class_u


def scaled_columns(t: np.ndarray, noise_variance: float) -> np.ndarray:
    """A layer's (N, d) activations as the kernel's (GROUP * ceil(d / GROUP), N) float32 input:
    centred (KDE is shift invariant; smaller values round less), scaled by sqrt(log2(e) / (8 s2)),
    zero rows as padding to a multiple of GROUP."""
    t64 = np.asarray(t, dtype=np.float64)
    t64 = t64 - t64.mean(axis=0, keepdims=True)
    n, d = t64.shape
    cols = np.zeros((GROUP * -(-d // GROUP), n), dtype=np.float32)
    cols[:d] = (t64 * math.sqrt(1.0 / (math.log(2.0) * 8.0 * noise_variance))).T
    return cols
