"""The compiled KDE kernel's lower-triangle sums, row by row, against float64 formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

kde_cpu = pytest.importorskip("ibtui.estimators._kde_cpu")


def _exact_row_sums(t: np.ndarray, labels: np.ndarray, s2: float, bounds=("lower", "upper")) -> np.ndarray:
    """(2 B, N) float64: per bound, the sums of exp(-D/(w s2)) (w = 8 lower, 2 upper) over all j,
    then over i's class, with the kernel's clamp (exponent >= -126 in base 2)."""
    d2 = ((t[:, None, :] - t[None, :, :]) ** 2).sum(-1)
    same = labels[:, None] == labels[None, :]
    out = []
    for bound in bounds:
        k = np.exp2(np.maximum(-d2 * math.log2(math.e) / ({"lower": 8, "upper": 2}[bound] * s2), -126.0))
        out += [k.sum(1), (k * same).sum(1)]
    return np.stack(out)


def _kernel_row_sums(t: np.ndarray, labels: np.ndarray, s2: float, bounds=("lower", "upper")) -> np.ndarray:
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels)
    starts = np.concatenate([[0], np.cumsum(counts)])
    block_start = np.repeat(starts[:-1], counts).astype(np.int64)
    cols = kde_cpu.scaled_columns(t[order], s2)
    parts = [kde_cpu.task_sums(cols, block_start, bounds, lo, hi) for lo, hi in kde_cpu.tasks(len(t))]
    sums = np.empty((2 * len(bounds), len(t)))
    sums[:, order] = kde_cpu.row_sums(parts, len(t))
    return sums


@pytest.mark.parametrize(
    ("n", "d", "classes"),
    [
        (1, 1, 1),  # the diagonal alone
        (2, 3, 2),  # two classes of one
        (3, 2, 1),
        (17, 5, 3),  # fewer rows than tasks' natural size
        (700, 6, 4),  # a task's column sums flushed more than once (256 rows)
        (2600, 1, 2),  # rows longer than one float32 run (2,048 columns)
    ],
)
def test_row_sums_match_the_float64_formula(n, d, classes):
    rng = np.random.default_rng(n + d)
    t = np.tanh(rng.normal(size=(n, d)) * 2)
    labels = rng.integers(0, classes, n)
    labels[:classes] = np.arange(classes)[: min(classes, n)]  # every class present
    labels = np.unique(labels, return_inverse=True)[1]
    got = _kernel_row_sums(t, labels, 0.05)
    want = _exact_row_sums(t, labels, 0.05)
    assert np.allclose(got, want, rtol=2e-6, atol=1e-30)
    assert np.all(got[1::2] >= 1.0)  # every row's class sum holds its own term, exactly 1


@pytest.mark.parametrize("bound", ["lower", "upper"])
def test_one_bound_alone_is_bitwise_its_part_of_both(bound):
    rng = np.random.default_rng(7)
    t = np.tanh(rng.normal(size=(900, 6)) * 2)
    labels = rng.integers(0, 3, 900)
    both = _kernel_row_sums(t, labels, 1e-3)
    alone = _kernel_row_sums(t, labels, 1e-3, (bound,))
    assert np.array_equal(alone, both[:2] if bound == "lower" else both[2:])
    assert np.allclose(alone, _exact_row_sums(t, labels, 1e-3, (bound,)), rtol=2e-6, atol=1e-30)


def test_identical_points_give_exact_counts():
    t = np.zeros((300, 4))
    labels = np.repeat([0, 1, 2], [100, 150, 50])
    got = _kernel_row_sums(t, labels, 1e-3)
    assert np.array_equal(got[0], np.full(300, 300.0)) and np.array_equal(got[2], np.full(300, 300.0))
    assert np.array_equal(got[1], np.bincount(labels)[labels].astype(float))
    assert np.array_equal(got[3], np.bincount(labels)[labels].astype(float))


def test_tasks_cover_every_row_once_with_about_equal_pairs():
    for n in (1, 2, 15, 16, 17, 4096, 60_000):
        ranges = kde_cpu.tasks(n)
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(hi == lo2 for (_, hi), (lo2, _) in zip(ranges, ranges[1:]))
        if n >= 4096:
            pairs = [hi * (hi - 1) // 2 - lo * (lo - 1) // 2 for lo, hi in ranges]
            assert max(pairs) < 1.01 * min(pairs)
