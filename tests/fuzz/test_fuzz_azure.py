"""Fuzzing the Azure parsers: Azure Monitor metrics bodies (snat.parse_metrics) and ARM
route tables and subnets (routes). Only MetricsError may escape parse_metrics; the route
parsers take whatever the SDK's as_dict() gives and never raise."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.azure.routes import RouteData, compare, parse_route_table, parse_subnet, routes_json, split_subnet_id
from probes.azure.snat import MetricsError, parse_metrics
from probes.kube.topology import parse_node
from tests.fuzz.strategies import SCALARS, json_like

FUZZ = settings(max_examples=250, deadline=None)

METRIC_KEYS = [
    "value", "name", "value", "localizedValue", "unit", "timeseries", "metadatavalues", "data", "timeStamp",
    "average", "maximum", "minimum", "total", "count", "timespan", "interval", "id", "type", "errorCode",
    "BackendIPAddress", "ProtocolType", "2024-01-01T00:00:00Z",
]  # fmt: skip


def _metrics_body():
    point = st.fixed_dictionaries(
        {"timeStamp": st.sampled_from(["2024-01-01T00:00:00Z", "x", ""]) | SCALARS},
        optional={k: SCALARS for k in ("average", "maximum", "minimum", "total", "count")},
    )
    series = st.fixed_dictionaries(
        {
            "metadatavalues": st.lists(
                st.fixed_dictionaries({"name": json_like(METRIC_KEYS, leaves=4), "value": SCALARS}), max_size=2
            )
            | SCALARS,
            "data": st.lists(point, max_size=4) | SCALARS,
        }
    )
    metric = st.fixed_dictionaries(
        {
            "name": st.fixed_dictionaries({"value": SCALARS}) | SCALARS,
            "timeseries": st.lists(series, max_size=3) | SCALARS,
        },
        optional={"unit": SCALARS, "id": SCALARS},
    )
    return st.fixed_dictionaries({"value": st.lists(metric, max_size=3) | SCALARS}, optional={"timespan": SCALARS})


def _parse(payload) -> None:
    try:
        out = parse_metrics(payload)
    except MetricsError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(out, list)


@FUZZ
@given(body=_metrics_body() | json_like(METRIC_KEYS, leaves=30))
def test_metrics_structured(body):
    _parse(body)
    try:
        raw = orjson.dumps(body)
    except orjson.JSONEncodeError:
        return
    _parse(raw)
    _parse(raw.decode())


@FUZZ
@given(raw=st.binary(max_size=300))
def test_metrics_bytes(raw):
    _parse(raw)


ROUTE_KEYS = [
    "name", "properties", "routes", "addressPrefix", "nextHopType", "nextHopIpAddress", "subnets", "id",
    "addressPrefixes", "ipConfigurations", "VirtualAppliance", "None",
]  # fmt: skip
ARM = json_like(ROUTE_KEYS, leaves=30)


@FUZZ
@given(tables=st.lists(ARM, max_size=3), subnet=ARM, sid=st.text(max_size=80) | SCALARS)
def test_route_tables_and_subnets(tables, subnet, sid):
    routes = []
    for d in tables:
        name, rs, subs = parse_route_table(d)
        assert isinstance(name, str) and all(isinstance(s, str) for s in subs)
        routes.extend(rs)
    sub = parse_subnet(subnet)
    assert split_subnet_id(sid) is None or len(split_subnet_id(sid)) == 3
    nodes = [
        parse_node({"metadata": {"name": "aks-n-0"}, "spec": {"podCIDR": "10.244.0.0/24"}}),
        parse_node({"metadata": {"name": "aks-n-1"}, "spec": {"podCIDRs": ["not-a-cidr", "fd00::/64"]}}),
    ]
    data = RouteData(tables=("t",), routes=tuple(routes), subnet=sub)
    compare(data, nodes)
    routes_json(data, nodes)
