"""Lineage threshold: how many of a host's subset keys must a model reproduce to be traced to that host.

A derived model (the host's copy fine-tuned, merged or quantised, served elsewhere) keeps only part
of its fingerprints, so a lineage claim reveals `m` or more of the host's subset keys that the
model answered with their committed responses. An unrelated model reproduces a key by chance with
probability `p0` per key; a prover may try all `n` keys of the subset, so the false-positive rate of
a lineage claim is the binomial tail P[Bin(n, p0) >= m]. `threshold` picks the smallest `m` that
keeps that tail below a bound (e.g. 1e-6).

`p0` is measured on the base (unfingerprinted) model: `chance_rate` counts the keys it answers with
their responses and turns the count into a one-sided Clopper-Pearson upper confidence bound, so a
count of zero still yields a positive rate (1 - delta^(1/N)).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass



def binomial_tail(m: int, n: int, p: float) -> float:
    """P[Bin(n, p) >= m]."""
    if m <= 0:
        return 1.0
    if m > n:
        return 0.0
    return min(1.0, math.fsum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(m, n + 1)))


def upper_bound(matches: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on a rate observed as `matches` of `trials`."""
    if trials < 1 or not 0 <= matches <= trials:
        raise ValueError(f"need 0 <= matches <= trials and trials >= 1, got {matches}/{trials}")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    if matches == trials:
        return 1.0
    lo, hi = matches / trials, 1.0  # P[Bin(trials, p) <= matches] falls from >= 1/2 to 0 on [lo, 1]
    for _ in range(200):
        mid = (lo + hi) / 2
        if 1.0 - binomial_tail(matches + 1, trials, mid) > 1.0 - confidence:
            lo = mid
        else:
            hi = mid
    return hi


def threshold(n: int, p0: float, bound: float) -> int:
    """Smallest m with P[Bin(n, p0) >= m] <= bound; ValueError if even m = n does not reach it."""
    if n < 1:
        raise ValueError("subset size n must be >= 1")
    if not 0.0 < bound < 1.0:
        raise ValueError("false-positive bound must be in (0, 1)")
    if not 0.0 <= p0 <= 1.0:
        raise ValueError("p0 must be in [0, 1]")
    for m in range(1, n + 1):
        if binomial_tail(m, n, p0) <= bound:
            return m
    raise ValueError(f"no m <= {n} keeps the false-positive rate below {bound} at p0 = {p0:.4g}: "
                     "use a larger subset or keys with a lower chance-match rate")


@dataclass(frozen=True)
class LineageThreshold:
    """The measured chance-match rate and the lineage threshold it implies."""

    base_matches: int  # keys the base model answered with their responses
    base_trials: int
    p0_observed: float
    p0_upper: float  # Clopper-Pearson upper bound at `confidence`
    confidence: float
    subset_size: int  # n: keys a prover may try against one host
    bound: float  # target false-positive rate
    m: int
    fpr_at_m: float  # P[Bin(n, p0_upper) >= m]

    def as_dict(self) -> dict:
        return asdict(self)


def derive(base_matches: int, base_trials: int, subset_size: int, bound: float = 1e-6,
           confidence: float = 0.95) -> LineageThreshold:
    """m from the base model's match count on `base_trials` keys, for subsets of `subset_size` keys."""
    p0u = upper_bound(base_matches, base_trials, confidence)
    m = threshold(subset_size, p0u, bound)
    return LineageThreshold(base_matches, base_trials, base_matches / base_trials, p0u, confidence,
                            subset_size, bound, m, binomial_tail(m, subset_size, p0u))


def union_bound(fpr: float, hosts: int) -> float:
    """A prover testing one unrelated model against every host's subset: P[any host reaches m] <= hosts * fpr."""
    return min(1.0, hosts * fpr)
