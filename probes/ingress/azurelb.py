"""What the Azure cloud provider makes of a LoadBalancer service: its annotations read the
way cloud-provider-azure reads them, said as what Azure does. Pure: no I/O.

The health probe follows the provider's rules since Kubernetes 1.24 on AKS:
`externalTrafficPolicy: Local` → an HTTP probe of kube-proxy's `healthCheckNodePort` on
`/healthz` (a node passes only with a ready local endpoint); otherwise, per port, the
protocol from `service.beta.kubernetes.io/port_<port>_health-probe_protocol`, then
`azure-load-balancer-health-probe-protocol`, then the port's `appProtocol`, else TCP; for
HTTP(S) the path from `port_<port>_health-probe_request-path`, then
`azure-load-balancer-health-probe-request-path`, else `/`; on the port's NodePort.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.ingress.model import LbService, PortInfo

PREFIX = "service.beta.kubernetes.io/"
INTERNAL = PREFIX + "azure-load-balancer-internal"
INTERNAL_SUBNET = PREFIX + "azure-load-balancer-internal-subnet"
DNS_LABEL = PREFIX + "azure-dns-label-name"
PROBE_PROTOCOL = PREFIX + "azure-load-balancer-health-probe-protocol"
PROBE_PATH = PREFIX + "azure-load-balancer-health-probe-request-path"
PROBE_INTERVAL = PREFIX + "azure-load-balancer-health-probe-interval"
PROBE_COUNT = PREFIX + "azure-load-balancer-health-probe-num-of-probe"
PLS_CREATE = PREFIX + "azure-pls-create"
PLS_NAME = PREFIX + "azure-pls-name"
PLS_SUBNET = PREFIX + "azure-pls-ip-configuration-subnet"
PIP_NAME = PREFIX + "azure-pip-name"
PIP_RG = PREFIX + "azure-load-balancer-resource-group"
IPV4 = PREFIX + "azure-load-balancer-ipv4"
SERVICE_TAGS = PREFIX + "azure-allowed-service-tags"
IP_RANGES = PREFIX + "azure-allowed-ip-ranges"
IDLE_TIMEOUT = PREFIX + "azure-load-balancer-tcp-idle-timeout"
SHARED_RULE = PREFIX + "azure-shared-securityrule"
NO_FLOATING_IP = PREFIX + "azure-disable-load-balancer-floating-ip"
EXTERNAL_DNS = "external-dns.alpha.kubernetes.io/hostname"


def port_probe_protocol(port: int) -> str:
    return f"{PREFIX}port_{port}_health-probe_protocol"


def port_probe_path(port: int) -> str:
    return f"{PREFIX}port_{port}_health-probe_request-path"


def is_azure(annotation: str) -> bool:
    return annotation.startswith(PREFIX) or annotation == EXTERNAL_DNS


def _true(v: str) -> bool:
    return v.strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class Probe:
    """The health probe the Azure load balancer sends for one service port."""

    port: int  # the service port it stands for
    protocol: str  # Tcp / Http / Https
    probe_port: int  # the node port probed (NodePort, or healthCheckNodePort)
    path: str = ""  # HTTP(S) only
    why: str = ""  # which setting decided the protocol and path

    @property
    def text(self) -> str:
        where = f"node port {self.probe_port}" if self.probe_port else "its node port"
        if self.protocol == "Tcp":
            return f"TCP probe on {where}"
        return f"{self.protocol.upper()} probe GET {self.path} on {where}"


def probes(svc: LbService) -> tuple[Probe, ...]:
    """The health probes Azure configures for `svc` (one per TCP port; UDP ports share TCP
    probes on their node port, as the provider does)."""
    if svc.external_traffic_policy == "Local":
        hc = svc.health_check_node_port
        return tuple(
            Probe(p.port, "Http", hc, "/healthz", "externalTrafficPolicy: Local (kube-proxy's health check)")
            for p in svc.ports[:1]
        )
    out = []
    for p in svc.ports:
        out.append(_port_probe(svc, p))
    return tuple(out)


def _first_annotation(svc: LbService, *keys: tuple[str, str]) -> tuple[str, str]:
    """(value, label) of the first (annotation, label) set on the service: the per-port
    annotation before the service-wide one, as the cloud provider reads them; ("", "")."""
    for key, label in keys:
        v = svc.annotation(key)
        if v:
            return v, label
    return "", ""


def _port_probe(svc: LbService, p: PortInfo) -> Probe:
    proto, why = _first_annotation(
        svc,
        (port_probe_protocol(p.port), f"port_{p.port}_health-probe_protocol"),
        (PROBE_PROTOCOL, "azure-load-balancer-health-probe-protocol"),
    )
    if not proto and p.app_protocol:
        proto, why = p.app_protocol, f"appProtocol: {p.app_protocol} on port {p.port}"
    norm = proto.strip().lower()
    if norm not in ("http", "https"):
        return Probe(p.port, "Tcp", p.node_port, "", why or "default (no protocol set)")
    path, path_why = _first_annotation(
        svc,
        (port_probe_path(p.port), f"port_{p.port}_health-probe_request-path"),
        (PROBE_PATH, "azure-load-balancer-health-probe-request-path"),
    )
    if not path:
        path, path_why = "/", "default path /"
    return Probe(p.port, "Http" if norm == "http" else "Https", p.node_port, path, f"{why}; {path_why}")


@dataclass(frozen=True, slots=True)
class Effect:
    """One thing Azure does because of the service (label: what, text: how)."""

    what: str
    text: str


def effects(svc: LbService, region: str = "") -> tuple[Effect, ...]:
    """What Azure creates or configures for `svc`, in the operator's words."""
    out: list[Effect] = []
    internal = _true(svc.annotation(INTERNAL))
    ip = svc.external[0] if svc.external else ""
    pinned = svc.annotation(IPV4) or svc.load_balancer_ip
    if internal:
        subnet = svc.annotation(INTERNAL_SUBNET)
        out.append(
            Effect(
                "load balancer",
                "internal (kubernetes-internal) frontend "
                + (f"on subnet {subnet}" if subnet else "on the nodes' subnet")
                + (f", IP {pinned} asked" if pinned else ""),
            )
        )
    else:
        pip = svc.annotation(PIP_NAME)
        rg = svc.annotation(PIP_RG)
        out.append(
            Effect(
                "load balancer",
                "public (kubernetes) frontend, "
                + (f"public IP {pip}" if pip else "a new public IP")
                + (f" in resource group {rg}" if rg else " in the node resource group")
                + (f", IP {pinned} asked" if pinned else ""),
            )
        )
    label = svc.annotation(DNS_LABEL)
    if label:
        if internal:
            out.append(Effect("DNS label", f"{label}: ignored on an internal load balancer"))
        else:
            fqdn = f"{label}.{region or '<region>'}.cloudapp.azure.com"
            out.append(Effect("DNS label", f"public IP's FQDN {fqdn}"))
    ext = svc.annotation(EXTERNAL_DNS)
    if ext:
        out.append(Effect("external-dns", f"records {ext} → {ip or 'the frontend IP'}"))
    ports = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports) or "no ports"
    target = ip or "the frontend IP"
    if svc.source_ranges:
        out.append(
            Effect(
                "NSG",
                f"allow {', '.join(svc.source_ranges)} → {target} {ports} (loadBalancerSourceRanges); "
                "other sources get no allow rule",
            )
        )
    tags = svc.annotation(SERVICE_TAGS)
    ranges = svc.annotation(IP_RANGES)
    if tags or ranges:
        what = ", ".join(x for x in (tags, ranges) if x)
        out.append(Effect("NSG", f"allow {what} → {target} {ports}"))
    if not (svc.source_ranges or tags or ranges):
        src = "VirtualNetwork" if internal else "Internet"
        out.append(Effect("NSG", f"allow {src} → {target} {ports}"))
    for pr in probes(svc):
        out.append(Effect("health probe", f"{pr.text} ({pr.why})"))
    if _true(svc.annotation(PLS_CREATE)):
        name = svc.annotation(PLS_NAME) or f"pls-<frontend of {svc.name}>"
        subnet = svc.annotation(PLS_SUBNET) or "the load balancer's subnet"
        out.append(Effect("private link", f"Private Link service {name} with NAT IPs on {subnet}"))
    idle = svc.annotation(IDLE_TIMEOUT)
    if idle:
        out.append(Effect("idle timeout", f"TCP idle timeout {idle} min"))
    if _true(svc.annotation(NO_FLOATING_IP)):
        out.append(Effect("floating IP", "off: the rule targets node IPs, not the frontend IP"))
    if svc.external_traffic_policy == "Local":
        out.append(Effect("traffic policy", "Local: client IP kept; only nodes with a ready endpoint pass the probe"))
    return tuple(out)
