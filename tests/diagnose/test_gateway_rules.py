"""The static egress gateway's rules on hand-made data: each fires on its case, names the
configuration and the next step, and stays quiet when the CRD is absent, forbidden or not
read yet, and on a configuration that may still be provisioning."""

from __future__ import annotations

import dataclasses

import msgspec

from probes.diagnose import Observations, Severity, diagnose
from probes.kube.gatewaymodel import GatewayConfig, GatewayData, GatewayPod
from probes.kube.gatewayparse import parse_gateway_config, parse_gateway_pod
from tests.diagnose.test_rules import NOW, healthy_dns, topology

OLD = "2026-01-01T00:00:00Z"  # long before NOW
RULES = {"sgc-missing", "sgc-not-provisioned", "sgc-pool-not-ready"}


def cfg(
    name: str = "sgc-a", ns: str = "shop", pool: str = "userpool", prefix: str = "20.1.2.0/30", **kw
) -> GatewayConfig:  # type: ignore[no-untyped-def]
    return GatewayConfig(ns, name, pool, egress_prefix=prefix, created=kw.pop("created", OLD), **kw)


def pods(
    n: int, ns: str = "shop", gateway: str = "sgc-a", node: str = "aks-nodepool1-12345678-vmss000000"
) -> tuple[GatewayPod, ...]:
    return tuple(GatewayPod(ns, f"web-{i}", node, gateway, "Running") for i in range(n))


def found(g: GatewayData, topo=None):  # type: ignore[no-untyped-def]
    topo = topo or topology()
    obs = Observations(topo, healthy_dns(topo), NOW, gateways=g)
    return [f for f in diagnose(obs) if f.rule in RULES]


def test_healthy_gateway_raises_nothing():
    g = GatewayData("present", (cfg(),), pods(3), True)
    assert found(g) == []


def test_pods_annotated_for_a_configuration_their_namespace_lacks():
    g = GatewayData("present", (cfg(),), pods(2) + pods(3, ns="batch"), True)
    (f,) = found(g)
    assert (f.rule, f.severity, f.subject) == ("sgc-missing", Severity.CRITICAL, "gateway/batch/sgc-a")
    assert "3 pods in batch" in f.cause and "(it exists in shop)" in f.cause
    assert f.evidence["pods"] == "web-0, web-1, web-2" and f.evidence["found_in"] == "shop"
    assert "create sgc-a in batch" in f.next_step
    # not before the pods were read
    assert found(msgspec.structs.replace(g, pods_read=False, pods=())) == []


def test_unprovisioned_configuration_names_it_and_its_pool():
    g = GatewayData("present", (cfg(prefix=""),), pods(1), True)
    (f,) = found(g)
    assert (f.rule, f.severity, f.subject) == ("sgc-not-provisioned", Severity.CRITICAL, "gateway/shop/sgc-a")
    assert "gateway pool userpool" in f.cause and "1 pod uses it" in f.cause
    assert f.evidence["gateway_nodepool"] == "userpool"
    assert f.next_step.startswith("`kubectl describe staticgatewayconfiguration -n shop sgc-a`")
    assert "kubernetes.azure.com/agentpool=userpool" in f.next_step
    # no pod uses it: a warning; a configuration 60 s old may still be provisioning
    (w,) = found(GatewayData("present", (cfg(prefix=""),), (), True))
    assert w.severity is Severity.WARNING
    young = cfg(prefix="", created="2026-11-20T10:59:00Z")  # NOW - 60 s
    assert found(GatewayData("present", (young,), pods(1), True)) == []


def test_gateway_pool_without_a_ready_node():
    topo = topology()
    down = dataclasses.replace(
        topo, nodes=tuple(dataclasses.replace(n, ready=False) if n.pool == "userpool" else n for n in topo.nodes)
    )
    g = GatewayData("present", (cfg(),), pods(2), True)
    (f,) = found(g, down)
    assert (f.rule, f.severity) == ("sgc-pool-not-ready", Severity.CRITICAL)
    assert "gateway pool userpool of static gateway shop/sgc-a has no Ready node (2 NotReady)" in f.cause
    assert "kubectl get nodes -l kubernetes.azure.com/agentpool=userpool" in f.next_step
    # a pool that is not in the cluster at all
    (f,) = found(GatewayData("present", (cfg(pool="gwpool"),), (), True))
    assert f.rule == "sgc-pool-not-ready" and "(no node in the cluster)" in f.cause and f.severity is Severity.WARNING
    # a gatewayVmssProfile instead of a pool name: matched by scale set
    vm = cfg(pool="", vmss="aks-userpool-12345678-vmss")
    assert found(GatewayData("present", (vm,), (), True)) == []
    assert [x.rule for x in found(GatewayData("present", (vm,), (), True), down)] == ["sgc-pool-not-ready"]


def test_nothing_is_judged_without_the_crd_or_before_it_is_read():
    broken = (cfg(prefix="", pool="nopool"),)
    for state in ("absent", "forbidden", "unknown"):
        assert found(GatewayData(state, broken, pods(2, ns="x"), True)) == [], state
    topo = topology()
    assert [f for f in diagnose(Observations(topo, healthy_dns(topo), NOW)) if f.rule in RULES] == []


def test_parsers_read_the_real_shapes():
    """kube-egress-gateway's sample and the AKS docs' status (private IP mode lists IPs)."""
    c = parse_gateway_config(
        {
            "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
            "kind": "StaticGatewayConfiguration",
            "metadata": {"name": "sgw1", "namespace": "default", "creationTimestamp": OLD},
            "spec": {
                "gatewayVmssProfile": {
                    "vmssResourceGroup": "gw-rg",
                    "vmssName": "gatewaypool1-12345678-vmss",
                    "publicIpPrefixSize": 31,
                },
                "publicIpPrefixId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p",
                "excludeCIDRs": ["10.244.0.0/16", "10.245.0.0/16"],
            },
        }
    )
    assert (c.nodepool, c.vmss, c.vmss_rg, c.provision_public_ips) == ("", "gatewaypool1-12345678-vmss", "gw-rg", True)
    assert c.exclude_cidrs == ("10.244.0.0/16", "10.245.0.0/16") and c.egress_prefix == ""
    assert c.pool_words == "gateway scale set gw-rg/gatewaypool1-12345678-vmss"
    private = parse_gateway_config(
        {
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"gatewayNodepoolName": "gatewaypool", "provisionPublicIps": False, "excludeCidrs": "bad"},
            "status": {"egressIpPrefix": "10.0.1.8,10.0.1.9"},
        }
    )
    assert private.egress_ips == ("10.0.1.8", "10.0.1.9") and not private.provision_public_ips
    assert private.exclude_cidrs == ()
    pod = {
        "metadata": {
            "name": "samplepod",
            "namespace": "default",
            "annotations": {"kubernetes.azure.com/static-gateway-configuration": "sgw1"},
        },
        "spec": {"nodeName": "aks-userpool-1"},
        "status": {"phase": "Running"},
    }
    assert parse_gateway_pod(pod) == GatewayPod("default", "samplepod", "aks-userpool-1", "sgw1", "Running")
    assert parse_gateway_pod({**pod, "status": {"phase": "Succeeded"}}) is None
    assert parse_gateway_pod({"metadata": {"name": "x", "annotations": {"other": "1"}}}) is None
    assert parse_gateway_config({"metadata": "junk", "spec": [], "status": 3}).name == ""
