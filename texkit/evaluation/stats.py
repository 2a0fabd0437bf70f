"""Paired statistics of an evaluation: mean difference, its bootstrap confidence interval, win rate.

Every comparison is paired: the base model and an adapter paint the same (mesh, prompt, seed)
item with the same noise, so the unit of evidence is the difference ``d_i = adapter_i - base_i``
of one item's metric (higher is better for every reward).

* Mean difference: ``mean(d)``.
* Confidence interval: the percentile bootstrap of the mean (Efron & Tibshirani 1993, "An
  Introduction to the Bootstrap", ch. 13): draw ``resamples`` samples of n differences with
  replacement, take each one's mean, and report the ``(1 - level) / 2`` and ``(1 + level) / 2``
  quantiles of those means (linear interpolation between order statistics). The draws come from
  numpy's PCG64 generator seeded with ``seed``, so the interval is the same on every run. Items
  are treated as independent draws (prompts and seeds are not resampled as clusters).
* Win rate: the fraction of pairs the adapter wins, a tie counting one half.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["paired_bootstrap_ci", "win_rate", "PairedSummary", "summarize_pairs"]

_CHUNK = 1_000_000  # resampled values drawn at once (bounds memory for large evaluations)


def paired_bootstrap_ci(
    differences: Sequence[float], resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of paired differences.

    Args:
        differences: ``(n,)`` differences ``adapter - base``, one per pair.
        resamples: bootstrap resamples (each a draw of n differences with replacement).
        level: the interval's confidence level, in (0, 1).
        seed: seed of the resampling (numpy PCG64).

    Returns:
        ``(low, high)``; ``(d, d)`` for a single difference or identical ones; NaNs for none.
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.Generator(np.random.PCG64(seed))
    n = d.size
    per_chunk = max(1, _CHUNK // n)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - start)
        means[start : start + count] = d[rng.integers(0, n, size=(count, n))].mean(axis=1)
    low, high = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)


def win_rate(differences: Sequence[float]) -> float:
    """Fraction of pairs with a positive difference, ties (difference 0) counting one half; NaN for none."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        return math.nan
    return float(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size)


@dataclass(frozen=True)
class PairedSummary:
    """One metric of one adapter against the base model, over n paired items.

    Attributes:
        n: number of pairs.
        base_mean: mean of the base model's values.
        adapter_mean: mean of the adapter's values.
        mean_difference: mean of ``adapter - base``.
        ci_low: lower end of the bootstrap confidence interval of ``mean_difference``.
        ci_high: upper end of it.
        win_rate: fraction of pairs where the adapter scores higher (ties one half).
        level: the interval's confidence level.
        resamples: bootstrap resamples used.
    """

    n: int
    base_mean: float
    adapter_mean: float
    mean_difference: float
    ci_low: float
    ci_high: float
    win_rate: float
    level: float
    resamples: int

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (for JSON and CSV)."""
        return asdict(self)


def summarize_pairs(
    base: Sequence[float], adapter: Sequence[float], resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> PairedSummary:
    """Summarise paired values (``base[i]`` and ``adapter[i]`` of the same item).

    Raises:
        ValueError: the two sequences differ in length.
    """
    b = np.asarray(base, dtype=np.float64)
    a = np.asarray(adapter, dtype=np.float64)
    if b.shape != a.shape:
        raise ValueError(f"paired values need equal lengths, got {b.size} base and {a.size} adapter values")
    d = a - b
    low, high = paired_bootstrap_ci(d, resamples, level, seed)
    nan = math.nan
    return PairedSummary(
        n=int(d.size),
        base_mean=float(b.mean()) if b.size else nan,
        adapter_mean=float(a.mean()) if a.size else nan,
        mean_difference=float(d.mean()) if d.size else nan,
        ci_low=low,
        ci_high=high,
        win_rate=win_rate(d),
        level=level,
        resamples=resamples,
    )
