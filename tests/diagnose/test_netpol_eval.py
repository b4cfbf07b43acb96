"""The NetworkPolicy evaluation against hand-made policy sets (probes/diagnose/netpol.py):
Kubernetes semantics (no Egress policy = allowed, union of rules, ports, named ports,
endPort, ipBlock with except, namespaceSelector/podSelector), the node-local caches, and
Calico's order, actions, selectors and GlobalNetworkPolicies."""

from __future__ import annotations

from typing import Any

import pytest

from probes.diagnose.netpol import LOCALDNS_IP, NODELOCAL_IP, Dest, evaluate, verdict
from probes.kube.calicoselector import Unsupported, compile_selector
from probes.kube.policymodel import PodLabels, PolicyInputs, label_sets
from probes.kube.policyparse import parse_calico_policy, parse_kube_policy, parse_namespace, parse_pod_labels

DNS_IP = "10.0.0.10"
COREDNS = [
    PodLabels(
        "kube-system",
        f"coredns-{i}",
        (("k8s-app", "kube-dns"), ("pod-template-hash", "abc")),
        ip=f"10.244.{i}.5",
        ports=(("dns", "UDP", 53), ("dns-tcp", "TCP", 53), ("metrics", "TCP", 9153)),
    )
    for i in range(2)
]
APP = (("app", "web"),)
OTHER = (("app", "batch"),)


def knp(name: str, spec: dict[str, Any], ns: str = "shop") -> Any:
    return parse_kube_policy({"metadata": {"name": name, "namespace": ns}, "spec": spec})


def cnp(name: str, spec: dict[str, Any], ns: str = "shop") -> Any:
    return parse_calico_policy({"metadata": {"name": name, "namespace": ns}, "spec": spec}, "NetworkPolicy")


def gnp(name: str, spec: dict[str, Any]) -> Any:
    return parse_calico_policy({"metadata": {"name": name}, "spec": spec}, "GlobalNetworkPolicy")


def inputs(kube: list[Any] = (), calico: list[Any] | None = None, pods: tuple = (APP,)) -> PolicyInputs:  # type: ignore[assignment]
    nss = [
        ("kube-system", parse_namespace({"metadata": {"name": "kube-system"}})),
        ("shop", parse_namespace({"metadata": {"name": "shop", "labels": {"team": "a"}}})),
    ]
    workload = [PodLabels("shop", f"p{i}", labels) for i, labels in enumerate(pods)]
    return PolicyInputs(
        kube_policies=tuple(kube),
        calico_policies=tuple(calico or ()),
        namespaces=tuple(nss),
        label_sets=label_sets([*workload, *COREDNS]),
        kube_dns=tuple(COREDNS),
        kube_synced=True,
        calico="present" if calico is not None else "absent",
    )


def allowed(inp: PolicyInputs, dest: Dest, proto: str, labels: tuple = APP) -> bool | None:
    return verdict(inp, "shop", labels, dest, proto, DNS_IP).allowed


POD = Dest(COREDNS[0].ip, COREDNS[0])
NODELOCAL = Dest(NODELOCAL_IP)
UDP53 = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
TO_KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DENY_EGRESS = {"podSelector": {}, "policyTypes": ["Egress"]}


def test_no_policy_and_allow_all_allow() -> None:
    assert allowed(inputs(), NODELOCAL, "UDP") is True
    allow_all = knp("allow-all", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]})
    assert allowed(inputs([allow_all]), NODELOCAL, "TCP") is True
    assert evaluate(inputs([allow_all]), DNS_IP, nodelocal=True) == ()


def test_deny_all_egress_blocks_every_target() -> None:
    inp = inputs([knp("deny", DENY_EGRESS)])
    for dest in (POD, NODELOCAL, Dest(DNS_IP)):
        for proto in ("UDP", "TCP"):
            assert allowed(inp, dest, proto) is False
    (res,) = evaluate(inp, DNS_IP, nodelocal=False)
    (b,) = res.blocked
    assert b.policies == ("networkpolicy/shop/deny",) and b.targets == ("kube-dns-pods",) and b.needed
    assert b.protocols == ("UDP", "TCP")


def test_ingress_only_policy_does_not_restrict_egress() -> None:
    inp = inputs([knp("ing", {"podSelector": {}, "ingress": [{}]})])
    assert allowed(inp, POD, "UDP") is True


def test_allow_kube_dns_pods_only_misses_nodelocal() -> None:
    pol = knp("default-deny", {**DENY_EGRESS, "egress": [{"to": [TO_KUBE_DNS], "ports": UDP53}]})
    inp = inputs([pol])
    assert allowed(inp, POD, "UDP") is True and allowed(inp, POD, "TCP") is True
    assert allowed(inp, NODELOCAL, "UDP") is False
    assert allowed(inp, Dest(DNS_IP), "UDP") is False  # NodeLocal's own bind of the ClusterIP: no DNAT
    assert evaluate(inp, DNS_IP, nodelocal=False) == ()  # without NodeLocal, DNS works
    (res,) = evaluate(inp, DNS_IP, nodelocal=True)
    (b,) = res.blocked
    assert b.targets == ("cluster-ip", "nodelocal") and b.protocols == ("UDP", "TCP") and b.needed
    (loc,) = evaluate(inp, DNS_IP, localdns=True)
    assert loc.blocked[0].targets == ("localdns",)


def test_ipblock_for_nodelocal_and_clusterip_and_except() -> None:
    rule = {"to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}, {"ipBlock": {"cidr": f"{DNS_IP}/32"}}], "ports": UDP53}
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [rule, {"to": [TO_KUBE_DNS], "ports": UDP53}]})])
    assert evaluate(inp, DNS_IP, nodelocal=True) == ()
    carve = {"to": [{"ipBlock": {"cidr": "169.254.0.0/16", "except": ["169.254.20.0/24"]}}]}
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [carve]})])
    assert allowed(inp, NODELOCAL, "UDP") is False
    assert allowed(inp, Dest(LOCALDNS_IP), "UDP") is True
    # an ipBlock covering the CoreDNS pod IPs counts for the pods
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [{"to": [{"ipBlock": {"cidr": "10.244.0.0/16"}}]}]})])
    assert allowed(inp, POD, "TCP") is True


def test_udp_allowed_tcp_not() -> None:
    pol = knp("udp", {**DENY_EGRESS, "egress": [{"to": [TO_KUBE_DNS], "ports": [{"protocol": "UDP", "port": 53}]}]})
    inp = inputs([pol])
    assert allowed(inp, POD, "UDP") is True and allowed(inp, POD, "TCP") is False
    (res,) = evaluate(inp, DNS_IP)
    assert res.blocked[0].protocols == ("TCP",)


def test_port_defaults_to_tcp_and_end_port() -> None:
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [{"ports": [{"port": 53}]}]})])
    assert allowed(inp, POD, "TCP") is True and allowed(inp, POD, "UDP") is False
    rng = {"protocol": "UDP", "port": 50, "endPort": 60}
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [{"ports": [rng]}]})])
    assert allowed(inp, NODELOCAL, "UDP") is True
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [{"ports": [{**rng, "port": 54}]}]})])
    assert allowed(inp, NODELOCAL, "UDP") is False


def test_named_ports_resolve_on_the_destination_pod_only() -> None:
    ports = [{"protocol": "UDP", "port": "dns"}, {"protocol": "TCP", "port": "dns-tcp"}]
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [{"ports": ports}]})])
    assert allowed(inp, POD, "UDP") is True and allowed(inp, POD, "TCP") is True
    assert allowed(inp, NODELOCAL, "UDP") is False  # no pod there to name a port
    wrong = [{"protocol": "TCP", "port": "dns"}]  # "dns" is the UDP port's name
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [{"ports": wrong}]})])
    assert allowed(inp, POD, "TCP") is False


def test_pod_and_namespace_selector_combinations() -> None:
    pod_only = {"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}  # the policy's own namespace
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [{"to": [pod_only]}]})])
    assert allowed(inp, POD, "UDP") is False
    ns_only = {
        "namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["kube-system"]}]
        }
    }
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [{"to": [ns_only]}]})])
    assert allowed(inp, POD, "UDP") is True
    wrong_pods = {**TO_KUBE_DNS, "podSelector": {"matchLabels": {"k8s-app": "coredns"}}}
    inp = inputs([knp("p", {**DENY_EGRESS, "egress": [{"to": [wrong_pods]}]})])
    assert allowed(inp, POD, "UDP") is False


def test_policy_selects_some_pods_only() -> None:
    pol = knp("web", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]})
    inp = inputs([pol], pods=(APP, OTHER))
    assert allowed(inp, POD, "UDP", APP) is False and allowed(inp, POD, "UDP", OTHER) is True
    (res,) = evaluate(inp, DNS_IP)
    assert res.blocked[0].label_sets == 1 and res.blocked[0].of_label_sets == 2
    assert res.blocked[0].example == APP


def test_union_of_policies() -> None:
    deny = knp("deny", DENY_EGRESS)
    dns = knp("dns", {**DENY_EGRESS, "egress": [{"to": [TO_KUBE_DNS], "ports": UDP53}]})
    assert allowed(inputs([deny, dns]), POD, "UDP") is True


def test_unreadable_policy_cannot_be_evaluated() -> None:
    bad = knp(
        "bad",
        {
            "podSelector": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            "policyTypes": ["Egress"],
        },
    )
    assert bad.problem
    v = verdict(inputs([bad]), "shop", APP, POD, "UDP")
    assert v.allowed is None and "Gt" in v.why
    (res,) = evaluate(inputs([bad]), DNS_IP)
    assert res.blocked == () and res.unknown


# --- Calico --------------------------------------------------------------------------------
ALLOW_DNS = [
    {
        "action": "Allow",
        "protocol": "UDP",
        "destination": {
            "selector": "k8s-app == 'kube-dns'",
            "namespaceSelector": "projectcalico.org/name == 'kube-system'",
            "ports": [53],
        },
    },
    {
        "action": "Allow",
        "protocol": "TCP",
        "destination": {
            "selector": "k8s-app == 'kube-dns'",
            "namespaceSelector": "projectcalico.org/name == 'kube-system'",
            "ports": [53],
        },
    },
]


def test_calico_deny_before_allow_by_order() -> None:
    deny = cnp(
        "deny-dns",
        {
            "order": 100,
            "selector": "all()",
            "types": ["Egress"],
            "egress": [{"action": "Deny", "protocol": "UDP", "destination": {"ports": [53]}}],
        },
    )
    allow = cnp("allow-dns", {"order": 200, "selector": "all()", "types": ["Egress"], "egress": ALLOW_DNS})
    inp = inputs(calico=[allow, deny])
    v = verdict(inp, "shop", APP, POD, "UDP")
    assert v.allowed is False and v.policies == ("calico-networkpolicy/shop/deny-dns",) and v.rule_index == 0
    assert allowed(inp, POD, "TCP") is True  # the deny is UDP only
    # swap the orders: the allow comes first
    early = cnp("allow-dns", {"order": 50, "selector": "all()", "types": ["Egress"], "egress": ALLOW_DNS})
    assert allowed(inputs(calico=[early, deny]), POD, "UDP") is True


def test_calico_unordered_policy_comes_last_and_kube_policy_at_1000() -> None:
    deny = cnp("z-deny", {"selector": "all()", "types": ["Egress"], "egress": [{"action": "Deny"}]})
    kube_allow = knp("allow-dns", {**DENY_EGRESS, "egress": [{"to": [TO_KUBE_DNS], "ports": UDP53}]})
    assert allowed(inputs([kube_allow], calico=[deny]), POD, "UDP") is True
    early_deny = cnp("deny", {"order": 10, "selector": "all()", "types": ["Egress"], "egress": [{"action": "Deny"}]})
    v = verdict(inputs([kube_allow], calico=[early_deny]), "shop", APP, POD, "UDP")
    assert v.allowed is False and v.policies == ("calico-networkpolicy/shop/deny",)


def test_calico_pass_log_and_end_of_tier() -> None:
    log_then_pass = cnp(
        "p", {"order": 1, "selector": "all()", "types": ["Egress"], "egress": [{"action": "Log"}, {"action": "Pass"}]}
    )
    assert allowed(inputs(calico=[log_then_pass]), NODELOCAL, "UDP") is True
    only_pods = cnp("p", {"order": 1, "selector": "all()", "types": ["Egress"], "egress": ALLOW_DNS})
    inp = inputs(calico=[only_pods])
    assert allowed(inp, POD, "UDP") is True
    v = verdict(inp, "shop", APP, NODELOCAL, "UDP")
    assert v.allowed is False and v.rule_index is None and "no egress rule" in v.why


def test_calico_nets_and_services() -> None:
    nets = cnp(
        "p",
        {
            "selector": "app == 'web'",
            "types": ["Egress"],
            "egress": [
                {"action": "Allow", "protocol": "UDP", "destination": {"nets": ["169.254.20.10/32"], "ports": ["53"]}}
            ],
        },
    )
    inp = inputs(calico=[nets])
    assert allowed(inp, NODELOCAL, "UDP") is True and allowed(inp, NODELOCAL, "TCP") is False
    assert allowed(inp, NODELOCAL, "TCP", OTHER) is True  # the policy does not select batch pods
    svc = cnp(
        "s",
        {
            "selector": "all()",
            "types": ["Egress"],
            "egress": [
                {"action": "Allow", "destination": {"services": {"name": "kube-dns", "namespace": "kube-system"}}}
            ],
        },
    )
    inp = inputs(calico=[svc])
    assert allowed(inp, POD, "TCP") is True and allowed(inp, NODELOCAL, "TCP") is False


def g_spec() -> dict[str, Any]:
    return {
        "order": 10,
        "namespaceSelector": "team == 'a'",
        "selector": "all()",
        "types": ["Egress"],
        "egress": [{"action": "Deny", "protocol": "UDP", "destination": {"nets": ["169.254.0.0/16"]}}],
    }


def test_global_network_policy_applies_by_namespace_selector() -> None:
    g = gnp("deny-egress", g_spec())
    inp = inputs(calico=[g])
    v = verdict(inp, "shop", APP, NODELOCAL, "UDP")
    assert v.allowed is False and v.policies == ("globalnetworkpolicy/deny-egress",)
    # Calico: a policy that selects the pod and matches no rule denies at the end of the tier
    v = verdict(inp, "shop", APP, POD, "UDP")
    assert v.allowed is False and "no egress rule" in v.why
    assert verdict(inp, "kube-system", (("k8s-app", "x"),), NODELOCAL, "UDP").allowed is True
    (res,) = evaluate(inp, DNS_IP, nodelocal=True)
    assert res.namespace == "shop" and res.blocked[0].targets == ("cluster-ip", "nodelocal", "kube-dns-pods")
    # with an allow-everything rule after the deny, only the link-local cache over UDP is blocked
    g2 = gnp("deny-egress", {**g_spec(), "egress": [*g_spec()["egress"], {"action": "Allow"}]})
    (res,) = evaluate(inputs(calico=[g2]), DNS_IP, nodelocal=True)
    (b,) = res.blocked
    assert b.targets == ("nodelocal",) and b.protocols == ("UDP",) and b.rule_index == 0


def test_calico_unsupported_selector_and_tier_cannot_be_evaluated() -> None:
    g = gnp("g", {"selector": "global()", "types": ["Egress"], "egress": [{"action": "Allow"}]})
    assert verdict(inputs(calico=[g]), "shop", APP, POD, "UDP").allowed is None
    t = cnp("t", {"tier": "security", "selector": "all()", "types": ["Egress"], "egress": [{"action": "Allow"}]})
    v = verdict(inputs(calico=[t]), "shop", APP, POD, "UDP")
    assert v.allowed is None and "tier" in v.why


@pytest.mark.parametrize(
    ("text", "labels", "want"),
    [
        ("", {}, True),
        ("all()", {"a": "1"}, True),
        ("a == '1'", {"a": "1"}, True),
        ('a == "1"', {"a": "2"}, False),
        ("a != '1'", {}, True),
        ("has(a) && !has(b)", {"a": "x"}, True),
        ("has(a) && !has(b)", {"a": "x", "b": "y"}, False),
        ("a in {'x', 'y'}", {"a": "y"}, True),
        ("a not in {'x'}", {}, True),
        ("a == 'x' || (b == 'y' && c != 'z')", {"b": "y", "c": "q"}, True),
        ("!(a == 'x')", {"a": "x"}, False),
        ("k8s-app starts with 'kube'", {"k8s-app": "kube-dns"}, True),
        ("projectcalico.org/name ends with 'system'", {"projectcalico.org/name": "kube-system"}, True),
        ("a contains 'b'", {"a": "abc"}, True),
    ],
)
def test_calico_selector_subset(text: str, labels: dict[str, str], want: bool) -> None:
    assert compile_selector(text)(labels) is want


@pytest.mark.parametrize("text", ["global()", "a ==", "a = 'x'", "a in {'x'", "(a == 'x'", "a == 'x' b"])
def test_calico_selector_outside_the_subset(text: str) -> None:
    with pytest.raises(Unsupported):
        compile_selector(text)


def test_pod_labels_keep_ports_of_coredns_only() -> None:
    spec = {"containers": [{"ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]}]}
    dns = parse_pod_labels(
        {
            "metadata": {"name": "c", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": spec,
            "status": {"podIP": "10.1.1.1", "phase": "Running"},
        }
    )
    assert dns.ports == (("dns", "UDP", 53),) and dns.ip == "10.1.1.1"
    app = parse_pod_labels(
        {
            "metadata": {"name": "a", "namespace": "shop"},
            "spec": {**spec, "hostNetwork": True},
            "status": {"phase": "Succeeded"},
        }
    )
    assert app.ports == () and app.host_network and not app.running
    assert label_sets([app]) == ()
