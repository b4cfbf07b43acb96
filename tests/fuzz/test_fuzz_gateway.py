"""Fuzzing the static egress gateway's parsers: any JSON shape of a StaticGatewayConfiguration
or a pod parses into a record (or None for a pod that is not annotated), and the rules and the
egress-identity text over what was parsed never raise."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.azure.egressid import gateway_lines, gateway_summary
from probes.diagnose import Observations, diagnose
from probes.kube.gatewaymodel import ANNOTATION, GatewayConfig, GatewayData, GatewayPod
from probes.kube.gatewayparse import parse_gateway_config, parse_gateway_pod
from tests.diagnose.test_rules import NOW, topology
from tests.fuzz.strategies import json_like

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [
    "metadata", "spec", "status", "name", "namespace", "annotations", ANNOTATION, "creationTimestamp",
    "gatewayNodepoolName", "gatewayVmssProfile", "vmssName", "vmssResourceGroup", "publicIpPrefixSize",
    "provisionPublicIps", "publicIpPrefixId", "excludeCidrs", "excludeCIDRs", "egressIpPrefix",
    "gatewayServerProfile", "ip", "nodeName", "phase", "Running", "Succeeded",
]  # fmt: skip
OBJECT = json_like(KEYS, leaves=30)
TOPO = topology()


@FUZZ
@given(objs=st.lists(OBJECT, max_size=4), pods=st.lists(OBJECT, max_size=4))
def test_gateway_objects_parse_and_are_judged(objs, pods):
    configs = tuple(parse_gateway_config(o if isinstance(o, dict) else {"spec": o}) for o in objs)
    assert all(isinstance(c, GatewayConfig) for c in configs)
    parsed = [parse_gateway_pod(o if isinstance(o, dict) else {"metadata": o}) for o in pods]
    assert all(p is None or (isinstance(p, GatewayPod) and p.gateway) for p in parsed)
    data = GatewayData("present", configs, tuple(p for p in parsed if p is not None), True)
    findings = diagnose(Observations(TOPO, {}, NOW, gateways=data))
    assert all(f.next_step for f in findings if f.rule.startswith("sgc-"))
    for p in data.pods:
        assert all(isinstance(line, str) for line in gateway_lines(data, p.node, "userpool"))
    assert isinstance(gateway_summary(data), str)
