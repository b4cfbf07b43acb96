"""results_for's index of the HTTPS rows by host: kept while a frame's mapping has the
same keys (a new result is a new mapping, the same keys), made again when they move."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from probes.engine.history import History
from probes.ingress import served as sv
from probes.ingress.view import HostRow
from tests.ingress.helpers import answer, served

LB = "20.31.150.10"


def row(host: str, *ips: str) -> HostRow:
    return HostRow(host, "nginx", f"ingress apps/{host}", (LB,), (answer(host, *ips),), "ok", None, ())


def mapping(h: History) -> MappingProxyType:
    return MappingProxyType({k: h.stats(k) for k in h.keys()})


def test_a_new_result_is_read_and_new_keys_are_found() -> None:
    h = History()
    for host in ("a.contoso.com", "b.contoso.com"):
        r = served(host, LB, days=60)
        h.add(r.key, r)
    first = mapping(h)
    assert [k.host for k, _ in sv.results_for(first, row("a.contoso.com", LB))] == ["a.contoso.com"]
    r = served("a.contoso.com", LB, "expired", days=-1)
    h.add(r.key, r)
    second = mapping(h)  # the same keys, a new stats object for a
    ((k, st),) = sv.results_for(second, row("a.contoso.com", LB))
    assert st is second[k] and st.last_outcome == "expired"
    assert sv._INDEX[1] is not None and sv._INDEX[0] is second
    # one key replaced by another: as many keys, not the same ones
    h2 = History()
    for host in ("a.contoso.com", "c.contoso.com"):
        r = served(host, LB, days=60)
        h2.add(r.key, r)
    third = mapping(h2)
    assert sv.results_for(third, row("b.contoso.com", LB)) == []
    assert [k.host for k, _ in sv.results_for(third, row("c.contoso.com", LB))] == ["c.contoso.com"]
    assert set(sv.by_host(third)) == {"a.contoso.com", "c.contoso.com"}


def test_the_resolved_address_comes_first_and_unprobed_rows_are_left_out() -> None:
    h = History()
    for addr in (LB, "20.31.99.7"):
        r = served("a.contoso.com", addr, days=60)
        h.add(r.key, r)
    stats = dict(mapping(h))
    got = sv.results_for(stats, row("a.contoso.com", "20.31.99.7"))
    assert [k.address for k, _ in got] == ["20.31.99.7", LB]
    key = got[0][0]
    stats[key] = dataclasses.replace(stats[key], attempts=0)  # a row never probed yet
    assert [k.address for k, _ in sv.results_for(MappingProxyType(stats), row("a.contoso.com", "20.31.99.7"))] == [LB]
