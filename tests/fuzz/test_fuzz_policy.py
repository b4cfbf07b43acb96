"""Fuzzing the NetworkPolicy parsers and the evaluation: any JSON shape of a Kubernetes or
Calico policy, namespace or pod parses into a record (a policy it cannot read carries a
`problem`), any text as a Calico selector compiles or raises Unsupported, and the
evaluation of what was parsed never raises (a verdict it cannot make is None)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.diagnose.netpol import Dest, evaluate, verdict
from probes.kube.calicoselector import Unsupported, compile_selector
from probes.kube.policymodel import CalicoPolicy, KubePolicy, PodLabels, PolicyInputs, label_sets
from probes.kube.policyparse import parse_calico_policy, parse_kube_policy, parse_namespace, parse_pod_labels
from tests.fuzz.strategies import SCALARS, json_like

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [
    "metadata", "spec", "name", "namespace", "labels", "podSelector", "namespaceSelector", "matchLabels",
    "matchExpressions", "key", "operator", "values", "In", "NotIn", "Exists", "policyTypes", "Egress", "egress",
    "to", "ports", "port", "endPort", "protocol", "ipBlock", "cidr", "except", "order", "selector", "types",
    "action", "Allow", "Deny", "Pass", "destination", "source", "nets", "notNets", "notPorts", "services",
    "notSelector", "tier", "status", "podIP", "phase", "containers", "hostNetwork", "containerPort", "k8s-app",
]  # fmt: skip
OBJECT = json_like(KEYS, leaves=40)
SELECTOR_TEXT = st.text(max_size=40) | st.lists(
    st.sampled_from(["a", "==", "!=", "'x'", '"y"', "in", "not", "{", "}", ",", "(", ")", "&&", "||", "!", "has(a)", "all()", "contains", "starts", "with"]),
    max_size=10,
).map(" ".join)  # fmt: skip


@FUZZ
@given(obj=OBJECT, kind=st.sampled_from(["NetworkPolicy", "GlobalNetworkPolicy"]))
def test_policy_objects_parse(obj, kind):
    if not isinstance(obj, dict):
        obj = {"spec": obj}
    k = parse_kube_policy(obj)
    assert isinstance(k, KubePolicy) and isinstance(k.problem, str)
    c = parse_calico_policy(obj, kind)
    assert isinstance(c, CalicoPolicy) and isinstance(c.problem, str)
    assert isinstance(parse_namespace(obj), tuple)
    assert isinstance(parse_pod_labels(obj), PodLabels)


@FUZZ
@given(text=SELECTOR_TEXT, labels=st.dictionaries(st.sampled_from(["a", "b", "k8s-app"]), st.text(max_size=3)))
def test_calico_selectors_compile_or_say_unsupported(text, labels):
    try:
        match = compile_selector(text)
    except Unsupported as e:
        assert str(e)
        return
    assert match(labels) in (True, False)


@FUZZ
@given(
    kube=st.lists(OBJECT, max_size=3),
    calico=st.lists(OBJECT, max_size=3),
    present=st.booleans(),
    ip=st.sampled_from(["169.254.20.10", "10.244.0.5", "", "not-an-ip"]) | SCALARS.map(str),
)
def test_evaluation_of_anything_parsed_never_raises(kube, calico, present, ip):
    def meta(o, i: int, ns: str) -> dict:
        o = dict(o) if isinstance(o, dict) else {"spec": o}
        o["metadata"] = {"name": f"p{i}", "namespace": ns}
        return o

    dns = PodLabels(
        "kube-system", "coredns-0", (("k8s-app", "kube-dns"),), ip="10.244.0.5", ports=(("dns", "UDP", 53),)
    )
    app = PodLabels("shop", "web", (("app", "web"),))
    inputs = PolicyInputs(
        kube_policies=tuple(parse_kube_policy(meta(o, i, "shop")) for i, o in enumerate(kube)),
        calico_policies=tuple(
            parse_calico_policy(meta(o, i, "shop"), "GlobalNetworkPolicy" if i % 2 else "NetworkPolicy")
            for i, o in enumerate(calico)
        ),
        namespaces=(("kube-system", (("kubernetes.io/metadata.name", "kube-system"),)), ("shop", ())),
        label_sets=label_sets([app, dns]),
        kube_dns=(dns,),
        kube_synced=True,
        calico="present" if present else "absent",
    )
    for dest in (Dest(ip), Dest(dns.ip, dns)):
        for proto in ("UDP", "TCP"):
            assert verdict(inputs, "shop", app.labels, dest, proto, "10.0.0.10").allowed in (True, False, None)
    for res in evaluate(inputs, "10.0.0.10", nodelocal=True, localdns=present):
        assert res.namespace in ("shop", "kube-system")
