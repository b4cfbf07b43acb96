"""Raw node/pod/service JSON -> records, and plugin inference."""

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.kube.model import NetworkPlugin
from probes.kube.topology import (
    build_topology,
    infer_plugin,
    parse_node,
    parse_pod,
    parse_provider_id,
    parse_service,
    summarise_cidrs,
)

PROVIDER = "azure:///subscriptions/0000/resourceGroups/mc_rg_aks_westeurope/providers/Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-12345678-vmss/virtualMachines/3"


def node(
    name="aks-nodepool1-12345678-vmss000000",
    ip="10.224.0.4",
    cidr="10.244.0.0/24",
    ready="True",
    labels=None,
    unschedulable=False,
    netunavail=("False", "RouteCreated"),
):
    lab = {
        "kubernetes.azure.com/agentpool": "nodepool1",
        "kubernetes.azure.com/cluster": "MC_rg_aks_westeurope",
        "topology.kubernetes.io/zone": "westeurope-1",
    }
    lab.update(labels or {})
    conditions = [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]
    if netunavail:
        conditions.append({"type": "NetworkUnavailable", "status": netunavail[0], "reason": netunavail[1]})
    spec = {"providerID": PROVIDER, "unschedulable": unschedulable}
    if cidr:
        spec["podCIDR"] = cidr
        spec["podCIDRs"] = [cidr]
    return {
        "metadata": {"name": name, "labels": lab, "creationTimestamp": "2026-11-20T10:00:00Z"},
        "spec": spec,
        "status": {
            "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
            "conditions": conditions,
            "nodeInfo": {"kubeletVersion": "v1.30.6"},
        },
    }


def test_parse_node_fields():
    n = parse_node(node())
    assert n.internal_ip == "10.224.0.4"
    assert n.pod_cidrs == ("10.244.0.0/24",)
    assert n.pool == "nodepool1"
    assert n.ready is True and n.network_unavailable is False and n.network_reason == "RouteCreated"
    assert (n.vmss, n.instance_id) == ("aks-nodepool1-12345678-vmss", "3")
    assert n.resource_group == "MC_rg_aks_westeurope"
    assert n.zone == "westeurope-1"
    assert n.created == 1795168800.0


def test_parse_node_broken_shapes_do_not_raise():
    for obj in (
        {},
        {"metadata": None},
        {"status": {"conditions": "x", "addresses": [1, None]}},
        {"spec": {"taints": [None, {"key": "a"}]}},
    ):
        n = parse_node(obj)
        assert n.name == "" and n.ready is None


def test_no_route_condition():
    n = parse_node(node(netunavail=("True", "NoRouteCreated")))
    assert n.network_unavailable is True and n.network_reason == "NoRouteCreated"


def test_infer_plugin():
    kubenet = [parse_node(node())]
    cni = [parse_node(node(cidr=""))]
    overlay = [
        parse_node(
            node(
                labels={
                    "kubernetes.azure.com/azure-cni-overlay": "true",
                    "kubernetes.azure.com/ebpf-dataplane": "cilium",
                }
            )
        )
    ]
    assert infer_plugin(kubenet) == (NetworkPlugin.KUBENET, "azure")
    assert infer_plugin(cni) == (NetworkPlugin.AZURE_CNI, "azure")
    assert infer_plugin(overlay) == (NetworkPlugin.AZURE_CNI_OVERLAY, "cilium")
    assert infer_plugin([])[0] is NetworkPlugin.UNKNOWN


def test_contiguous_pod_ranges_merge():
    cidrs = [f"100.{64 + i // 256}.{i % 256}.0/24" for i in range(2000)]
    assert summarise_cidrs(cidrs) == ("100.64.0.0/13",)  # 2,000 /24s span 100.64-100.71
    assert summarise_cidrs(["10.244.0.0/24", "10.245.3.0/24", "fd00::/64"]) == ("10.244.0.0/15", "fd00::/64")


def test_provider_id_without_vmss():
    assert parse_provider_id(
        "azure:///subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/vm1"
    ) == ("", "vm1")
    assert parse_provider_id("") == ("", "")


def test_pod_and_service():
    pod = parse_pod(
        {
            "metadata": {"namespace": "kube-system", "name": "node-local-dns-abcde"},
            "spec": {"nodeName": "n1"},
            "status": {
                "phase": "Running",
                "podIP": "10.224.0.4",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
            },
        }
    )
    assert (pod.node, pod.ready, pod.restarts, pod.reason) == ("n1", False, 4, "CrashLoopBackOff")
    svc = parse_service(
        {
            "metadata": {
                "namespace": "web",
                "name": "shop",
                "annotations": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
            },
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.12.3", "ports": [{"port": 443, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}},
        }
    )
    assert svc.pending and svc.internal_lb and svc.ports == ("443/TCP",)


def test_build_topology_joins():
    nodes = {f"n{i}": parse_node(node(name=f"n{i}", ip=f"10.224.0.{4 + i}", cidr=f"10.244.{i}.0/24")) for i in range(3)}
    nl = [
        parse_pod(
            {
                "metadata": {"namespace": "kube-system", "name": "nl-1"},
                "spec": {"nodeName": "n1"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
        )
    ]
    topo = build_topology(nodes, cluster="c", nodelocal=nl, dns_service_ip="10.0.0.10")
    assert topo.pod_cidrs == ("10.244.0.0/16",)
    assert topo.nodelocal_enabled and set(topo.nodelocal) == {"n1"}
    assert [p.nodes for p in topo.pools] == [3]
    assert topo.ready_nodes == 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=50))
def test_summarise_cidrs_covers_every_node_cidr(pairs):
    import ipaddress

    cidrs = [f"10.{a}.{b}.0/24" for a, b in pairs]
    summary = [ipaddress.ip_network(s) for s in summarise_cidrs(cidrs)]
    for c in cidrs:
        assert any(ipaddress.ip_network(c).subnet_of(s) for s in summary)


@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 32)
            ).map(lambda t: f"{t[0]}.{t[1]}.{t[2]}.{t[3]}/{t[4]}"),
            st.sampled_from(
                [
                    "10.244.001.0/24",
                    "10.244.0.0/33",
                    "10.244.0.256/24",
                    "10.244.0/24",
                    "10.0.0.0/255.255.0.0",
                    "fd00::/64",
                    "fd00:1::/48",
                    "garbage",
                    "",
                    "1.2.3.4",
                    "１.2.3.4/8",
                ]
            ),
        ),
        max_size=30,
    ),
    st.integers(8, 24),
)
def test_summarise_cidrs_fast_path_matches_ipaddress(cidrs, max_prefix):
    """The plain-arithmetic IPv4 path gives what `ipaddress` gives, and rejects what it rejects."""
    from probes.kube.topology import _enclosing, _enclosing_text

    for c in cidrs:
        net = _enclosing(c, max_prefix)
        assert _enclosing_text(c, max_prefix) == (None if net is None else str(net)), c
