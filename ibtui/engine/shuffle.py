"""Each seed's order of the training samples in each epoch, a pure function of (seed, epoch).

The order is a Fisher-Yates shuffle of 0..n-1 (Durstenfeld's, from the end) whose random numbers
come from SplitMix64 started at a hash of the seed and the epoch. With the epoch in the key
there is no generator state to checkpoint: a run resumed at any epoch draws the orders an
uninterrupted run would have drawn; and a compiled loop draws them faster than torch.randperm
with a generator per seed (docs/performance.md).

The index j for position i is (r >> 32) * (i + 1) >> 32 for a 64-bit draw r (Lemire's
multiply-shift): its bias is at most (i + 1) / 2^32, a few in a million for the datasets here.

One source serves both: compiled by numba, or run by the interpreter (on numpy uint64, whose
arithmetic wraps modulo 2^64 as numba's does) where numba cannot be imported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_EPOCH_KEY = 0xD1B54A32D192ED03


def _key(seed: int, epoch: int) -> int:
    """The generator's start for (seed, epoch), as an unsigned 64-bit integer."""
    return ((seed & _MASK) * _GOLDEN ^ (epoch & _MASK) * _EPOCH_KEY) & _MASK


# numpy uint64 constants: numba would turn a mix of uint64 and int64 into float64.
_U_GOLDEN, _U_MIX1, _U_MIX2 = np.uint64(_GOLDEN), np.uint64(_MIX1), np.uint64(_MIX2)
_U30, _U27, _U31, _U32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)


def _orders(keys, orders):
    """Row r of orders becomes the Fisher-Yates order drawn from SplitMix64 started at keys[r]."""
    n = orders.shape[1]
    for row in range(keys.shape[0]):
        order = orders[row]
        for i in range(n):
            order[i] = i
        state = keys[row]
        for i in range(n - 1, 0, -1):
            state = state + _U_GOLDEN
            z = state
            z = (z ^ (z >> _U30)) * _U_MIX1
            z = (z ^ (z >> _U27)) * _U_MIX2
            z = z ^ (z >> _U31)
            j = ((z >> _U32) * np.uint64(i + 1)) >> _U32
            order[i], order[j] = order[j], order[i]


try:
    from numba import njit
except ImportError:  # the model's backend choice reports it; the orders are the same, slower
    _orders_compiled = None
else:
    _orders_compiled = njit(nogil=True, cache=True)(_orders)


def epoch_orders(seeds: Sequence[int], epoch: int, n: int, compiled: bool = True) -> np.ndarray:
    """(len(seeds), n) int64: row s is seed s's order of the n training samples in `epoch`."""
    keys = np.array([_key(seed, epoch) for seed in seeds], dtype=np.uint64)
    orders = np.empty((len(keys), n), dtype=np.int64)
    if compiled and _orders_compiled is not None:
        _orders_compiled(keys, orders)
    else:
        with np.errstate(over="ignore"):
            _orders(keys, orders)
    return orders
