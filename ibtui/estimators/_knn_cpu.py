"""The k-nearest-neighbour counts of KSG and Ross's estimator, row by row, compiled by numba.

For one row i, every max-norm distance D_ij = max_m |p_im - p_jm| (j = 1..N, i itself included at
distance 0) is written into a buffer of N values, in vectorised passes over the coordinates; the
row's k-th neighbour distance is then a selection over that buffer and its counts are comparisons
with it. Each row costs O(N d) time and O(N) memory (never N^2), rows are independent, and the
caller splits them over threads (the kernels release the GIL), so any split gives the same result.

Why brute force rather than a k-d tree: at the information plane's sizes (N in the thousands) the
KSG radii are large (with binary inputs every other input is at max-norm distance about 1, and a
low-dimensional tanh layer has a third of all points within its radius), so a tree's range counts
visit a large part of the points anyway, with a tree's overhead per point, and the joint space's
10-20 coordinates defeat its pruning. Whole rows vectorise instead.

The results are exactly the tree's: max, abs and subtraction are exact, so D_ij is bitwise what
scipy.spatial.cKDTree computes for p = inf; the k-th smallest value of a row does not depend on
how it is found; and "strictly closer than eps" is tested as D < eps (for eps = 0: D == 0, as the
tree's radius nextafter(eps, 0) gives).

Loop shapes, both measured with numba 0.68 on AVX2: coordinates are taken GROUP at a time, their
maximum kept in registers (the columns are zero-padded to a multiple of GROUP: a zero coordinate
adds a distance of 0, which never changes a maximum of non-negative numbers); and each further
group reads one buffer and writes the other, because `buf[j] = max(buf[j], d)` in place compiles
to masked stores, 3-4x slower. The selection skips blocks of _BLOCK columns whose minimum is not
below the current k-th smallest value, which after the first blocks is nearly all of them. KSG
takes all layers of a snapshot in one call, so the distances in X, the same for every layer, are
computed once per row rather than once per layer (X has 12 coordinates in the Tishby set, more
than most layers). Ross's estimator takes the points sorted by class, so a class is one range.
"""

from __future__ import annotations

import numpy as np
from numba import njit

GROUP = 4
_BLOCK = 16
_INF = np.inf
_FLAGS = {"nnan", "nsz"}  # no NaN reaches here (inputs are checked finite); inf does, as a mask


def columns(points: np.ndarray) -> np.ndarray:
    """(N, d) points as the kernels' (GROUP * ceil(d / GROUP), N) float64 columns, zero-padded."""
    n, d = points.shape
    cols = np.zeros((GROUP * -(-d // GROUP), n))
    cols[:d] = points.T
    return cols


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _group(cols, m, i, before, out, first):
    """out[j] = max(before[j], |cols[m + g, j] - cols[m + g, i]| for g < GROUP); `before` is not
    read when first."""
    r0, r1, r2, r3 = cols[m], cols[m + 1], cols[m + 2], cols[m + 3]
    c0, c1, c2, c3 = r0[i], r1[i], r2[i], r3[i]
    if first:
        for j in range(out.shape[0]):
            d0, d1, d2, d3 = abs(r0[j] - c0), abs(r1[j] - c1), abs(r2[j] - c2), abs(r3[j] - c3)
            out[j] = max(max(d0, d1), max(d2, d3))
    else:
        for j in range(out.shape[0]):
            d0, d1, d2, d3 = abs(r0[j] - c0), abs(r1[j] - c1), abs(r2[j] - c2), abs(r3[j] - c3)
            out[j] = max(max(max(d0, d1), max(d2, d3)), before[j])


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _distances(cols, lo, hi, i, a, b):
    """The max-norm distances from point i to every point over coordinates (rows of cols)
    lo..hi-1, in a or b (the one returned)."""
    _group(cols, lo, i, a, a, True)
    for m in range(lo + GROUP, hi, GROUP):
        _group(cols, m, i, a, b, False)
        a, b = b, a
    return a


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _smallest(values, rank, best):
    """The rank-th smallest of values (rank >= 1); best is scratch of at least rank numbers."""
    for r in range(rank):
        best[r] = _INF
    worst = _INF
    n = values.shape[0]
    stop = n - n % _BLOCK
    for start in range(0, n, _BLOCK):
        block = values[start:min(start + _BLOCK, n)]
        low = _INF
        if start < stop:
            for j in range(_BLOCK):
                low = min(low, block[j])
        else:
            low = -_INF
        if low < worst:
            for j in range(block.shape[0]):
                v = block[j]
                if v < worst:
                    q = rank - 1
                    while q > 0 and best[q - 1] > v:
                        best[q] = best[q - 1]
                        q -= 1
                    best[q] = v
                    worst = best[rank - 1]
    return worst


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _closer(values, eps):
    """How many values are strictly below eps (for eps = 0: equal to 0)."""
    count = 0
    if eps > 0.0:
        for j in range(values.shape[0]):
            count += values[j] < eps
    else:
        for j in range(values.shape[0]):
            count += values[j] == 0.0
    return count


@njit(nogil=True, fastmath=_FLAGS, boundscheck=False, cache=True)
def ksg_counts(x_cols, t_cols, starts, k, row_lo, row_hi, n_x, n_t):
    """For rows i in [row_lo, row_hi) and every layer l, whose columns are rows starts[l] to
    starts[l + 1] - 1 of t_cols: eps, the max-norm distance from (x_i, t_i) to its k-th nearest
    neighbour in the joint space, and n_x[l, i], n_t[l, i], how many points (i included) lie
    strictly closer than eps in X alone and in T alone. x_cols and t_cols come from columns()."""
    n = x_cols.shape[1]
    buffers = np.empty((5, n))
    joint = buffers[4]
    best = np.empty(k + 1)
    for i in range(row_lo, row_hi):
        dist_x = _distances(x_cols, 0, x_cols.shape[0], i, buffers[0], buffers[1])
        for layer in range(starts.shape[0] - 1):
            dist_t = _distances(t_cols, starts[layer], starts[layer + 1], i, buffers[2], buffers[3])
            for j in range(n):
                joint[j] = max(dist_x[j], dist_t[j])
            eps = _smallest(joint, k + 1, best)  # i itself is the first, at 0
            n_x[layer, i] = _closer(dist_x, eps)
            n_t[layer, i] = _closer(dist_t, eps)


@njit(nogil=True, fastmath=_FLAGS, boundscheck=False, cache=True)
def ross_counts(t_cols, starts, class_lo, class_hi, kept, k_used, row_lo, row_hi, m):
    """For kept rows i in [row_lo, row_hi), the points sorted by class (i's class is columns
    class_lo[i] to class_hi[i] - 1), and every layer l (rows starts[l] to starts[l + 1] - 1 of
    t_cols): r, the max-norm distance from t_i to its k_used[i]-th nearest neighbour in its class,
    and m[l, i], how many kept points (i included) lie strictly closer than r. Rows not kept are
    left alone."""
    n = t_cols.shape[1]
    buffers = np.empty((3, n))
    masked = buffers[2]
    every_point_kept = kept.all()
    best = np.empty(max(1, int(k_used.max())) + 1)
    for i in range(row_lo, row_hi):
        if not kept[i]:
            continue
        for layer in range(starts.shape[0] - 1):
            dist = _distances(t_cols, starts[layer], starts[layer + 1], i, buffers[0], buffers[1])
            radius = _smallest(dist[class_lo[i]:class_hi[i]], k_used[i] + 1, best)
            if every_point_kept:
                m[layer, i] = _closer(dist, radius)
            else:
                for j in range(n):
                    masked[j] = dist[j] if kept[j] else _INF
                m[layer, i] = _closer(masked, radius)
