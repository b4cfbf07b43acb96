"""Server-side printing: meta.k8s.io/v1 Table rows like the real API server's printers."""

from __future__ import annotations

import calendar
import time
from typing import Any

_AGE = "CreationTimestamp is a timestamp representing the server time when this object was created."
_NAME = "Name must be unique within a namespace."


def _col(name: str, typ: str = "string", priority: int = 0, fmt: str = "", desc: str = "") -> dict[str, Any]:
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


COLUMNS: dict[str, list[dict[str, Any]]] = {
    "nodes": [
        _col("Name", fmt="name", desc=_NAME),
        _col("Status", desc="The status of the node"),
        _col("Roles", desc="The roles of the node"),
        _col("Age", desc=_AGE),
        _col("Version", desc="Kubelet Version reported by the node."),
        _col(
            "Internal-IP",
            priority=1,
            desc="List of addresses reachable to the node. Queried from cloud provider, if available.",
        ),
        _col(
            "External-IP",
            priority=1,
            desc="List of addresses reachable to the node. Queried from cloud provider, if available.",
        ),
        _col(
            "OS-Image",
            priority=1,
            desc="OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        ),
        _col(
            "Kernel-Version",
            priority=1,
            desc="Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        ),
        _col(
            "Container-Runtime",
            priority=1,
            desc="ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        ),
    ],
    "pods": [
        _col("Name", fmt="name", desc=_NAME),
        _col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", desc="The aggregate status of the containers in this pod."),
        _col(
            "Restarts",
            desc="The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        _col("Age", desc=_AGE),
        _col(
            "IP",
            priority=1,
            desc="IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        ),
        _col("Node", priority=1, desc="NodeName is a request to schedule this pod onto a specific node."),
        _col(
            "Nominated Node",
            priority=1,
            desc="nominatedNodeName is set only when this pod preempts other pods on the node.",
        ),
        _col(
            "Readiness Gates", priority=1, desc="If specified, all readiness gates will be evaluated for pod readiness."
        ),
    ],
    "services": [
        _col("Name", fmt="name", desc=_NAME),
        _col("Type", desc="type determines how the Service is exposed."),
        _col("Cluster-IP", desc="clusterIP is the IP address of the service and is usually assigned randomly."),
        _col(
            "External-IP",
            desc="externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
        ),
        _col("Port(s)", desc="The list of ports that are exposed by this service."),
        _col("Age", desc=_AGE),
        _col(
            "Selector",
            priority=1,
            desc="Route service traffic to pods with label keys and values matching this selector.",
        ),
    ],
    "events": [
        _col("Last Seen", desc="Time when last occurrence of the event was recorded."),
        _col("Type", desc="Type of this event (Normal, Warning), new types could be added in the future."),
        _col(
            "Reason",
            desc="This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        _col("Object", desc="The object that this event is about."),
        _col("Subobject", priority=1, desc="The subobject that this event is about."),
        _col("Source", priority=1, desc="The component reporting this event."),
        _col("Message", desc="A human-readable description of the status of this operation."),
        _col("First Seen", priority=1, desc="The time at which the event was first recorded."),
        _col("Count", priority=1, desc="The number of times this event has occurred."),
        _col("Name", priority=1, fmt="name", desc=_NAME),
    ],
    "namespaces": [
        _col("Name", fmt="name", desc=_NAME),
        _col("Status", desc="The status of the namespace"),
        _col("Age", desc=_AGE),
    ],
    "networkpolicies": [
        _col("Name", fmt="name", desc=_NAME),
        _col(
            "Pod-Selector",
            desc="podSelector selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.",
        ),
        _col("Age", desc=_AGE),
    ],
    # a CRD without printer columns: the API server prints Name and Age
    "calico.networkpolicies": [_col("Name", fmt="name", desc=_NAME), _col("Age", desc=_AGE)],
    "calico.globalnetworkpolicies": [_col("Name", fmt="name", desc=_NAME), _col("Age", desc=_AGE)],
}


def parse_ts(s: str | None) -> float | None:
    if not s:
        return None
    return float(calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")))


def human_duration(d: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(d)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        y = h // (24 * 365)
        dd = (h // 24) % 365
        return f"{y}y{dd}d" if dd else f"{y}y"
    return f"{h // (24 * 365)}y"


def _age(obj: dict[str, Any], now: float) -> str:
    t = parse_ts(obj["metadata"].get("creationTimestamp"))
    return "<unknown>" if t is None else human_duration(now - t)


def _node_cells(o: dict[str, Any], now: float) -> list[Any]:
    st = o.get("status", {})
    ready = next((c for c in st.get("conditions", []) if c.get("type") == "Ready"), None)
    status = ["Ready" if ready and ready.get("status") == "True" else "NotReady" if ready else "Unknown"]
    if o.get("spec", {}).get("unschedulable"):
        status.append("SchedulingDisabled")
    labels = o["metadata"].get("labels") or {}
    roles = sorted(
        {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]}
        | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set())
    )
    addrs = st.get("addresses", [])
    iip = next((a["address"] for a in addrs if a.get("type") == "InternalIP"), "<none>")
    eip = next((a["address"] for a in addrs if a.get("type") == "ExternalIP"), "<none>")
    info = st.get("nodeInfo", {})
    return [
        o["metadata"]["name"],
        ",".join(status),
        ",".join(roles) or "<none>",
        _age(o, now),
        info.get("kubeletVersion", ""),
        iip,
        eip,
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def _pod_cells(o: dict[str, Any], now: float) -> list[Any]:
    st = o.get("status", {})
    cs = st.get("containerStatuses", [])
    total = len(o.get("spec", {}).get("containers", []))
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in cs)
    reason = st.get("phase", "Unknown")
    for c in cs:
        w = (c.get("state") or {}).get("waiting")
        if w and w.get("reason"):
            reason = w["reason"]
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [
        o["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        str(restarts),
        _age(o, now),
        st.get("podIP") or "<none>",
        o.get("spec", {}).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _svc_cells(o: dict[str, Any], now: float) -> list[Any]:
    sp = o.get("spec", {})
    typ = sp.get("type", "ClusterIP")
    ext = "<none>"
    if typ == "LoadBalancer":
        ing = (o.get("status", {}).get("loadBalancer") or {}).get("ingress") or []
        ips = [i.get("ip") or i.get("hostname") for i in ing]
        ext = ",".join(x for x in ips if x) or "<pending>"
    ports = []
    for p in sp.get("ports", []):
        s = f"{p['port']}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        ports.append(f"{s}/{p.get('protocol', 'TCP')}")
    sel = sp.get("selector") or {}
    return [
        o["metadata"]["name"],
        typ,
        sp.get("clusterIP") or "<none>",
        ext,
        ",".join(ports) or "<none>",
        _age(o, now),
        ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>",
    ]


def _event_cells(o: dict[str, Any], now: float) -> list[Any]:
    io = o.get("involvedObject", {})
    last = parse_ts(o.get("lastTimestamp")) or parse_ts(o["metadata"].get("creationTimestamp")) or now
    first = parse_ts(o.get("firstTimestamp")) or last
    return [
        human_duration(now - last),
        o.get("type", ""),
        o.get("reason", ""),
        f"{io.get('kind', '').lower()}/{io.get('name', '')}",
        io.get("fieldPath", ""),
        (o.get("source") or {}).get("component", ""),
        o.get("message", ""),
        human_duration(now - first),
        int(o.get("count", 1)),
        o["metadata"]["name"],
    ]


def _ns_cells(o: dict[str, Any], now: float) -> list[Any]:
    return [o["metadata"]["name"], o.get("status", {}).get("phase", "Active"), _age(o, now)]


def _selector_text(sel: Any) -> str:
    """A LabelSelector as kubectl prints it: "<none>" for an empty one."""
    if not isinstance(sel, dict):
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op, key, vals = e.get("operator", ""), e.get("key", ""), ",".join(e.get("values") or [])
        parts.append(
            f"{key} in ({vals})"
            if op == "In"
            else f"{key} notin ({vals})"
            if op == "NotIn"
            else key
            if op == "Exists"
            else f"!{key}"
        )
    return ",".join(parts) or "<none>"


def _netpol_cells(o: dict[str, Any], now: float) -> list[Any]:
    return [o["metadata"]["name"], _selector_text((o.get("spec") or {}).get("podSelector")), _age(o, now)]


def _name_age_cells(o: dict[str, Any], now: float) -> list[Any]:
    return [o["metadata"]["name"], _age(o, now)]


def _ingress_cells(o: dict[str, Any], now: float) -> list[Any]:
    sp = o.get("spec", {})
    hosts = [r.get("host") for r in sp.get("rules", []) if r.get("host")]
    ing = (o.get("status", {}).get("loadBalancer") or {}).get("ingress") or []
    addr = ",".join(x for x in (i.get("ip") or i.get("hostname") for i in ing) if x)
    ports = "80, 443" if sp.get("tls") else "80"
    return [
        o["metadata"]["name"],
        sp.get("ingressClassName") or "<none>",
        ",".join(hosts) or "*",
        addr,
        ports,
        _age(o, now),
    ]


def _cert_cells(o: dict[str, Any], now: float) -> list[Any]:
    conds = o.get("status", {}).get("conditions") or []
    ready: dict[str, Any] = next((c for c in conds if c.get("type") == "Ready"), {})
    ref = o.get("spec", {}).get("issuerRef") or {}
    return [
        o["metadata"]["name"],
        ready.get("status", ""),
        o.get("spec", {}).get("secretName", ""),
        ref.get("name", ""),
        ready.get("message", ""),
        _age(o, now),
    ]


def _named_cells(o: dict[str, Any], now: float) -> list[Any]:
    return [o["metadata"]["name"], _age(o, now)]


COLUMNS["ingresses"] = [
    _col("Name", fmt="name", desc=_NAME),
    _col("Class", desc="The name of the IngressClass resource that should be used for ingress."),
    _col("Hosts", desc="Hosts that incoming requests are matched against before the HTTPIngressPath is matched."),
    _col("Address", desc="Address is a list containing ingress points for the load-balancer."),
    _col("Ports", desc="Ports of TLS configurations that open"),
    _col("Age", desc=_AGE),
]
COLUMNS["certificates"] = [
    _col("Name", fmt="name", desc=_NAME),
    _col("Ready"),
    _col("Secret"),
    _col("Issuer", priority=1),
    _col("Status", priority=1),
    _col("Age", typ="date", desc=_AGE),
]
for _r in (
    "endpointslices",
    "ingressclasses",
    "certificaterequests",
    "orders",
    "challenges",
    "gateways",
    "httproutes",
    "staticgatewayconfigurations",  # its CRD has no printer columns: Name and Age
):
    COLUMNS[_r] = [_col("Name", fmt="name", desc=_NAME), _col("Age", desc=_AGE)]


CELLS = {
    "networkpolicies": _netpol_cells,
    "calico.networkpolicies": _name_age_cells,
    "calico.globalnetworkpolicies": _name_age_cells,
    "staticgatewayconfigurations": _name_age_cells,
    "nodes": _node_cells,
    "pods": _pod_cells,
    "services": _svc_cells,
    "events": _event_cells,
    "namespaces": _ns_cells,
    "ingresses": _ingress_cells,
    "certificates": _cert_cells,
}


def row_cells(resource: str, obj: dict[str, Any], now: float) -> list[Any]:
    return CELLS.get(resource, _named_cells)(obj, now)
