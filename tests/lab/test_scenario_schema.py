"""The scenario format as msgspec structs (probes/lab/scenario/schema.py): errors name the
file and the key path in one line, and docs/scenario.schema.json is generated from it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from probes.lab.dnsspec import parse_dns_section
from probes.lab.egressspec import parse_egress_section
from probes.lab.scenario import ScenarioError, builtin_names, parse_scenario
from probes.lab.scenario.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"cluster": {"name": "c1", "resourceGroup": "rg"}, "pools": [{"name": "sys", "mode": "System", "count": 2}]}


def error_of(over: dict) -> str:
    d = copy.deepcopy(MINIMAL)
    d.update(over)
    with pytest.raises(ScenarioError) as ei:
        parse_scenario(d, "x.yaml")
    return str(ei.value)


@pytest.mark.parametrize(
    "over, message",
    [
        # unknown keys, at every depth, list what is allowed
        (
            {"cluster": {"name": "c1", "resourceGroup": "rg", "colour": 1}},
            "x.yaml: cluster.colour: unknown key (allowed: age, dnsServiceIP, kubernetesVersion, localDNS, location, "
            "name, networkDataplane, networkPlugin, nodeImageVersion, nodeLocalDNS, nodeLocalDNSIP, nodeResourceGroup, podCidr, "
            "resourceGroup, serviceCidr, subnetCidr, subscriptionId, vnetCidr)",
        ),
        (
            {"services": [{"name": "web", "ports": [{"port": 80, "colour": 1}]}]},
            "x.yaml: services[0].ports[0].colour: unknown key (allowed: name, nodePort, port, protocol, targetPort)",
        ),
        (
            {"timeline": [{"at": "5s", "action": "node-add", "pool": "sys", "reason": "x"}]},
            "x.yaml: timeline[0].reason: unknown key (allowed: action, at, pool, ready)",
        ),
        (
            {"azure": {"nodes": {"sys/0": {"rampTo": 9, "colour": 1}}}},
            "x.yaml: azure.nodes.sys/0.colour: unknown key (allowed: failedPerMinute, rampDuration, rampStart, rampTo, usedPorts)",
        ),
        # wrong types
        (
            {"pools": [{"name": "sys", "mode": "System", "count": True}]},
            "x.yaml: pools[0].count: expected a non-negative integer, got True",
        ),
        (
            {"cluster": {"name": "c1", "resourceGroup": "rg", "nodeLocalDNS": "yes"}},
            "x.yaml: cluster.nodeLocalDNS: expected true or false, got 'yes'",
        ),
        (
            {"services": [{"name": "web", "ports": [{"port": 80}], "labels": {1: "a"}}]},
            "x.yaml: services[0].labels: expected a mapping of strings, got {1: 'a'}",
        ),
        ({"coredns": 3}, "x.yaml: coredns: expected a mapping, got 3"),
        ({"timeline": 5}, "x.yaml: timeline: expected a list, got 5"),
        (
            {"routes": {"missing": [True]}},
            "x.yaml: routes.missing[0]: expected a node index, 'pool/N' or a node name, got True",
        ),
        (
            {"services": [{"name": "web", "ports": [{"port": 80}], "labels": {"a": None}}]},
            "x.yaml: services[0].labels.a: expected a string, got None",
        ),
        (
            {"dns": {"names": {"external": {"a.example": None}}}},
            "x.yaml: dns.names.external.a.example: must be an IPv4 address, got None",
        ),
        (
            {1: "x"},
            "x.yaml: 1: unknown top-level key (allowed: azure, cluster, coredns, description, dns, egress, egressGateway, ingress, name, network, "
            "nodes, policies, pools, routes, services, timeline)",
        ),
        # ranges
        ({"coredns": {"replicas": 200}}, "x.yaml: coredns.replicas: expected a non-negative integer <= 100, got 200"),
        ({"azure": {"outboundIPs": 17}}, "x.yaml: azure.outboundIPs: expected a positive integer <= 16, got 17"),
        # nested key paths through mappings keyed by the user's names
        (
            {"azure": {"nodes": {"sys/0": {"rampTo": "lots"}}}},
            "x.yaml: azure.nodes.sys/0.rampTo: expected a non-negative integer, got 'lots'",
        ),
        (
            {"dns": {"nodes": {"sys/1": {"nodelocal": {"tcp": "no"}}}}},
            "x.yaml: dns.nodes.sys/1.nodelocal.tcp: must be true or false, got 'no'",
        ),
        (
            {"dns": {"pods": {"coredns-x": {"changes": [{"at": 1}, {"at": "2s", "txt_size": 0}]}}}},
            "x.yaml: dns.pods.coredns-x.changes[1].txt_size: must be an integer from 1 to 60000, got 0",
        ),
        ({"egress": {"nodes": {"sys/0": ["x"]}}}, "x.yaml: egress.nodes.sys/0: must be a mapping of name: rule"),
        # what a key is missing, and a kind of item that does not exist
        ({"services": [{"name": "web"}]}, "x.yaml: services[0].ports: required key is missing"),
        (
            {"timeline": [{"at": "5s", "action": "explode"}]},
            "x.yaml: timeline[0].action: expected one of node-add, "
            "node-remove, node-ready, node-notready, node-cordon, node-uncordon, node-route-missing, node-route-created, "
            "pod-ready, pod-notready, service-external-ip, got 'explode'",
        ),
        (
            {"dns": {"upstream": {"changes": [{"behaviour": "drop"}]}}},
            "x.yaml: dns.upstream.changes[0].at: missing; say when the change happens, e.g. '30s'",
        ),
    ],
)
def test_schema_errors_are_one_line_with_the_key_path(over, message):
    got = error_of(over)
    assert got == message
    assert "\n" not in got


def test_null_means_the_default():
    d = copy.deepcopy(MINIMAL)
    d["cluster"]["location"] = None
    d["pools"][0]["maxPods"] = None
    d["coredns"] = None
    d["dns"] = None
    sc = parse_scenario(d, "x.yaml")
    assert sc.cluster.location == "westeurope" and sc.pools[0].max_pods == 110 and sc.coredns.replicas == 2
    assert "dns" not in sc.extra


def test_sections_parse_alone_with_their_own_prefix():
    with pytest.raises(
        ValueError, match=r"^s\.yaml: dns\.nodes\.n1\.kube-dns\.delay\.uniform: must be \[low_ms, high_ms\]$"
    ):
        parse_dns_section({"nodes": {"n1": {"kube-dns": {"delay": {"uniform": 5}}}}}, "s.yaml")
    with pytest.raises(ValueError, match=r"^s\.yaml: egress\.colour: unknown key; expected one of names, nodes$"):
        parse_egress_section({"colour": 1}, "s.yaml")


def test_the_committed_json_schema_is_current():
    committed = json.loads((ROOT / "docs" / "scenario.schema.json").read_text("utf-8"))
    assert committed == json_schema(), "run scripts/scenario_schema.py"
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "scenario_schema.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


def test_every_builtin_scenario_validates_against_the_json_schema():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    for name in builtin_names():
        data = yaml.safe_load((ROOT / "probes" / "lab" / "scenarios" / f"{name}.yaml").read_text("utf-8"))
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in v.iter_errors(data)]
        assert errors == [], name


def test_the_json_schema_rejects_what_the_loader_rejects():
    v = jsonschema.Draft202012Validator(json_schema())
    bad = copy.deepcopy(MINIMAL)
    bad["pools"][0]["colour"] = "red"
    assert not v.is_valid(bad)
    bad = copy.deepcopy(MINIMAL)
    bad["timeline"] = [{"at": "5s", "action": "explode"}]
    assert not v.is_valid(bad)
