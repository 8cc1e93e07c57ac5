"""The lineage threshold m (ml/oml/lineage.py): binomial tail, Clopper-Pearson bound, smallest m."""
import math

import pytest

from ml.oml.lineage import binomial_tail, derive, threshold, union_bound, upper_bound


def test_binomial_tail_matches_the_sum():
    n, p = 20, 0.1
    exact = sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(3, n + 1))
    assert binomial_tail(3, n, p) == pytest.approx(exact)
    assert binomial_tail(0, n, p) == 1.0 and binomial_tail(n + 1, n, p) == 0.0


def test_zero_matches_give_the_exact_upper_bound():
    # P[Bin(N, p) = 0] = (1 - p)^N = 0.05  <=>  p = 1 - 0.05^(1/N)
    assert upper_bound(0, 64) == pytest.approx(1 - 0.05 ** (1 / 64), rel=1e-9)
    assert upper_bound(64, 64) == 1.0
    assert upper_bound(3, 64) > upper_bound(1, 64) > upper_bound(0, 64)
    with pytest.raises(ValueError):
        upper_bound(5, 4)


def test_threshold_is_the_smallest_m_below_the_bound():
    t = derive(0, 64, 64, bound=1e-6)
    assert (t.m, round(t.p0_upper, 4)) == (14, 0.0457)
    assert t.fpr_at_m <= 1e-6 < binomial_tail(t.m - 1, 64, t.p0_upper)
    assert threshold(64, 0.0, 1e-6) == 1  # a rate of exactly 0 would need one key: why p0 is an upper bound
    assert union_bound(t.fpr_at_m, 10) <= 1e-5


def test_unreachable_bound_names_the_fix():
    with pytest.raises(ValueError, match="use a larger subset"):
        threshold(4, 0.5, 1e-6)
    with pytest.raises(ValueError, match="bound must be in"):
        threshold(64, 0.01, 0.0)
