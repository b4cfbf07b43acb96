"""Rule F21 (probes/diagnose/dnspolicy.py) on hand-made inputs: it names the namespace,
the policy, the protocols and the target, gives the exact rule to add, fires only where
selected pods exist and only for a target the pods use now, waits for complete inputs,
and says "cannot evaluate" (info) rather than guess."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from probes.diagnose import Severity, diagnose, observe
from probes.kube.model import PodState
from probes.kube.policymodel import PodLabels, PolicyInputs, label_sets
from probes.kube.topology import build_topology
from tests.diagnose.test_netpol_eval import APP, DENY_EGRESS, TO_KUBE_DNS, UDP53, cnp, gnp, inputs, knp


def topo(nodelocal: bool) -> Any:
    nl = [PodState("kube-system", "node-local-dns-a", "n1", "10.224.0.4", "Running", True)] if nodelocal else []
    return build_topology({}, cluster="c", nodelocal=nl, dns_service_ip="10.0.0.10")


def f21(inp: PolicyInputs, nodelocal: bool = True) -> list[Any]:
    return [f for f in diagnose(observe(topo(nodelocal), policies=inp)) if f.fault == "F21"]


ONLY_PODS = {**DENY_EGRESS, "egress": [{"to": [TO_KUBE_DNS], "ports": UDP53}]}


def test_allow_kube_dns_pods_only_with_nodelocal_names_policy_targets_and_fix() -> None:
    (f,) = f21(inputs([knp("default-deny", ONLY_PODS)]))
    assert f.severity is Severity.WARNING and f.rule == "netpol-blocks-dns"
    assert f.subject == "networkpolicy/shop/default-deny"
    assert "shop" in f.cause and "UDP 53 and TCP 53" in f.cause and "169.254.20.10" in f.cause
    assert "10.0.0.10" in f.cause  # NodeLocal binds the ClusterIP: no DNAT, the policy sees it
    assert f.evidence["namespace"] == "shop" and "app=web" in f.evidence["pods"]
    # the exact rule: appended to the existing egress rules, both addresses, both protocols
    patch = json.loads(f.next_step.split("-p '", 1)[1].rstrip("'"))
    assert patch == [
        {
            "op": "add",
            "path": "/spec/egress/-",
            "value": {
                "to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}, {"ipBlock": {"cidr": "169.254.20.10/32"}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
        }
    ]
    assert f.next_step.count("kubectl -n shop patch networkpolicy default-deny --type=json") == 1


def test_same_policy_without_nodelocal_is_healthy() -> None:
    assert f21(inputs([knp("default-deny", ONLY_PODS)]), nodelocal=False) == []


def test_deny_all_without_egress_rules_adds_the_list_and_the_pods_peer() -> None:
    (f,) = f21(inputs([knp("deny", DENY_EGRESS)]), nodelocal=False)
    patch = json.loads(f.next_step.split("-p '", 1)[1].rstrip("'"))
    assert patch[0]["path"] == "/spec/egress" and isinstance(patch[0]["value"], list)
    assert patch[0]["value"][0]["to"] == [TO_KUBE_DNS]
    assert "kube-dns pods" in f.cause


def test_nodelocal_allowed_but_coredns_blocked_is_evidence_not_a_finding() -> None:
    rule = {"to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}, {"ipBlock": {"cidr": "10.0.0.10/32"}}], "ports": UDP53}
    assert f21(inputs([knp("p", {**DENY_EGRESS, "egress": [rule]})])) == []  # the fallback alone: no warning
    (f,) = f21(inputs([knp("p", DENY_EGRESS)]))
    assert "kube-dns pods" in f.evidence["also_blocked"]


def test_no_pods_selected_no_finding() -> None:
    pol = knp("web-only", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]})
    assert f21(inputs([pol], pods=((("app", "batch"),),))) == []
    assert f21(inputs([pol], pods=())) == []
    (f,) = f21(inputs([pol], pods=(APP, (("app", "batch"),))))
    assert "1 of 2 label sets" in f.evidence["pods"]


def test_waits_for_complete_inputs() -> None:
    inp = inputs([knp("default-deny", ONLY_PODS)])
    assert f21(msgspec.structs.replace(inp, kube_synced=False)) == []
    assert f21(msgspec.structs.replace(inp, calico="unknown")) == []
    assert f21(PolicyInputs()) == []
    forbidden = f21(msgspec.structs.replace(inp, calico="forbidden"))
    assert len(forbidden) == 1 and "403" in forbidden[0].evidence["calico"]


def test_udp_only_rule_reports_tcp() -> None:
    udp = {**DENY_EGRESS, "egress": [{"to": [TO_KUBE_DNS], "ports": [{"protocol": "UDP", "port": 53}]}]}
    (f,) = f21(inputs([knp("udp", udp)]), nodelocal=False)
    assert "(TCP 53)" in f.cause and "UDP" not in f.cause
    assert '"ports":[{"protocol":"TCP","port":53}]' in f.next_step


def test_calico_deny_names_the_rule_to_insert_before() -> None:
    g = gnp(
        "deny-ll",
        {
            "order": 10,
            "selector": "all()",
            "types": ["Egress"],
            "egress": [
                {"action": "Deny", "protocol": "UDP", "destination": {"nets": ["169.254.0.0/16"]}},
                {"action": "Allow"},
            ],
        },
    )
    found = f21(inputs(calico=[g]))
    # a GlobalNetworkPolicy without a namespaceSelector applies in every namespace: kube-system too
    assert sorted(x.evidence["namespace"] for x in found) == ["kube-system", "shop"]
    (f,) = [x for x in found if x.evidence["namespace"] == "shop"]
    assert f.subject == "globalnetworkpolicy/deny-ll@shop" and f.cause.startswith("Calico GlobalNetworkPolicy deny-ll")
    assert "before egress rule #1" in f.next_step and "calicoctl edit globalnetworkpolicy deny-ll" in f.next_step
    assert "nets: [169.254.20.10/32]" in f.next_step and "protocol: UDP" in f.next_step
    assert f.evidence["policy_engine"] == "calico"


def test_cannot_evaluate_is_info() -> None:
    c = cnp("odd", {"selector": "global()", "types": ["Egress"], "egress": [{"action": "Allow"}]})
    (f,) = f21(inputs(calico=[c]))
    assert f.severity is Severity.INFO and f.rule == "netpol-not-evaluated" and f.subject == "namespace/shop"
    assert "global()" in f.evidence["why"][0]


def test_hostnetwork_and_finished_pods_are_not_judged() -> None:
    inp = inputs([knp("deny", DENY_EGRESS)], pods=())
    pods = [PodLabels("shop", "h", APP, host_network=True), PodLabels("shop", "d", APP, running=False)]
    assert f21(msgspec.structs.replace(inp, label_sets=label_sets(pods))) == []
