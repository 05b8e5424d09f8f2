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
how it is found; and "strictly closer than eps" is tested as the tree's D <= nextafter(eps, 0).

Loop shapes, both measured with numba 0.68 on AVX2: coordinates are taken GROUP at a time (then 2
or 1), their maximum kept in registers; and each further group reads one buffer and writes the
other, because `buf[j] = max(buf[j], d)` in place compiles to masked stores, 3-4x slower; rows
are taken two at a time, each column value loaded serving both. The selection skips blocks of
_BLOCK columns with no value below the current k-th smallest, which after the first blocks is
nearly all of them; the test counts such values, which vectorises (a block's minimum, a float
min-reduction, does not without reassociation flags). One
call takes all layers of a snapshot, so the distances in X, the same for every layer, are
computed once per row rather than once per layer (X has 12 coordinates in the Tishby set, more
than most layers), and it serves KSG and Ross together: both see the same T, so Ross's radius is
a selection over the class's range of the same buffer of distances in T, and the three counts are
one pass. The points come sorted by class, the classes Ross keeps first, so that a class is one
range and the kept points are a prefix.
"""

from __future__ import annotations

import numpy as np
from numba import njit

GROUP = 4
_BLOCK = 64
_INF = np.inf
_FLAGS = {"nnan", "nsz"}  # no NaN reaches here (inputs are checked finite); inf does, as a mask


def columns(points: np.ndarray) -> np.ndarray:
    """(N, d) points as the kernels' (d', N) float64 columns: d' = d, or d + 1 when d % 4 == 3,
    the last coordinate repeated (which changes no maximum), so that every d' % 4 is 0, 1 or 2."""
    cols = np.ascontiguousarray(points.T, dtype=np.float64)
    if cols.shape[0] % GROUP == GROUP - 1:
        cols = np.concatenate([cols, cols[-1:]])
    return cols


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _group(cols, m, width, i, h, before_i, out_i, before_h, out_h, first):
    """out_i[j] = max(before_i[j], |cols[m + g, j] - cols[m + g, i]| for g < width), width 4, 2 or
    1, and the same for point h into out_h, from one load of each column value; `before_*` are not
    read when first."""
    if width == 4:
        r0, r1, r2, r3 = cols[m], cols[m + 1], cols[m + 2], cols[m + 3]
        c0, c1, c2, c3 = r0[i], r1[i], r2[i], r3[i]
        e0, e1, e2, e3 = r0[h], r1[h], r2[h], r3[h]
        if first:
            for j in range(out_i.shape[0]):
                a0, a1, a2, a3 = r0[j], r1[j], r2[j], r3[j]
                out_i[j] = max(max(abs(a0 - c0), abs(a1 - c1)), max(abs(a2 - c2), abs(a3 - c3)))
                out_h[j] = max(max(abs(a0 - e0), abs(a1 - e1)), max(abs(a2 - e2), abs(a3 - e3)))
        else:
            for j in range(out_i.shape[0]):
                a0, a1, a2, a3 = r0[j], r1[j], r2[j], r3[j]
                out_i[j] = max(max(max(abs(a0 - c0), abs(a1 - c1)), max(abs(a2 - c2), abs(a3 - c3))), before_i[j])
                out_h[j] = max(max(max(abs(a0 - e0), abs(a1 - e1)), max(abs(a2 - e2), abs(a3 - e3))), before_h[j])
    elif width == 2:
        r0, r1 = cols[m], cols[m + 1]
        c0, c1 = r0[i], r1[i]
        e0, e1 = r0[h], r1[h]
        if first:
            for j in range(out_i.shape[0]):
                a0, a1 = r0[j], r1[j]
                out_i[j] = max(abs(a0 - c0), abs(a1 - c1))
                out_h[j] = max(abs(a0 - e0), abs(a1 - e1))
        else:
            for j in range(out_i.shape[0]):
                a0, a1 = r0[j], r1[j]
                out_i[j] = max(max(abs(a0 - c0), abs(a1 - c1)), before_i[j])
                out_h[j] = max(max(abs(a0 - e0), abs(a1 - e1)), before_h[j])
    else:
        r0 = cols[m]
        c0, e0 = r0[i], r0[h]
        if first:
            for j in range(out_i.shape[0]):
                out_i[j] = abs(r0[j] - c0)
                out_h[j] = abs(r0[j] - e0)
        else:
            for j in range(out_i.shape[0]):
                out_i[j] = max(abs(r0[j] - c0), before_i[j])
                out_h[j] = max(abs(r0[j] - e0), before_h[j])


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _distances(cols, lo, hi, i, h, buffers):
    """The max-norm distances from point i and from point h to every point over coordinates (rows
    of cols) lo..hi-1, each in one of four buffers (returned, i's first)."""
    a, b, c, d = buffers[0], buffers[1], buffers[2], buffers[3]
    m = lo
    while m < hi:
        width = GROUP if hi - m >= GROUP else (2 if hi - m >= 2 else 1)
        _group(cols, m, width, i, h, a, b, c, d, m == lo)
        a, b, c, d = b, a, d, c
        m += width
    return a, c


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _insert(p, q, lo, hi, rank, best, worst):
    """best[:rank], ascending, updated with max(p[j], q[j]) for j in lo..hi-1; its new last value."""
    for j in range(lo, hi):
        v = max(p[j], q[j])
        if v < worst:
            r = rank - 1
            while r > 0 and best[r - 1] > v:
                best[r] = best[r - 1]
                r -= 1
            best[r] = v
            worst = best[rank - 1]
    return worst


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _smallest(p, q, rank, best):
    """The rank-th smallest of max(p[j], q[j]) over j (rank >= 1; pass p twice for p's own);
    best is scratch of at least rank numbers."""
    for r in range(rank):
        best[r] = _INF
    worst = _INF
    n = p.shape[0]
    full = n - n % _BLOCK
    for start in range(0, full, _BLOCK):
        below = 0
        for j in range(start, start + _BLOCK):
            below += max(p[j], q[j]) < worst
        if below:
            worst = _insert(p, q, start, start + _BLOCK, rank, best, worst)
    return _insert(p, q, full, n, rank, best, worst)


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _counts(dist_x, dist_t, eps, radius, n_kept):
    """How many j have dist_x[j] < eps, dist_t[j] < eps, and (for j < n_kept) dist_t[j] < radius,
    in one pass. "D < r" is tested as D <= nextafter(r, 0), the tree's own test (for r = 0: D == 0)."""
    below_eps, below_radius = np.nextafter(eps, 0.0), np.nextafter(radius, 0.0)
    in_x = in_t = in_radius = 0
    for j in range(n_kept):
        in_x += dist_x[j] <= below_eps
        in_t += dist_t[j] <= below_eps
        in_radius += dist_t[j] <= below_radius
    for j in range(n_kept, dist_x.shape[0]):
        in_x += dist_x[j] <= below_eps
        in_t += dist_t[j] <= below_eps
    return in_x, in_t, in_radius


@njit(inline="always", fastmath=_FLAGS, boundscheck=False)
def _row(i, layer, dist_x, dist_t, k, class_lo, class_hi, k_used, n_kept, best, n_x, n_t, m):
    """Row i's counts for one layer from its distances in X and in T (see ksg_ross_counts)."""
    eps = _smallest(dist_x, dist_t, k + 1, best)  # i itself is the first, at 0
    if i < n_kept:
        own = dist_t[class_lo[i]:class_hi[i]]
        radius = _smallest(own, own, k_used[i] + 1, best)
        n_x[layer, i], n_t[layer, i], m[layer, i] = _counts(dist_x, dist_t, eps, radius, n_kept)
    else:
        n_x[layer, i], n_t[layer, i], _ = _counts(dist_x, dist_t, eps, 0.0, 0)


@njit(nogil=True, fastmath=_FLAGS, boundscheck=False, cache=True)
def ksg_ross_counts(x_cols, t_cols, starts, k, class_lo, class_hi, k_used, n_kept, row_lo, row_hi, n_x, n_t, m):
    """For rows i in [row_lo, row_hi) and every layer l, whose columns are rows starts[l] to
    starts[l + 1] - 1 of t_cols (x_cols and t_cols from columns()):

    KSG: eps, the max-norm distance from (x_i, t_i) to its k-th nearest neighbour in the joint
    space, and n_x[l, i], n_t[l, i], how many points (i included) lie strictly closer than eps in X
    alone and in T alone;

    Ross, for the kept rows i < n_kept (the points come sorted by class, the kept classes first, so
    that i's class is columns class_lo[i] to class_hi[i] - 1 and the kept points are the first
    n_kept): r, the max-norm distance from t_i to its k_used[i]-th nearest neighbour in its class,
    and m[l, i], how many kept points (i included) lie strictly closer than r. Rows not kept get
    no m (n_kept = 0: KSG alone).

    Both read the same buffer of distances in T, computed once per row and layer; the rows are
    taken two at a time, so that each column value loaded serves both."""
    n = x_cols.shape[1]
    buffers = np.empty((8, n))
    best = np.empty(k + 1)
    for i in range(row_lo, row_hi, 2):
        h = min(i + 1, row_hi - 1)  # two rows at a time; the last alone (h == i) when they are odd
        dist_x_i, dist_x_h = _distances(x_cols, 0, x_cols.shape[0], i, h, buffers[:4])
        for layer in range(starts.shape[0] - 1):
            dist_t_i, dist_t_h = _distances(t_cols, starts[layer], starts[layer + 1], i, h, buffers[4:])
            _row(i, layer, dist_x_i, dist_t_i, k, class_lo, class_hi, k_used, n_kept, best, n_x, n_t, m)
            if h != i:
                _row(h, layer, dist_x_h, dist_t_h, k, class_lo, class_hi, k_used, n_kept, best, n_x, n_t, m)
