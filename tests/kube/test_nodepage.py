"""The typed Node page decoder gives exactly the records parse_node gives, or declines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.kube.nodepage import decode_node_page
from probes.kube.topology import NODE_LABELS, parse_node

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real" / "nodes"


def page(items: Any, rv: str = "42", cont: str = "") -> bytes:
    meta: dict[str, str] = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    return orjson.dumps({"kind": "NodeList", "apiVersion": "v1", "metadata": meta, "items": items})


@pytest.mark.parametrize("fixture", sorted(p.name for p in REAL.glob("*.json")))
def test_real_nodes_decode_as_parse_node_reads_them(fixture: str) -> None:
    obj = orjson.loads((REAL / fixture).read_bytes())
    got = decode_node_page(page([obj], rv="7", cont="tok"))
    assert got is not None
    assert got.nodes == [(obj["metadata"]["name"], parse_node(obj))]
    assert (got.resource_version, got.cont) == ("7", "tok")


texts = st.text(alphabet="abcXYZ-_./:0123456789 ", max_size=12)
statuses = st.sampled_from(["True", "False", "Unknown", ""])
condition = st.fixed_dictionaries(
    {"type": st.sampled_from(["Ready", "NetworkUnavailable", "MemoryPressure"])},
    optional={"status": statuses, "reason": texts},
)
label_values = st.one_of(texts, st.sampled_from(["true", "overlay", "cilium", "enabled", "linux", "windows"]))
labels = st.dictionaries(st.one_of(st.sampled_from(NODE_LABELS), texts), label_values, max_size=8)
taint = st.fixed_dictionaries(
    {},
    optional={
        "key": st.one_of(texts, st.just("ToBeDeletedByClusterAutoscaler")),
        "effect": st.sampled_from(["NoSchedule", "NoExecute"]),
        "value": texts,
    },
)
spec = st.fixed_dictionaries(
    {},
    optional={
        "podCIDR": st.sampled_from(["", "10.244.1.0/24"]),
        "podCIDRs": st.lists(st.sampled_from(["", "10.244.1.0/24", "fd00::/64"]), max_size=2),
        "providerID": st.sampled_from(
            [
                "",
                "azure:///subscriptions/s/resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/aks-x-vmss/virtualMachines/4",
            ]
        ),
        "unschedulable": st.booleans(),
        "taints": st.lists(taint, max_size=3),
    },
)
status = st.fixed_dictionaries(
    {},
    optional={
        "addresses": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["InternalIP", "Hostname", "ExternalIP"]), "address": texts}
            ),
            max_size=3,
        ),
        "conditions": st.lists(condition, max_size=4),
        "nodeInfo": st.fixed_dictionaries(
            {}, optional={"kubeletVersion": texts, "osImage": texts, "operatingSystem": texts, "bootID": texts}
        ),
        "images": st.lists(
            st.fixed_dictionaries({"names": st.lists(texts, max_size=2), "sizeBytes": st.integers(0, 9)})
        ),
    },
)
node = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"name": st.text(alphabet="abc-0123", min_size=1, max_size=10)},
            optional={
                "labels": labels,
                "creationTimestamp": st.sampled_from(["", "2026-11-20T10:00:00Z", "not a time"]),
                "annotations": st.dictionaries(texts, texts, max_size=2),
            },
        )
    },
    optional={"spec": spec, "status": status},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(node, max_size=4))
def test_any_well_typed_page_decodes_as_parse_node_reads_it(items: list[dict[str, Any]]) -> None:
    got = decode_node_page(page(items))
    assert got is not None  # well-typed pages are never declined: the fast path is the one taken
    assert got.nodes == [(o["metadata"]["name"], parse_node(o)) for o in items]


@pytest.mark.parametrize(
    "bad",
    [
        {"metadata": {"labels": {"kubernetes.azure.com/agentpool": "p"}}},  # no name
        {"metadata": {"name": "n", "namespace": "default"}},  # a Node has no namespace
        {"metadata": {"name": "n", "labels": {"kubernetes.azure.com/agentpool": 3}}},  # label not a string
        {"metadata": {"name": "n"}, "spec": {"taints": [{"key": None, "effect": "NoSchedule"}]}},
        {"metadata": {"name": "n"}, "status": {"conditions": "Ready"}},
        "not an object",
    ],
)
def test_a_page_with_an_object_it_cannot_read_exactly_is_declined(bad: Any) -> None:
    good = {"metadata": {"name": "ok"}}
    assert decode_node_page(page([good, bad])) is None


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"items": {}}', b'{"metadata": [], "items": []}'])
def test_bodies_that_are_not_node_lists_are_declined(body: bytes) -> None:
    assert decode_node_page(body) is None


def test_an_empty_list_and_a_null_items_are_empty_pages() -> None:
    for body in (page([]), page(None)):
        got = decode_node_page(body)
        assert got is not None and got.nodes == [] and got.resource_version == "42"
