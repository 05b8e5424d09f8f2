"""The KDE's kernel sums for wide layers: squared distances from one float32 matrix product,
refined exactly where the product's rounding could matter.

With a_i = t_i * sqrt(c), c = log2(e) / (8 s2), the lower bound's kernel is e_ij = 2^-D_ij with
D_ij = |a_i - a_j|^2 (ibtui.estimators._kde_cpu computes D from coordinate differences, d
operations per pair). Here, per block of rows, one BLAS product G = A_block A^T gives

    D~_ij = |a_i|^2 + |a_j|^2 - 2 G_ij,      |D~_ij - D_ij| <= m_ij = kappa (|a_i|^2 + |a_j|^2),

kappa = gamma_d + 4u with u = 2^-24 and gamma_d = d u / (1 - d u), the classic bound on the
rounding of a float32 dot product of length d (any summation order), plus the roundings of the
squared norms and the two additions. Every pair is first summed with D~. A pair is then refined,
its term replaced by one from the exact coordinate differences, when D~_ij - m_ij < REFINE: only
those pairs can carry a term 2^-D large enough for the product's rounding to show. Every pair
left unrefined has D >= REFINE and D~ >= REFINE, so its term is off by at most 2^-REFINE; each row
sum is at least 1 (the pair i = i), so I(X;T) and every class term are off by at most
N 2^-REFINE / ln 2 bits (1e-8 bits at N = 10,000 with REFINE = 40).

The product is computed for the lower triangle only (columns j < i, block by block), and each
pair's terms are added to both its row's and its column's sums, and to the class sums when i and
j share a class (samples are sorted by label, so i's class is the contiguous block
[block_start[i], block_end[i])). Each block's column sums go to a buffer of its own and the blocks
are added in a fixed order, so the result does not depend on the number of threads.

Why: the coordinate-difference kernel does d subtractions and multiply-adds per pair in its own
loop, while BLAS runs the same arithmetic at several times the speed, so a layer 1,024 wide
costs a few times less this way (docs/performance.md). On narrow layers the difference kernel
wins, and on data where most pairs are near each other (every pair refined) it wins too:
`near_fraction` lets the caller choose.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

from ibtui._fastmath import FAST as _FAST, MIN_EXPONENT as _LOWEST, exp2 as _exp2

REFINE = np.float32(40.0)  # pairs that could have D < 40 get their term from exact differences
_UNIT = 2.0**-24
_UPPER_FLOOR = np.float32(2.0**-31.5)  # (2^-31.5)^4 = 2^-126, as the difference kernel
_CHUNK = 2048  # columns added in float32 before the float64 accumulation
BLOCK_ROWS = 256


def kappa(d: int) -> float:
    """The bound's factor: |D~ - D| <= kappa(d) (|a_i|^2 + |a_j|^2), rounded up a little."""
    gamma = d * _UNIT / (1.0 - d * _UNIT)
    return 1.01 * (gamma + 4.0 * _UNIT)


@njit(inline="always", fastmath=_FAST, boundscheck=False)
def _first_pass(g, sq, sq_i, kap, ebuf, slack, col_e, col_u, lo, hi):
    """Terms of columns [lo, hi) from D~: added to the columns' sums (float32) and returned as
    the row's (sum e, sum u) in float64; each term and its slack D~ - m are kept for the refine."""
    sum_e = 0.0
    sum_u = 0.0
    for start in range(lo, hi, _CHUNK):
        stop = min(start + _CHUNK, hi)
        gv, sv, ev, lv, ce, cu = g[start:stop], sq[start:stop], ebuf[start:stop], slack[start:stop], col_e[start:stop], col_u[start:stop]
        run_e = np.float32(0.0)
        run_u = np.float32(0.0)
        for j in range(gv.shape[0]):
            norms = sq_i + sv[j]
            dist = norms - np.float32(2.0) * gv[j]
            lv[j] = dist - kap * norms
            e = _exp2(max(min(-dist, np.float32(0.0)), _LOWEST))
            u = max(e, _UPPER_FLOOR)
            u = u * u
            u = u * u
            ev[j] = e
            ce[j] += e
            cu[j] += u
            run_e += e
            run_u += u
        sum_e += run_e
        sum_u += run_u
    return sum_e, sum_u


@njit(inline="always", fastmath=_FAST, boundscheck=False)
def _add_class(ebuf, col_ce, col_cu, lo, hi):
    """The class columns [lo, hi): their terms (already in ebuf) added to their class sums;
    returns the row's class (sum e, sum u) in float64."""
    sum_e = 0.0
    sum_u = 0.0
    for start in range(lo, hi, _CHUNK):
        stop = min(start + _CHUNK, hi)
        ev, ce, cu = ebuf[start:stop], col_ce[start:stop], col_cu[start:stop]
        run_e = np.float32(0.0)
        run_u = np.float32(0.0)
        for j in range(ev.shape[0]):
            e = ev[j]
            u = max(e, _UPPER_FLOOR)
            u = u * u
            u = u * u
            ce[j] += e
            cu[j] += u
            run_e += e
            run_u += u
        sum_e += run_e
        sum_u += run_u
    return sum_e, sum_u


@njit(inline="always", fastmath=_FAST, boundscheck=False)
def _exact_term(p, q):
    """2^-max(|p - q|^2, ...) from the coordinate differences, as the difference kernel."""
    squared = np.float32(0.0)
    for k in range(p.shape[0]):
        diff = p[k] - q[k]
        squared += diff * diff
    return _exp2(max(-squared, _LOWEST))


@njit(nogil=True, fastmath=_FAST, boundscheck=False, cache=True)
def block_sums(gram, points, sq, kap, r0, block_start, block_end, rows_out, cols_out):
    """Rows i in [r0, r0 + B) against columns j < i, with gram = points[r0:r0+B] @ points[:r0+B].T.

    rows_out (4, B) float64 gets, per row, (sum_j e_ij, sum_j u_ij, the same over j in i's class)
    over j < i plus the pair (i, i); cols_out (4, r0 + B) float32 gets, per column j, the same
    sums of the pairs (i, j) of this block with j < i."""
    n_cols = gram.shape[1]
    ebuf = np.empty(n_cols, np.float32)
    slack = np.empty(n_cols, np.float32)
    for ii in range(gram.shape[0]):
        i = r0 + ii
        g = gram[ii]
        point = points[i]
        sq_i = sq[i]
        a = block_start[i]
        b = min(block_end[i], i)
        row_e, row_u = _first_pass(g, sq, sq_i, kap, ebuf, slack, cols_out[0], cols_out[1], 0, i)
        class_e, class_u = _add_class(ebuf, cols_out[2], cols_out[3], a, b)
        for j in range(i):
            if slack[j] < REFINE:
                e = _exact_term(point, points[j])
                u = max(e, _UPPER_FLOOR)
                u = u * u
                u = u * u
                old_e = ebuf[j]
                old_u = max(old_e, _UPPER_FLOOR)
                old_u = old_u * old_u
                old_u = old_u * old_u
                de = np.float64(e) - np.float64(old_e)
                du = np.float64(u) - np.float64(old_u)
                row_e += de
                row_u += du
                cols_out[0, j] += np.float32(de)
                cols_out[1, j] += np.float32(du)
                if a <= j < b:
                    class_e += de
                    class_u += du
                    cols_out[2, j] += np.float32(de)
                    cols_out[3, j] += np.float32(du)
        rows_out[0, ii] = row_e + 1.0
        rows_out[1, ii] = row_u + 1.0
        rows_out[2, ii] = class_e + 1.0
        rows_out[3, ii] = class_u + 1.0


def scaled_points(t: np.ndarray, noise_variance: float) -> np.ndarray:
    """A layer's (N, d) activations as the product's (N, d) float32 rows: centred, scaled by
    sqrt(log2(e) / (8 s2)), as the difference kernel's columns."""
    t64 = np.asarray(t, dtype=np.float64)
    t64 = t64 - t64.mean(axis=0, keepdims=True)
    return np.ascontiguousarray(t64 * math.sqrt(1.0 / (math.log(2.0) * 8.0 * noise_variance)), dtype=np.float32)


def squared_norms(points: np.ndarray) -> np.ndarray:
    """|a_i|^2 of the float32 rows, summed in float64 and rounded once to float32."""
    return np.einsum("ij,ij->i", points.astype(np.float64), points.astype(np.float64)).astype(np.float32)


def near_fraction(points: np.ndarray, sq: np.ndarray, sample_rows: int = 64) -> float:
    """The fraction of pairs this path would refine, from a few evenly spaced rows against all."""
    n = points.shape[0]
    rows = np.unique(np.linspace(0, n - 1, min(sample_rows, n)).astype(np.int64))
    gram = torch.from_numpy(points[rows]) @ torch.from_numpy(points).T
    norms = sq[rows, None] + sq[None, :]
    slack = norms - 2.0 * gram.numpy() - np.float32(kappa(points.shape[1])) * norms
    return float((slack < REFINE).mean())


def layer_sums(points: np.ndarray, sq: np.ndarray, block_start: np.ndarray, block_end: np.ndarray, run_blocks) -> np.ndarray:
    """(4, N) float64 row sums of one layer (as _kde_cpu.kernel_row_sums' out). `run_blocks` maps
    a function over the list of row blocks and yields the results in order (a thread pool's map,
    or plain map); each call runs one BLAS product with the calling thread's torch threads."""
    n, d = points.shape
    kap = np.float32(kappa(d))
    whole = torch.from_numpy(points)

    def block(r0: int) -> tuple[int, np.ndarray, np.ndarray]:
        r1 = min(r0 + BLOCK_ROWS, n)
        gram = torch.mm(whole[r0:r1], whole[:r1].T).numpy()
        rows_out = np.empty((4, r1 - r0))
        cols_out = np.zeros((4, r1), np.float32)
        block_sums(gram, points, sq, kap, r0, block_start, block_end, rows_out, cols_out)
        return r0, rows_out, cols_out

    out = np.zeros((4, n))
    for r0, rows_out, cols_out in run_blocks(block, range(0, n, BLOCK_ROWS)):
        out[:, r0 : r0 + rows_out.shape[1]] += rows_out
        out[:, : cols_out.shape[1]] += cols_out
    return out
