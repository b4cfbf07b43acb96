"""Which TCP endpoints the egress probe checks: parsing, AKS's required outbound
endpoints, the cluster's API server, and the user's own.

A :class:`Target` is data only. The default list names endpoints every AKS cluster must
reach (Microsoft's "outbound network and FQDN rules for AKS clusters", required for all
clusters in Azure Global); nothing here ever opens a connection. Tests and benchmarks must
never probe the defaults: they dial loopback or addresses inside their own namespaces.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from probes.dns.resolvers import validate_name


@dataclass(frozen=True, slots=True)
class Target:
    host: str  # DNS name (no trailing dot) or IP address
    port: int
    source: str = "config"  # aks-required | apiserver | config | cli
    why: str = ""  # what the cluster needs it for, shown in the detail view
    # why its vantage cannot reach it (probes.engine.reach; IP targets only), "" when it
    # can: shown grey with this reason, never checked from there
    unreachable: str = ""

    @property
    def reachable(self) -> bool:
        return not self.unreachable

    @property
    def text(self) -> str:
        """'host:port', '[v6]:port': the key the UI and History use."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        return _ip(self.host) is not None

    def __str__(self) -> str:
        return self.text


def _ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _port(p: str, text: str) -> int:
    if not p.isdigit() or not 0 < int(p) < 65536:
        raise ValueError(f"egress target {text!r}: port must be a number from 1 to 65535, got {p!r}")
    return int(p)


def parse_target(text: str, *, default_port: int | None = None, source: str = "config", why: str = "") -> Target:
    """'host:port', '10.0.0.1:443', '[fd00::1]:443' (and 'host' when `default_port` is
    given) -> Target. Raises ValueError saying what is wrong, for config-time errors."""
    if not isinstance(text, str):
        raise ValueError(f"egress target must be text like 'mcr.microsoft.com:443', got {type(text).__name__}")
    s = text.strip()
    if not s:
        raise ValueError("egress target is empty; write it as host:port, e.g. mcr.microsoft.com:443")
    if "://" in s:
        raise ValueError(f"egress target {text!r}: write host:port, not a URL (e.g. mcr.microsoft.com:443)")
    if s.startswith("["):
        host, sep, rest = s[1:].partition("]")
        if not sep:
            raise ValueError(f"egress target {text!r}: missing ']' after the IPv6 address")
        if _ip(host) is None or ":" not in host:
            raise ValueError(f"egress target {text!r}: {host!r} in brackets is not an IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"egress target {text!r}: expected ':port' after ']'")
            port = _port(rest[1:], text)
        elif default_port is not None:
            port = default_port
        else:
            raise ValueError(f"egress target {text!r}: no port; write it as [{host}]:443")
        return Target(str(ipaddress.ip_address(host)), port, source, why)
    if s.count(":") > 1:
        if _ip(s) is not None:
            if default_port is None:
                raise ValueError(
                    f"egress target {text!r}: put an IPv6 address in brackets with its port, e.g. [{s}]:443"
                )
            return Target(str(ipaddress.ip_address(s)), default_port, source, why)
        raise ValueError(f"egress target {text!r}: too many ':'; IPv6 goes in brackets, e.g. [fd00::1]:443")
    if ":" in s:
        host, p = s.rsplit(":", 1)
        port = _port(p, text)
    elif default_port is not None:
        host, port = s, default_port
    else:
        raise ValueError(f"egress target {text!r}: no port; write it as {s}:443")
    ip = _ip(host)
    if ip is not None:
        return Target(ip, port, source, why)
    try:
        name = validate_name(host)
    except ValueError as e:
        raise ValueError(f"egress target {text!r}: {e}") from None
    if name.replace(".", "").isdigit():
        raise ValueError(f"egress target {text!r}: {host!r} is neither an IP address nor a DNS name")
    return Target(name.lower(), port, source, why)


def parse_targets(texts: Iterable[str], *, source: str = "config") -> list[Target]:
    """Parse every entry; the first bad one raises (the message names it)."""
    return [parse_target(t, source=source) for t in texts]


# Required outbound endpoints for every AKS cluster (Azure Global). Wildcards get one
# concrete host: *.data.mcr.microsoft.com is regional (see data_mcr_host).
AKS_REQUIRED: tuple[Target, ...] = (
    Target(
        "mcr.microsoft.com",
        443,
        "aks-required",
        "Microsoft Container Registry: system images (CoreDNS, konnectivity, CSI)",
    ),
    Target("mcr-0001.mcr-msedge.net", 443, "aks-required", "MCR content delivery (image layers)"),
    Target(
        "management.azure.com", 443, "aks-required", "Azure Resource Manager: cloud provider calls (LB, routes, disks)"
    ),
    Target(
        "login.microsoftonline.com",
        443,
        "aks-required",
        "Microsoft Entra ID: tokens for the cloud provider and kubelet identity",
    ),
    Target(
        "packages.microsoft.com", 443, "aks-required", "Microsoft package repository: node packages (moby, azure-cli)"
    ),
    Target(
        "acs-mirror.azureedge.net",
        443,
        "aks-required",
        "AKS binaries mirror: kubenet/CNI plugins, kubelet during node bootstrap and upgrade",
    ),
    Target("packages.aks.azure.com", 443, "aks-required", "AKS binaries (successor of acs-mirror.azureedge.net)"),
)


def data_mcr_host(region: str) -> Target:
    """The regional MCR data endpoint (<region>.data.mcr.microsoft.com:443), the concrete
    host behind the *.data.mcr.microsoft.com rule; pass the cluster's location."""
    r = region.strip().lower().replace(" ", "")
    return Target(
        f"{validate_name(r)}.data.mcr.microsoft.com", 443, "aks-required", "MCR regional data endpoint (image layers)"
    )


def apiserver_target(server_url: str) -> Target:
    """The kubeconfig cluster `server` URL ('https://x.hcp.eastus.azmk8s.io:443') as a
    target; nodes must reach it on 443 (and the jumpbox too, or kubectl fails)."""
    u = urlsplit(server_url.strip() if "://" in server_url else "https://" + server_url.strip())
    if not u.hostname:
        raise ValueError(f"API server URL {server_url!r} has no host")
    try:
        port = u.port or 443
    except ValueError:
        raise ValueError(f"API server URL {server_url!r} has an invalid port") from None
    host = u.hostname
    t = parse_target(
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        source="apiserver",
        why="the cluster's API server (nodes, kubectl)",
    )
    return t


def egress_targets(
    *,
    server_url: str | None = None,
    extra: Iterable[str | Target] = (),
    defaults: bool = True,
    region: str | None = None,
) -> list[Target]:
    """The target list: AKS's required endpoints, the API server, then the user's own
    (config, then CLI). Duplicates (same host:port) keep their first entry. Raises
    ValueError for an unparseable entry."""
    out: list[Target] = []
    if defaults:
        out.extend(AKS_REQUIRED)
        if region:
            out.append(data_mcr_host(region))
    if server_url:
        out.append(apiserver_target(server_url))
    for e in extra:
        out.append(e if isinstance(e, Target) else parse_target(e))
    seen: set[str] = set()
    result = []
    for t in out:
        if t.text in seen:
            continue
        seen.add(t.text)
        result.append(t)
    return result
