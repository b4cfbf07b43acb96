"""probes.azure.rawread: an ARM list read as JSON through a real azure-mgmt-network
client's pipeline, against a loopback ARM serving real shapes (tests/support/fixture_arm)."""

from __future__ import annotations

import copy
from typing import Any
from unittest import mock

import pytest

from probes.azure import rawread
from probes.azure.cloud import PlaceholderCredential
from probes.azure.routes import parse_route_table
from probes.azure.service import _classify
from tests.support.fixture_arm import FixtureArm, fixture

SUB = "7c1e4b2a-3d5f-4a6b-9c8d-0e1f2a3b4c5d"
RG = "MC_rg-shop_aks-shop_northeurope"
LIST = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/routeTables"
HTTP = {"enforce_https": False}  # a plain-HTTP loopback endpoint, as the service passes it


def client(arm: FixtureArm) -> Any:
    from azure.mgmt.network import NetworkManagementClient

    return NetworkManagementClient(PlaceholderCredential(), SUB, base_url=arm.url, retry_total=0)


def first_page() -> Any:
    from azure.mgmt.network.operations._operations import build_route_tables_list_request

    return build_route_tables_list_request(RG, SUB)


def two_tables() -> tuple[dict[str, Any], dict[str, Any]]:
    a = fixture("arm/routetable-kubenet.json")
    b = copy.deepcopy(a)
    b["name"] = "aks-spot-20481632-routetable"
    b["id"] = a["id"].replace(a["name"], b["name"])
    b["properties"]["routes"] = b["properties"]["routes"][:1]
    return a, b


def test_pages_are_followed_and_items_read_as_the_sdk_reads_them():
    """Two pages (the second behind nextLink): every table once, and each one parses to
    the routes the SDK's models (as_dict) give."""
    a, b = two_tables()
    with FixtureArm() as arm:
        arm.bodies[LIST.lower()] = {"value": [a], "nextLink": f"{arm.url}{LIST}/page2?api-version=2024-07-01"}
        arm.bodies[f"{LIST}/page2".lower()] = {"value": [b]}
        net = client(arm)
        raw = rawread.list_raw(net, first_page(), **HTTP)
        via_models = [x.as_dict() for x in net.route_tables.list(RG, **HTTP)]
    assert [t["name"] for t in raw] == [a["name"], b["name"]] == [t["name"] for t in via_models]
    assert [parse_route_table(t) for t in raw] == [parse_route_table(t) for t in via_models]
    name, routes, subnets = parse_route_table(raw[0])
    assert [(r.name, r.prefix, r.next_hop_ip) for r in routes] == [
        (f"aks-agentpool-20481632-vmss00000{i}", f"10.244.{i}.0/24", f"10.224.0.{4 + i}") for i in range(3)
    ]
    assert subnets and subnets[0].endswith("/subnets/aks-subnet")


def test_an_error_answer_is_the_sdk_error_the_service_classifies():
    with FixtureArm() as arm:
        arm.forbidden[LIST.lower()] = "Microsoft.Network/routeTables/read"
        with pytest.raises(Exception) as e:
            rawread.list_raw(client(arm), first_page(), **HTTP)
    err = _classify(e.value, LIST)
    assert (err.kind, err.status, err.code) == ("forbidden", 403, "AuthorizationFailed")
    assert "Microsoft.Network/routeTables/read" in err.message


@pytest.mark.parametrize("body", [{"values": []}, ["not", "a", "list"], "text", {"value": {"a": 1}}])
def test_a_body_that_is_not_an_arm_list_is_malformed(body):
    with FixtureArm() as arm:
        arm.bodies[LIST.lower()] = body
        with pytest.raises(Exception) as e:
            rawread.list_raw(client(arm), first_page(), **HTTP)
    err = _classify(e.value, LIST)
    assert err.kind == "malformed"


def test_a_next_link_loop_ends():
    with FixtureArm() as arm:
        arm.bodies[LIST.lower()] = {"value": [], "nextLink": f"{arm.url}{LIST}?api-version=2024-07-01"}
        with mock.patch.object(rawread, "MAX_PAGES", 3), pytest.raises(Exception) as e:
            rawread.list_raw(client(arm), first_page(), **HTTP)
        asked = [p for p in arm.requests if p == LIST.lower()]
    assert _classify(e.value, LIST).kind == "malformed" and len(asked) == 3
