"""The order statistics of "everyone but this vantage" (used by F14 at 5,000 nodes) equal
the plain computation on the list of the others."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.diagnose.stats import at_least_without, beyond_noise, binom_sf, median, median_without, p95, p95_without

small = st.floats(min_value=0.0, max_value=500.0, allow_nan=False).map(lambda x: round(x, 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(small, min_size=1, max_size=6), min_size=1, max_size=8), st.data())
def test_without_equals_the_others_list(views, data):  # type: ignore[no-untyped-def]
    i = data.draw(st.integers(0, len(views) - 1))
    limit = data.draw(small)
    own = sorted(views[i])
    others = [x for j, v in enumerate(views) if j != i for x in v]
    pool = sorted(x for v in views for x in v)
    assert median_without(pool, own) == median(others)
    assert p95_without(pool, own) == p95(others)
    assert at_least_without(pool, own, limit) == sum(1 for x in others if x >= limit)


def test_ties_and_the_lone_vantage():
    pool = sorted([1.0, 1.0, 1.0, 5.0, 5.0, 9.0])
    assert median_without(pool, [1.0, 5.0]) == 3.0  # others: 1, 1, 5, 9
    assert p95_without(pool, [9.0]) == 5.0
    assert median_without([2.0], [2.0]) is None and p95_without([2.0], [2.0]) is None


def _sf_plain(k: int, n: int, p: float) -> float:
    if k <= 0:
        return 1.0
    return min(
        1.0,
        sum(
            math.exp(
                math.lgamma(n + 1)
                - math.lgamma(i + 1)
                - math.lgamma(n - i + 1)
                + i * math.log(p)
                + (n - i) * math.log1p(-p)
            )
            for i in range(k, n + 1)
        ),
    )


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.integers(1, 400), st.floats(0.001, 0.999))
def test_binom_sf_stops_early_but_agrees(k, n, p):  # type: ignore[no-untyped-def]
    k = min(k, n)
    got, want = binom_sf(k, n, p), _sf_plain(k, n, p)
    assert abs(got - want) <= 1e-9 + 1e-6 * want


def test_binom_sf_at_cluster_scale():
    # 100,000 queries pooled from every vantage: 0.5 % healthy loss is 500 expected
    assert binom_sf(500, 100_000, 0.005) > 0.4
    assert beyond_noise(700, 100_000, 0.005) and not beyond_noise(520, 100_000, 0.005)
