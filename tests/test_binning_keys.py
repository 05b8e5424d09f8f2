"""Binning's state keys for wide layers: a checked hash, exact even when the hash collides."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ibtui.estimators import binning


def distinct_rows(keys: torch.Tensor) -> int:
    return int(torch.unique(keys).numel())


def test_wide_rows_get_one_key_per_distinct_row():
    gen = torch.Generator().manual_seed(0)
    base = torch.randint(0, 40, (300, 1024), generator=gen)  # spans multiply far past 2^62
    codes = torch.cat([base, base[:100]])                     # 100 duplicated rows
    keys = binning._row_keys(codes)
    assert distinct_rows(keys) == 300
    assert bool((keys[300:] == keys[:100]).all())


def test_a_hash_collision_falls_back_to_exact_row_numbers():
    codes = torch.tensor([[1, 0], [0, 1], [1, 0], [2, 2]])
    # With all weights 1, rows (1, 0) and (0, 1) hash alike: the check must catch it.
    keys = binning._hashed_keys(codes, weights=torch.ones(2, dtype=torch.int64))
    assert distinct_rows(keys) == 3
    assert keys[0] == keys[2] and keys[0] != keys[1]


def test_wide_layer_estimate_equals_sorting_the_rows():
    rng = np.random.default_rng(1)
    t = np.maximum(rng.normal(size=(500, 200)), 0.0)
    t[250:] = t[:250]
    y = torch.tensor(rng.integers(0, 3, 500))
    codes = binning.bin_codes(torch.tensor(t), bin_size=0.5)
    exact_states = torch.unique(codes, dim=0, return_inverse=True)[1]
    got = binning.codes_mi(codes, y, 3)
    want = binning.codes_mi(exact_states[:, None], y, 3)
    assert got == pytest.approx(want, abs=1e-12)
    assert got[0] < np.log2(500)  # the duplicates merge: fewer than N states
