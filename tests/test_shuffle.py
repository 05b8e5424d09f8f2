import numpy as np
import pytest

from ibtui.engine import shuffle
from ibtui.engine.shuffle import epoch_orders


def test_each_order_is_a_permutation_of_the_samples():
    orders = epoch_orders([0, 1, 7], epoch=5, n=1000)
    assert orders.shape == (3, 1000) and orders.dtype == np.int64
    for order in orders:
        assert np.array_equal(np.sort(order), np.arange(1000))


def test_the_order_is_a_function_of_seed_and_epoch_alone():
    ensemble = epoch_orders([3, 4, 5], epoch=9, n=300)
    # A seed draws the same order alone as inside an ensemble, and again on a second call
    # (a resumed run), but another order in another epoch or for another seed.
    assert np.array_equal(epoch_orders([4], epoch=9, n=300)[0], ensemble[1])
    assert np.array_equal(epoch_orders([3, 4, 5], epoch=9, n=300), ensemble)
    assert not np.array_equal(epoch_orders([4], epoch=10, n=300)[0], ensemble[1])
    assert not np.array_equal(ensemble[0], ensemble[1])


@pytest.mark.skipif(shuffle._orders_compiled is None, reason="numba cannot be imported here")
@pytest.mark.parametrize("n", [1, 2, 17, 3276])
def test_compiled_and_python_shuffles_agree(n):
    seeds = [0, 1, 2**40 + 3, 2**63 - 1]
    for epoch in (1, 2, 10_000):
        assert np.array_equal(epoch_orders(seeds, epoch, n), epoch_orders(seeds, epoch, n, compiled=False))


def test_positions_are_uniform_over_many_epochs():
    # Where sample 0 lands, over 4,000 epochs of 8 samples: every position about 500 times.
    n, epochs = 8, 4000
    landing = [int(np.flatnonzero(epoch_orders([1], e, n)[0] == 0)[0]) for e in range(1, epochs + 1)]
    counts = np.bincount(landing, minlength=n)
    chi2 = ((counts - epochs / n) ** 2 / (epochs / n)).sum()
    assert chi2 < 24.3  # the 0.999 quantile of chi-square with 7 degrees of freedom
