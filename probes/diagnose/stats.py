"""The small statistics the partial-fault rules share: is a count of bad samples more than
noise? Pure, no I/O.

A rule that fires on "1 query in 20 lost" or "p95 over 100 ms" must not fire on one lost
packet or one slow answer: every such rule asks :func:`beyond_noise` whether `bad` of `n`
samples could plausibly come from a healthy resolver whose bad-sample rate is at most
`healthy_rate`, with a one-sided binomial test at `ALPHA`, and needs `MIN_SAMPLES`.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence

# One false alarm in a thousand tests: the rules run every few seconds over a handful of
# rows each, and a warning a day on a healthy cluster is already too many to be trusted.
ALPHA = 1e-3
# Fewer samples than this say nothing either way (with 3 samples even 3 of 3 lost at a
# 0.5 % healthy rate is p = 1.3e-7, but 2 samples can be one unlucky cache miss and a retry).
MIN_SAMPLES = 3
# A healthy in-VNet UDP path loses far fewer than 1 query in 1,000; 0.5 % is a generous
# ceiling for a busy node (softirq drops, a conntrack table flush).
HEALTHY_LOSS = 0.005
# A healthy resolver answers under its latency threshold at least 95 % of the time (the
# threshold is a p95 one): more than 5 % of samples over it is a slow resolver.
HEALTHY_SLOW = 0.05


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq, ln = math.log(p), math.log1p(-p), math.lgamma(n + 1)

    def term(i: int) -> float:
        return math.exp(ln - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)

    # the terms fall away geometrically on both sides of the mode: sum from k outwards
    # until they no longer count (F19 pools every vantage's queries: n reaches 10^5 at
    # 5,000 nodes, and a sum over all of them was most of a frame's cost)
    total = 0.0
    if k > n * p:  # the upper tail itself
        for i in range(k, n + 1):
            t = term(i)
            total += t
            if t <= total * _NEGLIGIBLE:
                break
        return min(1.0, total)
    for i in range(k - 1, -1, -1):  # 1 - P(X <= k-1), the lower part summed downwards
        t = term(i)
        total += t
        if t <= total * _NEGLIGIBLE and i < n * p:
            break
    return min(1.0, max(0.0, 1.0 - total))


_NEGLIGIBLE = 1e-17  # a term this small against the sum changes no double


def beyond_noise(bad: int, n: int, healthy_rate: float, alpha: float = ALPHA, min_samples: int = MIN_SAMPLES) -> bool:
    """`bad` of `n` is more than a healthy rate explains (and there are enough samples)."""
    if n < min_samples or bad <= n * healthy_rate:
        # at or under the mean the tail P(X >= bad) is at least 1/2 (a binomial's median is
        # at least floor(n p)): never beyond noise, and the common case on a healthy cluster
        return False
    return binom_sf(bad, n, healthy_rate) < alpha


def median(values: Iterable[float]) -> float | None:
    v = sorted(values)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2.0


def p95(values: Iterable[float]) -> float | None:
    v = sorted(values)
    if not v:
        return None
    return v[min(len(v) - 1, math.ceil(0.95 * len(v)) - 1)]


# --- order statistics of "everyone but this vantage", without building that list --------
# A rule that compares each of V vantages with the others would sort V lists of (V-1)
# vantages' samples: O(V² log V), seconds per frame at 5,000 nodes. With the pooled
# samples sorted once and each vantage's own samples sorted, any order statistic of the
# others is a binary search (own is a sub-multiset of pool, so the counts are exact).


def _kth_without(pool: Sequence[float], own: Sequence[float], k: int) -> float:
    """The k-th smallest (0-based) of pool minus own; both sorted, own within pool."""
    lo, hi = 0, len(pool) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        v = pool[mid]
        if bisect_right(pool, v) - bisect_right(own, v) >= k + 1:
            hi = mid
        else:
            lo = mid + 1
    return pool[lo]


def median_without(pool: Sequence[float], own: Sequence[float]) -> float | None:
    """median(pool minus own), as `median` would give it."""
    m = len(pool) - len(own)
    if m <= 0:
        return None
    if m % 2:
        return _kth_without(pool, own, m // 2)
    return (_kth_without(pool, own, m // 2 - 1) + _kth_without(pool, own, m // 2)) / 2.0


def p95_without(pool: Sequence[float], own: Sequence[float]) -> float | None:
    """p95(pool minus own), as `p95` would give it."""
    m = len(pool) - len(own)
    if m <= 0:
        return None
    return _kth_without(pool, own, min(m - 1, math.ceil(0.95 * m) - 1))


def at_least_without(pool: Sequence[float], own: Sequence[float], limit: float) -> int:
    """How many of pool minus own are >= limit."""
    return (len(pool) - bisect_left(pool, limit)) - (len(own) - bisect_left(own, limit))
