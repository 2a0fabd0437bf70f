"""The paired statistics of ``texkit eval`` against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from texkit.evaluation.stats import paired_bootstrap_ci, summarize_pairs, win_rate


def test_constant_difference_gives_a_zero_width_interval_at_that_value():
    low, high = paired_bootstrap_ci([0.25] * 16, resamples=2000, seed=3)
    assert low == high == 0.25


def test_single_pair_gives_its_own_difference():
    assert paired_bootstrap_ci([-1.5], resamples=500) == (-1.5, -1.5)


def test_no_pairs_give_nan():
    low, high = paired_bootstrap_ci([], resamples=500)
    assert math.isnan(low) and math.isnan(high)
    assert math.isnan(win_rate([]))


def test_interval_matches_the_normal_approximation_for_many_pairs():
    """For n = 400 normal differences the bootstrap CI of the mean is close to mean ± 1.96 s / sqrt(n)."""
    rng = np.random.default_rng(7)
    d = rng.normal(0.3, 1.0, size=400)
    low, high = paired_bootstrap_ci(d, resamples=20_000, level=0.95, seed=1)
    half = 1.959964 * d.std(ddof=1) / math.sqrt(d.size)
    assert low == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.1 * half)
    assert low < d.mean() < high


def test_two_valued_differences_give_the_binomial_quantiles():
    """Differences half 0, half 1: the resampled mean is Binomial(n, 1/2) / n, whose 2.5 % and 97.5 %
    quantiles for n = 100 are 0.40 and 0.60 (exact binomial: P(X <= 39) = 0.018, P(X <= 40) = 0.028)."""
    d = [0.0] * 50 + [1.0] * 50
    low, high = paired_bootstrap_ci(d, resamples=40_000, seed=0)
    assert low == pytest.approx(0.40, abs=0.011)
    assert high == pytest.approx(0.60, abs=0.011)


def test_interval_is_seeded_and_level_widens_it():
    d = [0.1, -0.2, 0.4, 0.05, 0.3, -0.1, 0.2]
    assert paired_bootstrap_ci(d, 3000, 0.95, 5) == paired_bootstrap_ci(d, 3000, 0.95, 5)
    narrow = paired_bootstrap_ci(d, 3000, 0.5, 5)
    wide = paired_bootstrap_ci(d, 3000, 0.99, 5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_win_rate_counts_ties_as_half():
    assert win_rate([1.0, 2.0, -1.0, 0.0]) == pytest.approx((2 + 0.5) / 4)
    assert win_rate([0.0, 0.0]) == 0.5
    assert win_rate([3.0]) == 1.0 and win_rate([-3.0]) == 0.0


def test_summarize_pairs_is_adapter_minus_base():
    s = summarize_pairs([1.0, 2.0, 3.0], [2.0, 2.5, 3.0], resamples=1000)
    assert (s.n, s.base_mean, s.adapter_mean) == (3, 2.0, 2.5)
    assert s.mean_difference == pytest.approx(0.5)
    assert s.win_rate == pytest.approx(2.5 / 3)
    assert s.ci_low <= s.mean_difference <= s.ci_high
    with pytest.raises(ValueError):
        summarize_pairs([1.0], [1.0, 2.0])
