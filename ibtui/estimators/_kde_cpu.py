"""The KDE's kernel sums on the CPU, as one fused loop compiled by numba.

For one layer, with a_i = t_i * sqrt(c), c = log2(e) / (8 s2), and each bound's factor f (1 for the
lower bound, w = 8; 4 for the upper, w = 2), this computes

    k_ij = 2^max(-f |a_i - a_j|^2, -126)      (exp(-D_ij / (w s2)), D_ij = |t_i - t_j|^2)

and every row's sum of k over all j and over j in i's class (samples sorted by label, so a class
is one contiguous block of columns). Why a compiled loop rather than torch operations: torch
makes about nine passes over every stripe of the N x N matrix (product, clamp, exp2, sums), each a
separate call that writes memory and, in Python threads, takes the GIL. The fused loop reads only
the points' coordinates and keeps the intermediates in registers, and threads scale because it
holds no GIL (figures in docs/performance.md, measured by benchmarks/bench_mi.py).

One bound per loop: for both bounds, each row runs the column loop twice (the squared distances
of the coordinates before the last GROUP are shared). A loop that added each term to two column
accumulators (the lower term and its fourth power) needed more run-time alias checks than LLVM's
vectoriser emits and ran partly scalar; with one accumulator the whole loop vectorises, so the
usual single bound costs about half, and both about what the two-sum loop did.

Symmetry: the kernel is symmetric, so only the pairs j < i are computed. Each term is added to
row i's sum (in registers) and to column j's (float32 accumulators, moved into float64 every
_FLUSH rows); a row's total is its row part + its column part + 1 for j = i (D_ii = 0 exactly
and exp2(0) = 1 exactly). The rows are cut into `tasks(n)` ranges of equal pair counts, fixed
by N alone; each task returns its own row and column sums and the column sums are added in task
order, so any number of threads gives bitwise the same result. Pair (i, j < i) is in i's class
exactly when j >= class start of i, so the other-class and same-class parts of a row are two
column ranges, and the column sums keep the two parts apart the same way.

Numerics, which the tests hold against float64 formulas:

* D_ij is summed from coordinate differences, not from |t_i|^2 + |t_j|^2 - 2 t_i.t_j, so there is
  no cancellation: identical points give exactly D = 0 and a term of exactly 1, and the results
  are 100-1000x closer to float64 than a float32 product would be.
* 2^x is evaluated as 2^n (built from the exponent bits), n = round(x), times a degree-6
  polynomial for 2^f on [-1/2, 1/2] that is exactly 1 at f = 0 (relative error 8e-8 as evaluated
  in float32), so LLVM vectorises the whole loop. Clamping x at -126 keeps every term a normal
  float32.
* A row's terms are added in float32 over runs of at most _CHUNK columns (vectorised, so each
  lane adds a few hundred terms), a column's over at most _FLUSH rows, then in float64, so the
  error does not grow with N.

Loop shapes (numba 0.68, AVX2): loops index 1-D views from zero, since `for j in range(lo, hi)`
was left unvectorised (10x slower).
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
_CHUNK = 2048  # a row's columns added in float32 before the float64 accumulation
_FLUSH = 256  # rows whose terms a column adds in float32 before the float64 accumulation
_TASKS = 16  # row ranges per layer (fixed, so the sums do not depend on the thread count)
# Each bound's factor on the exponent: exp(-D / (w s2)) with w = 8 / f.
FACTORS = {"lower": 1.0, "upper": 4.0}


@njit(inline="always", fastmath=_FAST, boundscheck=False)
def _range_sum(cols, base, point, partial, factor, lo, hi, col):
    """The sum of k_ij over columns j in [lo, hi), in float64, each term also added to col[j];
    `partial` holds the squared distances over the coordinates before `base`, `point` is row i's
    coordinates, `factor` is the bound's f."""
    minus = -factor
    t0, t1, t2, t3 = point[base], point[base + 1], point[base + 2], point[base + 3]
    total = 0.0
    for start in range(lo, hi, _CHUNK):
        stop = min(start + _CHUNK, hi)
        c0, c1, c2, c3 = cols[base][start:stop], cols[base + 1][start:stop], cols[base + 2][start:stop], cols[base + 3][start:stop]
        before = partial[start:stop]
        into = col[start:stop]
        run = np.float32(0.0)
        for j in range(c0.shape[0]):
            d0, d1, d2, d3 = t0 - c0[j], t1 - c1[j], t2 - c2[j], t3 - c3[j]
            squared = before[j] + (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
            k = _exp2(max(minus * squared, _LOWEST))
            into[j] += k
            run += k
        total += run
    return total


@njit(nogil=True, fastmath=_FAST, boundscheck=False, cache=True)
def triangle_sums(cols, block_start, factors, row_lo, row_hi, rows_out, cols_out):
    """The pairs (i, j) with row_lo <= i < row_hi and j < i, for each bound's factor in `factors`
    (float32). rows_out (2 B, row_hi - row_lo) gets, per bound, row i's sum of k_ij over j
    outside i's class, then over j in it; cols_out (2 B, row_hi), zeros on entry, gets column j's
    sums in the same order (over the task's rows i > j). cols is (GROUP * g, N) float32 from
    scaled_columns; block_start[i] is the first column of i's class."""
    width = cols.shape[0]
    last = width - GROUP
    sums = 2 * factors.shape[0]
    partial = np.zeros(max(row_hi, 1), np.float32)
    acc = np.zeros((sums, max(row_hi, 1)), np.float32)
    pending = 0
    for i in range(row_lo, row_hi):
        point = cols[:, i].copy()
        if last > 0:
            # Coordinates beyond the last GROUP: their squared distances, summed in one buffer.
            ahead = partial[:i]
            for j in range(i):
                ahead[j] = np.float32(0.0)
            for k in range(last):
                row = cols[k][:i]
                tk = point[k]
                for j in range(row.shape[0]):
                    diff = tk - row[j]
                    ahead[j] += diff * diff
        a = block_start[i]
        r = i - row_lo
        for b in range(factors.shape[0]):
            rows_out[2 * b, r] = _range_sum(cols, last, point, partial, factors[b], 0, a, acc[2 * b])
            rows_out[2 * b + 1, r] = _range_sum(cols, last, point, partial, factors[b], a, i, acc[2 * b + 1])
        pending += 1
        if pending == _FLUSH or i == row_hi - 1:
            for q in range(sums):
                source, target = acc[q][:i], cols_out[q][:i]
                for j in range(source.shape[0]):
                    target[j] += source[j]
                    source[j] = np.float32(0.0)
            pending = 0


def tasks(n: int) -> list[tuple[int, int]]:
    """Row ranges [lo, hi) of about equal pair counts (i pairs in row i): hi = N sqrt(k / K).
    Fixed by N alone, so that the column sums are added in the same order for any thread count."""
    edges = sorted({round(n * math.sqrt(k / _TASKS)) for k in range(_TASKS + 1)})
    return [(lo, hi) for lo, hi in zip(edges, edges[1:]) if lo < hi]


def task_sums(cols: np.ndarray, block_start: np.ndarray, bounds: tuple[str, ...], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """One task's (rows_out, cols_out) from triangle_sums, for `bounds` ("lower", "upper")."""
    factors = np.array([FACTORS[bound] for bound in bounds], np.float32)
    rows_out = np.empty((2 * len(bounds), hi - lo))
    cols_out = np.zeros((2 * len(bounds), hi))
    triangle_sums(cols, block_start, factors, lo, hi, rows_out, cols_out)
    return rows_out, cols_out


def row_sums(parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """(2 B, N) float64: per bound, every row's sum of k_ij over all j, then over i's class, from
    the task_sums of tasks(n) in task order."""
    rows = np.concatenate([r for r, _ in parts], axis=1)
    for _, columns in parts:
        rows[:, : columns.shape[1]] += columns
    other, same = rows[0::2], rows[1::2]
    in_class = same + 1.0  # + the diagonal term, exactly 1
    out = np.empty_like(rows)
    out[0::2], out[1::2] = other + in_class, in_class
    return out


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
