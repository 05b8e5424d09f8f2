"""The KDE's kernel sums from a float32 matrix product of (projected) points, refined exactly where
the product could be wrong by more than it may.

With a_i = t_i * sqrt(c), c = log2(e) / (8 s2), the lower bound's kernel is e_ij = 2^-D_ij with
D_ij = |a_i - a_j|^2 (ibtui.estimators._kde_cpu computes D from coordinate differences, d
operations per pair). Here a layer wider than PROJECTED is first projected onto an orthonormal
basis Q of PROJECTED directions that carry most of its variance (a randomised range finder), p_i =
Q^T a_i, with r_i = sqrt(|a_i|^2 - |p_i|^2) the length of what the projection leaves out. Since
|a_i - a_j|^2 = |p_i - p_j|^2 + |(a_i - p_i) - (a_j - p_j)|^2,

    L_ij = |p_i - p_j|^2 + (r_i - r_j)^2 <= D_ij                      (exactly, for any basis),

and for narrower layers p = a, r = 0, L = D. Per block of rows, one BLAS product G = P_block P^T
gives L~_ij = |p_i|^2 + |p_j|^2 - 2 G_ij + (r_i - r_j)^2 with

    L~_ij - L_ij <= m_ij = kappa (|a_i|^2 + |a_j|^2),      kappa = 1.05 (gamma_k + 12 u),

u = 2^-24, gamma_k = k u / (1 - k u) the classic bound on a float32 dot product of length k (any
summation order), the rest for the roundings of the projection, the norms and the additions. Every
pair is first summed with the term 2^-L~. A pair is then refined, its term replaced by one from
the exact coordinate differences of a_i and a_j as in the difference kernel, when
L~_ij - m_ij < REFINE. Every pair left unrefined has D >= L >= REFINE and L~ >= REFINE, so its
term is off by at most 2^-REFINE; each row sum is at least 1 (the pair i = i), so I(X;T) and every
class term are off by at most N 2^-REFINE / ln 2 bits (1e-8 bits at N = 10,000, REFINE = 40).
How well the basis fits the data only decides how many pairs are refined, never the result's
accuracy.

The product is computed for the lower triangle only (columns j < i, block by block), and each
pair's terms are added to both its row's and its column's sums, and to the class sums when i and
j share a class (samples are sorted by label, so i's class is the contiguous block
[block_start[i], block_end[i])). Each block's column sums go to a buffer of its own and the blocks
are added in a fixed order, and every product runs on one thread, so the result does not depend
on the number of threads.

Why: pairs of a trained layer are mostly far apart at the noise variances in use, and then a
k-wide product and a check per pair replace d subtractions and multiply-adds per pair. Where
most pairs are near (a saturated or collapsed layer), every pair is refined and the difference
kernel is faster: `candidate_fraction` lets the caller choose (figures in docs/performance.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from ibtui._fastmath import FAST as _FAST, MIN_EXPONENT as _LOWEST, exp2 as _exp2

REFINE = np.float32(40.0)  # pairs that could have D < 40 get their term from exact differences
PROJECTED = 32  # wider layers are filtered in a projection onto this many directions
_UNIT = 2.0**-24
_UPPER_FLOOR = np.float32(2.0**-31.5)  # (2^-31.5)^4 = 2^-126, as the difference kernel
_CHUNK = 2048  # columns added in float32 before the float64 accumulation
BLOCK_ROWS = 256
_SEED = 0  # the range finder's random directions: fixed, so an estimate repeats


def kappa(k: int) -> float:
    """The bound's factor for a product of length k: L~ - L <= kappa(k) (|a_i|^2 + |a_j|^2)."""
    gamma = k * _UNIT / (1.0 - k * _UNIT)
    return 1.05 * (gamma + 12.0 * _UNIT)


@dataclass(frozen=True)
class Points:
    """One layer, ready for the kernel: the scaled points a (N, d) for the refine, their
    projections p (N, k), |p_i|^2, the residual lengths r, |a_i|^2 (all float32) and kappa(k)."""

    full: np.ndarray
    projected: np.ndarray
    projected_sq: np.ndarray
    residual: np.ndarray
    sq: np.ndarray
    kap: np.float32


def prepare(t: np.ndarray, noise_variance: float) -> Points:
    """A layer's (N, d) activations (sorted by label) as Points: centred (KDE is shift invariant;
    smaller values round less) and scaled by sqrt(log2(e) / (8 s2)), as the difference kernel.
    Uses torch's threads of the calling thread; with one thread the result repeats bitwise."""
    t64 = np.asarray(t, dtype=np.float64)
    t64 = t64 - t64.mean(axis=0, keepdims=True)
    full = np.ascontiguousarray(t64 * math.sqrt(1.0 / (math.log(2.0) * 8.0 * noise_variance)), dtype=np.float32)
    a64 = torch.from_numpy(full).to(torch.float64)
    sq64 = (a64 * a64).sum(dim=1)
    if full.shape[1] > PROJECTED:
        p64 = a64 @ _basis(torch.from_numpy(full), PROJECTED)
        residual = (sq64 - (p64 * p64).sum(dim=1)).clamp(min=0.0).sqrt()
    else:
        p64, residual = a64, torch.zeros_like(sq64)
    projected = p64.to(torch.float32)
    projected_sq = (projected.to(torch.float64) ** 2).sum(dim=1)
    return Points(full, projected.numpy(), projected_sq.to(torch.float32).numpy(), residual.to(torch.float32).numpy(),
                  sq64.to(torch.float32).numpy(), np.float32(kappa(projected.shape[1])))


def _basis(a: torch.Tensor, k: int) -> torch.Tensor:
    """A (d, k) float64 matrix with orthonormal columns spanning about the top k right singular
    directions of a (Halko, Martinsson & Tropp 2011: random directions, one power iteration)."""
    gen = torch.Generator().manual_seed(_SEED)
    omega = torch.randn(a.shape[1], k, generator=gen, dtype=torch.float32)
    z = a.T @ (a @ omega)
    q = torch.linalg.qr(z.to(torch.float64)).Q
    z = a.T @ (a @ q.to(torch.float32))
    return torch.linalg.qr(z.to(torch.float64)).Q


@njit(inline="always", fastmath=_FAST, boundscheck=False)
def _upper(e):
    """The upper bound's term from the lower bound's: max(e, 2^-31.5)^4 (as the difference kernel)."""
    u = max(e, _UPPER_FLOOR)
    u = u * u
    return u * u


@njit(inline="always", fastmath=_FAST, boundscheck=False)
def _first_pass(g, psq, res, sq, psq_i, res_i, sq_i, kap, ebuf, slack, cols, in_class, lo, hi):
    """Terms of columns [lo, hi) from L~: added to the columns' sums in cols (float32; and to
    their class sums when `in_class`, the columns being of row i's class) and returned as the
    row's (sum e, sum u) in float64; each term and its slack L~ - m are kept for the refine."""
    sum_e = 0.0
    sum_u = 0.0
    for start in range(lo, hi, _CHUNK):
        stop = min(start + _CHUNK, hi)
        gv, pv, rv, sv = g[start:stop], psq[start:stop], res[start:stop], sq[start:stop]
        ev, lv = ebuf[start:stop], slack[start:stop]
        ce, cu, cce, ccu = cols[0, start:stop], cols[1, start:stop], cols[2, start:stop], cols[3, start:stop]
        run_e = np.float32(0.0)
        run_u = np.float32(0.0)
        for j in range(gv.shape[0]):
            dr = res_i - rv[j]
            dist = (psq_i + pv[j]) - np.float32(2.0) * gv[j] + dr * dr
            lv[j] = dist - kap * (sq_i + sv[j])
            e = _exp2(max(min(-dist, np.float32(0.0)), _LOWEST))
            u = _upper(e)
            ev[j] = e
            ce[j] += e
            cu[j] += u
            if in_class:
                cce[j] += e
                ccu[j] += u
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
def block_sums(gram, full, psq, res, sq, kap, r0, block_start, block_end, rows_out, cols_out):
    """Rows i in [r0, r0 + B) against columns j < i, with gram = p[r0:r0+B] @ p[:r0+B].T.

    rows_out (4, B) float64 gets, per row, (sum_j e_ij, sum_j u_ij, the same over j in i's class)
    over j < i plus the pair (i, i); cols_out (4, r0 + B) float32 gets, per column j, the same
    sums of the pairs (i, j) of this block with j < i."""
    n_cols = gram.shape[1]
    ebuf = np.empty(n_cols, np.float32)
    slack = np.empty(n_cols, np.float32)
    for ii in range(gram.shape[0]):
        i = r0 + ii
        g = gram[ii]
        point = full[i]
        a = block_start[i]
        b = min(block_end[i], i)
        other_e, other_u = _first_pass(g, psq, res, sq, psq[i], res[i], sq[i], kap, ebuf, slack, cols_out, False, 0, a)
        class_e, class_u = _first_pass(g, psq, res, sq, psq[i], res[i], sq[i], kap, ebuf, slack, cols_out, True, a, b)
        row_e = other_e + class_e
        row_u = other_u + class_u
        for j in range(i):
            if slack[j] < REFINE:
                e = _exact_term(point, full[j])
                u = _upper(e)
                old_e = ebuf[j]
                old_u = _upper(old_e)
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


def candidate_fraction(points: Points, sample_rows: int = 64) -> float:
    """The fraction of pairs the refine would visit, from a few evenly spaced rows against all."""
    n = points.full.shape[0]
    rows = np.unique(np.linspace(0, n - 1, min(sample_rows, n)).astype(np.int64))
    gram = (torch.from_numpy(points.projected[rows]) @ torch.from_numpy(points.projected).T).numpy()
    dr = points.residual[rows, None] - points.residual[None, :]
    dist = points.projected_sq[rows, None] + points.projected_sq[None, :] - np.float32(2.0) * gram + dr * dr
    slack = dist - points.kap * (points.sq[rows, None] + points.sq[None, :])
    return float((slack < REFINE).mean())


def layer_sums(points: Points, block_start: np.ndarray, block_end: np.ndarray, run_blocks) -> np.ndarray:
    """(4, N) float64 row sums of one layer (as _kde_cpu.row_sums). `run_blocks` maps
    a function over the list of row blocks and yields the results in order (a thread pool's map,
    or plain map); each call runs one BLAS product with the calling thread's torch threads."""
    n = points.full.shape[0]
    whole = torch.from_numpy(points.projected)

    def block(r0: int) -> tuple[int, np.ndarray, np.ndarray]:
        r1 = min(r0 + BLOCK_ROWS, n)
        gram = torch.mm(whole[r0:r1], whole[:r1].T).numpy()
        rows_out = np.empty((4, r1 - r0))
        cols_out = np.zeros((4, r1), np.float32)
        block_sums(gram, points.full, points.projected_sq, points.residual, points.sq, points.kap, r0,
                   block_start, block_end, rows_out, cols_out)
        return r0, rows_out, cols_out

    out = np.zeros((4, n))
    for r0, rows_out, cols_out in run_blocks(block, range(0, n, BLOCK_ROWS)):
        out[:, r0 : r0 + rows_out.shape[1]] += rows_out
        out[:, : cols_out.shape[1]] += cols_out
    return out
