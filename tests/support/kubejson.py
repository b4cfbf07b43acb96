"""Hand-made Kubernetes JSON objects for tests that need no server."""

from __future__ import annotations

from typing import Any


def node(
    name: str = "aks-nodepool1-12345678-vmss000000",
    ip: str = "10.224.0.4",
    cidr: str = "10.244.0.0/24",
    ready: str = "True",
    pool: str = "nodepool1",
    labels: dict[str, str] | None = None,
    unschedulable: bool = False,
    netunavail: tuple[str, str] | None = ("False", "RouteCreated"),
    instance: int = 0,
) -> dict[str, Any]:
    lab = {
        "kubernetes.azure.com/agentpool": pool,
        "kubernetes.azure.com/cluster": "MC_rg_aks_westeurope",
        "kubernetes.azure.com/mode": "system" if pool == "nodepool1" else "user",
        "topology.kubernetes.io/zone": f"westeurope-{instance % 3 + 1}",
        "node.kubernetes.io/instance-type": "Standard_DS2_v2",
    }
    lab.update(labels or {})
    conditions = [
        {"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "KubeletNotReady"}
    ]
    if netunavail:
        conditions.append({"type": "NetworkUnavailable", "status": netunavail[0], "reason": netunavail[1]})
    spec: dict[str, Any] = {
        "providerID": f"azure:///subscriptions/0000/resourceGroups/mc_rg_aks_westeurope/providers/Microsoft.Compute/virtualMachineScaleSets/aks-{pool}-12345678-vmss/virtualMachines/{instance}",
        "unschedulable": unschedulable,
    }
    if cidr:
        spec["podCIDR"] = cidr
        spec["podCIDRs"] = [cidr]
    return {
        "metadata": {"name": name, "labels": lab, "creationTimestamp": "2026-11-20T10:00:00Z", "resourceVersion": "1"},
        "spec": spec,
        "status": {
            "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
            "conditions": conditions,
            "nodeInfo": {"kubeletVersion": "v1.30.6", "osImage": "Ubuntu 22.04.5 LTS"},
        },
    }


def pod(name: str, node_name: str, app: str, ready: bool = True, ip: str = "10.244.0.5") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "kube-system", "name": name, "labels": {"k8s-app": app}},
        "spec": {"nodeName": node_name},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def service(
    name: str,
    namespace: str = "default",
    type_: str = "ClusterIP",
    cluster_ip: str = "10.0.0.20",
    external: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"loadBalancer": {"ingress": [{"ip": external}]} if external else {}}
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {
            "type": type_,
            "clusterIP": cluster_ip,
            "ports": [{"port": 53 if name == "kube-dns" else 443, "protocol": "UDP" if name == "kube-dns" else "TCP"}],
        },
        "status": status,
    }


def small_cluster(n_system: int = 3, n_user: int = 2) -> dict[str, list[dict[str, Any]]]:
    """The kubenet case study shape: two pools, first node 10.224.0.4 with 10.244.0.0/24."""
    nodes, pods = [], []
    i = 0
    for pool, count in (("nodepool1", n_system), ("userpool", n_user)):
        for k in range(count):
            name = f"aks-{pool}-12345678-vmss{k:06d}"
            nodes.append(node(name=name, ip=f"10.224.0.{4 + i}", cidr=f"10.244.{i}.0/24", pool=pool, instance=k))
            pods.append(pod(f"node-local-dns-{i:05d}", name, "node-local-dns", ip=f"10.224.0.{4 + i}"))
            i += 1
    pods.append(pod("coredns-789789675-abcde", nodes[0]["metadata"]["name"], "kube-dns", ip="10.244.0.10"))
    pods.append(pod("coredns-789789675-fghij", nodes[1]["metadata"]["name"], "kube-dns", ip="10.244.1.10"))
    services = [
        service("kube-dns", "kube-system", cluster_ip="10.0.0.10"),
        service("kubernetes", cluster_ip="10.0.0.1"),
        service("shop", "web", "LoadBalancer", "10.0.40.2", external="20.61.1.1"),
    ]
    return {"nodes": nodes, "pods": pods, "services": services}


def fill_store(store: Any, objs: dict[str, list[dict[str, Any]]]) -> None:
    """Load objects into a Store exactly as the kube source files them."""
    from probes.kube.source import KINDS

    by_kind = {"nodes": objs.get("nodes", []), "pods": objs.get("pods", []), "services": objs.get("services", [])}
    for kind in KINDS:
        coll: dict[str, dict[str, Any]] = {c: {} for c in kind.collections}
        for obj in by_kind.get(kind.name, objs.get(kind.name, [])):
            for c, key, rec in kind.route(obj):
                coll[c][key] = rec
        for c, recs in coll.items():
            store.replace(c, recs)
