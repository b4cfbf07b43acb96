"""Kubernetes JSON objects (plain dicts) for the lab's cluster state.

Builders are pure: they take the live state records from :mod:`probes.lab.cluster` and
return fresh dicts shaped like a real AKS API server's v1 objects. The store adds
``metadata.resourceVersion`` and caches the serialized bytes.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from typing import Any, Protocol

from .records import EventState, LabPod, NodeState, ServiceState
from .scenario import PoolSpec, Scenario


class ClusterView(Protocol):
    """What a builder needs of :class:`probes.lab.cluster.ClusterState` (not imported: it imports us)."""

    scenario: Scenario
    pools: dict[str, PoolSpec]
    nodes: dict[str, NodeState]

    def now(self) -> float: ...


def make_uid(*parts: str) -> str:
    """Deterministic uid (UUID-shaped): same scenario, same uids. Cheap for 10^4 objects."""
    h = hashlib.blake2b("/".join(parts).encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-a{h[17:20]}-{h[20:32]}"


@functools.lru_cache(maxsize=4096)
def _ts(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def ts(t: float) -> str:
    return _ts(int(t))


# vmSize -> (vCPUs, memory GiB). Unknown sizes: vCPUs from the name, 4 GiB per vCPU.
VM_SIZES: dict[str, tuple[int, int]] = {
    "Standard_B2s": (2, 4),
    "Standard_B4ms": (4, 16),
    "Standard_DS2_v2": (2, 7),
    "Standard_DS3_v2": (4, 14),
    "Standard_DS4_v2": (8, 28),
    "Standard_D2s_v3": (2, 8),
    "Standard_D4s_v3": (4, 16),
    "Standard_D8s_v3": (8, 32),
    "Standard_D16s_v3": (16, 64),
    "Standard_D2ds_v5": (2, 8),
    "Standard_D4ds_v5": (4, 16),
    "Standard_D8ds_v5": (8, 32),
    "Standard_D16ds_v5": (16, 64),
    "Standard_E4s_v3": (4, 32),
    "Standard_E8s_v3": (8, 64),
    "Standard_F8s_v2": (8, 16),
}


def vm_shape(vm_size: str) -> tuple[int, int]:
    if vm_size in VM_SIZES:
        return VM_SIZES[vm_size]
    m = re.search(r"_[A-Z]+(\d+)", vm_size)
    cpu = int(m.group(1)) if m else 2
    return cpu, cpu * 4


MCR = "mcr.microsoft.com"
# ~40 images a real AKS node has pulled (names, sizes).
_IMAGES_RAW = [
    ("oss/kubernetes/kube-proxy:v1.30.6", 31_245_710),
    ("oss/kubernetes-csi/azuredisk-csi:v1.30.5", 76_432_120),
    ("oss/kubernetes-csi/azurefile-csi:v1.30.7", 81_221_904),
    ("oss/kubernetes-csi/blob-csi:v1.24.5", 69_873_112),
    ("oss/kubernetes-csi/csi-node-driver-registrar:v2.12.0", 11_520_882),
    ("oss/kubernetes-csi/livenessprobe:v2.14.0", 10_874_555),
    ("oss/kubernetes/azure-cloud-node-manager:v1.30.7", 20_874_200),
    ("aks/ip-masq-agent-v2:v0.1.14", 12_112_774),
    ("oss/kubernetes/ip-masq-agent:v2.5.0.12", 9_883_412),
    ("oss/kubernetes/coredns:v1.11.3-6", 18_562_039),
    ("oss/kubernetes/autoscaler/cluster-proportional-autoscaler:v1.8.11", 11_934_518),
    ("oss/kubernetes/k8s-dns-node-cache:1.23.1", 33_126_004),
    ("oss/kubernetes/metrics-server:v0.7.2", 19_494_617),
    ("oss/kubernetes/apiserver-network-proxy/agent:v0.30.3-hotfix.20240819", 17_339_180),
    ("azuremonitor/containerinsights/ciprod:3.1.24", 290_348_611),
    ("containernetworking/azure-cns:v1.6.18", 34_281_055),
    ("containernetworking/azure-cni:v1.6.18", 50_372_102),
    ("containernetworking/azure-ip-masq-merger:v0.0.1-0", 6_112_034),
    ("containernetworking/cilium/cilium:v1.16.6-250129", 213_118_570),
    ("containernetworking/cilium/operator-generic:v1.16.6-250129", 31_774_002),
    ("oss/kubernetes/pause:3.6", 299_513),
    ("oss/kubernetes/pause:3.9", 321_520),
    ("oss/kubernetes/defaultbackend:1.4", 1_967_019),
    ("oss/nginx/nginx:1.25.5", 70_212_510),
    ("oss/calico/node:v3.28.2", 127_112_332),
    ("oss/calico/cni:v3.28.2", 94_823_701),
    ("oss/calico/typha:v3.28.2", 29_101_220),
    ("oss/kubernetes/secrets-store-csi-driver:v1.4.6", 40_338_121),
    ("oss/kubernetes/azure-keyvault-provider:v1.6.0", 29_778_114),
    ("oss/open-policy-agent/gatekeeper:v3.17.1", 33_456_010),
    ("azure-policy/policy-kubernetes-addon-prod:1.8.0", 44_120_880),
    ("aks/aks-node-ca-watcher:static", 4_201_332),
    ("aks/hcp/hcp-tunnel-front:master.241008.1", 22_870_442),
    ("oss/kubernetes/kube-state-metrics:v2.13.0", 17_004_201),
    ("oss/prometheus/node-exporter:v1.8.2", 12_113_989),
    ("aks/msi/addon-token-adapter:master.241021.1", 8_334_098),
    ("oss/azure/workload-identity/proxy-init:v1.3.0", 7_112_540),
    ("oss/kubernetes/kube-rbac-proxy:v0.18.1", 22_101_334),
    ("aks/aks-gpu:cuda-550.90.12-sha-b40b85", 391_022_901),
    ("oss/busybox:1.36.1", 2_231_050),
]


def _image(name: str, size: int) -> dict[str, Any]:
    digest = make_uid("img", name).replace("-", "")
    digest = (digest * 2)[:64]
    return {"names": [f"{MCR}/{name.rsplit(':', 1)[0]}@sha256:{digest}", f"{MCR}/{name}"], "sizeBytes": size}


NODE_IMAGES: list[dict[str, Any]] = [_image(n, s) for n, s in _IMAGES_RAW]


def _kernel(os_sku: str) -> tuple[str, str]:
    if os_sku == "Windows2022":  # a real AKS Windows node's (node.kubernetes.io/windows-build 10.0.20348)
        return "10.0.20348.2655", "Windows Server 2022 Datacenter"
    if os_sku == "Windows2019":
        return "10.0.17763.6189", "Windows Server 2019 Datacenter"
    if os_sku == "AzureLinux":
        return "5.15.173.1-1.cm2", "CBL-Mariner/Linux"
    return "5.15.0-1079-azure", "Ubuntu 22.04.5 LTS"


def aks_label(value: str) -> str:
    """What AKS writes into a label such as kubernetes.azure.com/cluster: at most 63
    characters, and a cut ending in '_' ends in 'z' (a label value ends alphanumeric)."""
    cut = value[:63]
    return cut[:-1] + "z" if cut.endswith("_") else cut


def vnet_name(cs: ClusterView) -> str:
    """The managed VNet's name (in the node resource group), as the lab ARM endpoint serves it."""
    return f"aks-vnet-{cs.scenario.vmss_id('__network__')}"


def node_object(cs: ClusterView, n: NodeState) -> dict[str, Any]:
    c = cs.scenario.cluster
    pool = cs.pools[n.pool]
    cpu, mem_gib = vm_shape(pool.vm_size)
    mem_ki = mem_gib * 1024 * 1024 - 1_200_000 // 2
    kubelet = "v" + (n.kubelet_version or pool.kubelet_version or c.kubernetes_version)
    kernel, os_image = _kernel(pool.os_sku)
    labels = {
        "agentpool": n.pool,
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": pool.vm_size,
        "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": c.location,
        "failure-domain.beta.kubernetes.io/zone": n.zone,
        "kubernetes.azure.com/agentpool": n.pool,
        "kubernetes.azure.com/cluster": aks_label(c.node_resource_group),
        "kubernetes.azure.com/consolidated-additional-properties": make_uid("cap", n.pool),
        "kubernetes.azure.com/kubelet-identity-client-id": make_uid("kubelet-id", c.name),
        "kubernetes.azure.com/mode": pool.mode.lower(),
        "kubernetes.azure.com/node-image-version": c.node_image_version,
        "kubernetes.azure.com/nodepool-type": "VirtualMachineScaleSets",
        "kubernetes.azure.com/os-sku": pool.os_sku,
        "kubernetes.azure.com/role": "agent",
        "kubernetes.azure.com/storageprofile": "managed",
        "kubernetes.azure.com/storagetier": "Premium_LRS",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/role": "agent",
        "node-role.kubernetes.io/agent": "",
        "node.kubernetes.io/instance-type": pool.vm_size,
        "storageprofile": "managed",
        "storagetier": "Premium_LRS",
        "topology.disk.csi.azure.com/zone": n.zone if n.zone != "0" else "",
        "topology.kubernetes.io/region": c.location,
        "topology.kubernetes.io/zone": n.zone,
    }
    if c.network_plugin == "azure-overlay":
        labels["kubernetes.azure.com/azure-cni-overlay"] = "true"
        labels["kubernetes.azure.com/podnetwork-type"] = "overlay"
    if c.network_plugin in ("azure", "azure-overlay"):
        labels["kubernetes.azure.com/network-name"] = vnet_name(cs)
        labels["kubernetes.azure.com/network-resourcegroup"] = c.node_resource_group
        labels["kubernetes.azure.com/network-subnet"] = "aks-subnet"
        labels["kubernetes.azure.com/network-subscription"] = ""
    if c.network_dataplane == "cilium":
        labels["kubernetes.azure.com/ebpf-dataplane"] = "cilium"
    if c.local_dns and not pool.windows:
        labels["kubernetes.azure.com/localdns-state"] = "enabled"
    if pool.mode == "Gateway":  # what kube-egress-gateway's daemons select
        labels["kubeegressgateway.azure.com/mode"] = "true"
    os_name = "windows" if pool.windows else "linux"
    labels["kubernetes.io/os"] = labels["beta.kubernetes.io/os"] = os_name
    if pool.windows:
        labels["node.kubernetes.io/windows-build"] = kernel.rsplit(".", 1)[0]
    if pool.vmas:
        labels["kubernetes.azure.com/nodepool-type"] = "AvailabilitySet"
    created = ts(n.created)
    hb = ts(cs.now())
    cond_t = ts(n.ready_since)
    if n.ready == "True":
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
        }
    elif n.ready == "Unknown":
        ready = {
            "type": "Ready",
            "status": "Unknown",
            "reason": n.reason or "NodeStatusUnknown",
            "message": n.message or "Kubelet stopped posting node status.",
        }
    else:
        ready = {
            "type": "Ready",
            "status": "False",
            "reason": n.reason or "KubeletNotReady",
            "message": n.message
            or "container runtime network not ready: NetworkReady=false "
            "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
        }
    ready["lastHeartbeatTime"] = hb if n.ready != "Unknown" else cond_t
    ready["lastTransitionTime"] = cond_t
    conditions = []
    if c.network_plugin == "kubenet":
        if n.network_unavailable:
            conditions.append(
                {
                    "type": "NetworkUnavailable",
                    "status": "True",
                    "reason": "NoRouteCreated",
                    "message": "Node created without a route",
                    "lastHeartbeatTime": ts(n.route_since),
                    "lastTransitionTime": ts(n.route_since),
                }
            )
        else:
            conditions.append(
                {
                    "type": "NetworkUnavailable",
                    "status": "False",
                    "reason": "RouteCreated",
                    "message": "RouteController created a route",
                    "lastHeartbeatTime": ts(n.route_since),
                    "lastTransitionTime": ts(n.route_since),
                }
            )
    for typ, reason, msg in (
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ):
        st = "False" if n.ready != "Unknown" else "Unknown"
        conditions.append(
            {
                "type": typ,
                "status": st,
                "reason": reason if st == "False" else "NodeStatusUnknown",
                "message": msg if st == "False" else "Kubelet stopped posting node status.",
                "lastHeartbeatTime": ready["lastHeartbeatTime"],
                "lastTransitionTime": created,
            }
        )
    conditions.append(ready)
    compute = f"azure:///subscriptions/{c.subscription_id}/resourceGroups/{c.node_resource_group.lower()}/providers/Microsoft.Compute"
    spec: dict[str, Any] = {
        # an availability-set VM is a standalone VM; a VMSS instance is the scale set's Nth
        "providerID": f"{compute}/virtualMachines/{n.name}"
        if pool.vmas
        else f"{compute}/virtualMachineScaleSets/{cs.scenario.scale_set(n.pool)}/virtualMachines/{n.instance}"
    }
    if n.pod_cidr and c.network_plugin != "azure-overlay":  # overlay nodes carry none: the range is the cluster's
        spec["podCIDR"] = n.pod_cidr
        spec["podCIDRs"] = [n.pod_cidr]
    taints = []
    if n.cordoned:
        spec["unschedulable"] = True
        taints.append(
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": ts(n.cordon_since)}
        )
    if n.ready == "False":
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule", "timeAdded": cond_t})
    elif n.ready == "Unknown":
        taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": cond_t})
    if pool.mode == "Gateway":  # kept for the gateway's traffic (kube-egress-gateway's taint)
        taints.append({"key": "kubeegressgateway.azure.com/mode", "value": "true", "effect": "NoSchedule"})
    if pool.mode == "System" and cs.scenario.extra.get("_critical_addons_only"):
        taints.append({"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"})
    if taints:
        spec["taints"] = taints
    eph = 129_886_128
    cap = {
        "cpu": str(cpu),
        "ephemeral-storage": f"{eph}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{mem_ki}Ki",
        "pods": str(pool.max_pods),
    }
    alloc = {
        "cpu": f"{cpu * 1000 - 100 - 40 * min(cpu, 4)}m",
        "ephemeral-storage": f"{int(eph * 1024 * 0.9)}",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{int(mem_ki * 0.75)}Ki",
        "pods": str(pool.max_pods),
    }
    sysid = make_uid("vm", n.name)
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": n.name,
            "uid": n.uid,
            "creationTimestamp": created,
            "labels": labels,
            "annotations": {
                "csi.volume.kubernetes.io/nodeid": '{"disk.csi.azure.com":"%s","file.csi.azure.com":"%s"}'
                % (n.name, n.name),
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "capacity": cap,
            "allocatable": alloc,
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": n.ip}, {"type": "Hostname", "address": n.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": sysid.replace("-", ""),
                "systemUUID": sysid,
                "bootID": make_uid("boot", n.name, str(n.created)),
                "kernelVersion": kernel,
                "osImage": os_image,
                "containerRuntimeVersion": "containerd://1.7.17+azure" if pool.windows else "containerd://1.7.25-1",
                "kubeletVersion": kubelet,
                "kubeProxyVersion": kubelet,
                "operatingSystem": os_name,
                "architecture": "amd64",
            },
            "images": [] if pool.windows else NODE_IMAGES,
        },
    }


# app -> (containers [(name, image, ports)], labels, hostNetwork, owner kind, priority class)
POD_APPS: dict[str, dict[str, Any]] = {
    "coredns": {
        "containers": [
            (
                "coredns",
                "oss/kubernetes/coredns:v1.11.3-6",
                [(53, "UDP", "dns"), (53, "TCP", "dns-tcp"), (9153, "TCP", "metrics")],
            )
        ],
        "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "version": "v20"},
        "owner": "ReplicaSet",
        "sa": "coredns",
    },
    "coredns-autoscaler": {
        "containers": [("autoscaler", "oss/kubernetes/autoscaler/cluster-proportional-autoscaler:v1.8.11", [])],
        "labels": {"k8s-app": "coredns-autoscaler"},
        "owner": "ReplicaSet",
        "sa": "coredns-autoscaler",
    },
    "metrics-server": {
        "containers": [("metrics-server", "oss/kubernetes/metrics-server:v0.7.2", [(4443, "TCP", "https")])],
        "labels": {"k8s-app": "metrics-server"},
        "owner": "ReplicaSet",
        "sa": "metrics-server",
    },
    "konnectivity-agent": {
        "containers": [
            ("konnectivity-agent", "oss/kubernetes/apiserver-network-proxy/agent:v0.30.3-hotfix.20240819", [])
        ],
        "labels": {"app": "konnectivity-agent"},
        "owner": "ReplicaSet",
        "sa": "konnectivity-agent",
    },
    "node-local-dns": {
        "containers": [
            (
                "node-cache",
                "oss/kubernetes/k8s-dns-node-cache:1.23.1",
                [(53, "UDP", "dns"), (53, "TCP", "dns-tcp"), (9253, "TCP", "metrics")],
            )
        ],
        "labels": {"k8s-app": "node-local-dns"},
        # the upstream manifest's shape: the local IP is an argument, not a constant
        "args": [
            "-localip",
            "{nodelocal},{dns}",
            "-conf",
            "/etc/Corefile",
            "-upstreamsvc",
            "kube-dns-upstream",
            "-pidfile",
            "/tmp/node-cache.pid",
        ],
        "owner": "DaemonSet",
        "host": True,
        "sa": "node-local-dns",
    },
    "kube-proxy": {
        "containers": [("kube-proxy", "oss/kubernetes/kube-proxy:v1.30.6", [])],
        "labels": {"component": "kube-proxy", "tier": "node"},
        "owner": "DaemonSet",
        "host": True,
        "sa": "kube-proxy",
    },
    "cilium": {
        "containers": [("cilium-agent", "containernetworking/cilium/cilium:v1.16.6-250129", [])],
        "labels": {"k8s-app": "cilium"},
        "owner": "DaemonSet",
        "host": True,
        "sa": "cilium",
    },
}


def pod_object(cs: ClusterView, p: LabPod) -> dict[str, Any]:
    app = POD_APPS[p.app]
    node = cs.nodes.get(p.node)
    ready = p.ready and node is not None and node.ready == "True"
    labels = dict(app["labels"])
    owner_name = p.app
    if app["owner"] == "ReplicaSet":
        labels["pod-template-hash"] = p.template_hash
        owner_name = f"{p.app}-{p.template_hash}"
    else:
        labels["controller-revision-hash"] = p.template_hash
        labels["pod-template-generation"] = "1"
    created = ts(p.created)
    started = ts(p.created + 3)
    rt = ts(p.ready_since)
    cond = "True" if ready else "False"
    containers = []
    statuses = []
    for name, image, ports in app["containers"]:
        c: dict[str, Any] = {
            "name": name,
            "image": f"{MCR}/{image}",
            "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
        if ports:
            c["ports"] = [{"containerPort": pt, "protocol": pr, "name": nm} for pt, pr, nm in ports]
        if app.get("args"):
            dns = str(cs.scenario.cluster.dns_service_ip)
            local = str(cs.scenario.cluster.node_local_dns_ip)
            c["args"] = [a.format(nodelocal=local, dns=dns) for a in app["args"]]
        containers.append(c)
        st: dict[str, Any] = {
            "name": name,
            "image": f"{MCR}/{image}",
            "imageID": f"{MCR}/{image.rsplit(':', 1)[0]}@sha256:{(make_uid('img', image).replace('-', '') * 2)[:64]}",
            "containerID": f"containerd://{(make_uid('ctr', p.name, name).replace('-', '') * 2)[:64]}",
            "ready": ready,
            "restartCount": p.restarts,
            "started": True,
            "state": {"running": {"startedAt": started}},
        }
        statuses.append(st)
    spec: dict[str, Any] = {
        "containers": containers,
        "nodeName": p.node,
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirstWithHostNet"
        if app.get("host")
        else "Default"
        if p.app == "coredns"
        else "ClusterFirst",
        "serviceAccountName": app["sa"],
        "serviceAccount": app["sa"],
        "schedulerName": "default-scheduler",
        "priorityClassName": "system-node-critical" if app.get("host") else "system-cluster-critical",
        "priority": 2000001000 if app.get("host") else 2000000000,
        "terminationGracePeriodSeconds": 30,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "tolerations": [
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    }
    if app.get("host"):
        spec["hostNetwork"] = True
    host_ip = node.ip if node is not None else p.host_ip
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": p.name,
            "generateName": p.name[: p.name.rfind("-") + 1],
            "namespace": "kube-system",
            "uid": p.uid,
            "creationTimestamp": created,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": app["owner"],
                    "name": owner_name,
                    "uid": make_uid("owner", owner_name),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": "PodReadyToStartContainers",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": started,
                },
                {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": created},
                {
                    "type": "Ready",
                    "status": cond,
                    "lastProbeTime": None,
                    "lastTransitionTime": rt,
                    **(
                        {}
                        if ready
                        else {
                            "reason": "ContainersNotReady",
                            "message": f"containers with unready status: [{app['containers'][0][0]}]",
                        }
                    ),
                },
                {
                    "type": "ContainersReady",
                    "status": cond,
                    "lastProbeTime": None,
                    "lastTransitionTime": rt,
                    **(
                        {}
                        if ready
                        else {
                            "reason": "ContainersNotReady",
                            "message": f"containers with unready status: [{app['containers'][0][0]}]",
                        }
                    ),
                },
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": created},
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": p.ip,
            "podIPs": [{"ip": p.ip}],
            "startTime": created,
            "containerStatuses": statuses,
            "qosClass": "Burstable",
        },
    }


def service_object(cs: ClusterView, s: ServiceState) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": s.type,
        "clusterIP": s.cluster_ip,
        "clusterIPs": [s.cluster_ip],
        "ports": [dict(p) for p in s.ports],
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "internalTrafficPolicy": "Cluster",
    }
    if s.selector:
        spec["selector"] = dict(s.selector)
    if s.type in ("LoadBalancer", "NodePort"):
        spec["externalTrafficPolicy"] = "Cluster"
    if s.type == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = True
    status: dict[str, Any] = {"loadBalancer": {}}
    if s.type == "LoadBalancer" and s.external_ip:
        status["loadBalancer"] = {"ingress": [{"ip": s.external_ip, "ipMode": "VIP"}]}
    md: dict[str, Any] = {"name": s.name, "namespace": s.namespace, "uid": s.uid, "creationTimestamp": ts(s.created)}
    if s.labels:
        md["labels"] = dict(s.labels)
    if s.annotations:
        md["annotations"] = dict(s.annotations)
    return {"kind": "Service", "apiVersion": "v1", "metadata": md, "spec": spec, "status": status}


def event_object(cs: ClusterView, e: EventState) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": e.name, "namespace": e.namespace, "uid": e.uid, "creationTimestamp": ts(e.first)},
        "involvedObject": {
            "kind": e.involved_kind,
            "namespace": e.namespace,
            "name": e.involved_name,
            "uid": e.involved_uid,
            "apiVersion": "v1",
        },
        "reason": e.reason,
        "message": e.message,
        "source": {"component": e.component},
        "firstTimestamp": ts(e.first),
        "lastTimestamp": ts(e.last),
        "count": e.count,
        "type": e.type,
        "eventTime": None,
        "reportingComponent": e.component,
        "reportingInstance": "",
    }


def namespace_object(cs: ClusterView, name: str, created: float) -> dict[str, Any]:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": make_uid(cs.scenario.cluster.name, "ns", name),
            "creationTimestamp": ts(created),
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def app_pod_object(
    cs: ClusterView,
    namespace: str,
    name: str,
    labels: dict[str, str],
    node: NodeState,
    ip: str,
    created: float,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An application pod of a scenario's ``policies.namespaces`` (what NetworkPolicies select)
    or ``egressGateway.pods`` (annotated for a static gateway)."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": make_uid(cs.scenario.cluster.name, "pod", namespace, name),
            "creationTimestamp": ts(created),
            "labels": dict(labels),
            **({"annotations": dict(annotations)} if annotations else {}),
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "mcr.microsoft.com/azurelinux/base/nginx:1.25",
                    "ports": [{"containerPort": 80}],
                }
            ],
            "nodeName": node.name,
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts(created + 5)}],
            "hostIP": node.ip,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": ts(created),
        },
    }
