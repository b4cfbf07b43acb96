"""Which Azure Resource Manager endpoint, and how to get a token for it.

``azure.cloud`` names a cloud (its ARM endpoint, its Entra ID authority, the token scope);
``azure.arm_endpoint`` overrides the endpoint (Azure Stack Hub, a private endpoint, a test
server). A plain-HTTP endpoint is accepted only on loopback: it gets a placeholder bearer
token and never runs the credential chain (tests and the demo's lab). Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# cloud name -> (ARM endpoint, Entra ID authority host); the names `az cloud list` prints
CLOUDS: dict[str, tuple[str, str]] = {
    "AzureCloud": ("https://management.azure.com", "login.microsoftonline.com"),
    "AzureChinaCloud": ("https://management.chinacloudapi.cn", "login.chinacloudapi.cn"),
    "AzureUSGovernment": ("https://management.usgovcloudapi.net", "login.microsoftonline.us"),
}
LOOPBACK_TOKEN = "aksnet-loopback-placeholder"  # sent to a plain-HTTP loopback endpoint only


@dataclass(frozen=True, slots=True)
class ArmEndpoint:
    url: str  # no trailing slash
    authority: str  # Entra ID authority host for the credential chain
    scope: str  # the token scope: "<endpoint>/.default"
    loopback: bool = False  # plain HTTP on loopback: placeholder token, no credential chain


def cloud_name(value: str) -> str:
    """The canonical spelling of a cloud name (case-insensitive); ValueError names the choices."""
    v = value.strip()
    for name in CLOUDS:
        if name.lower() == v.lower():
            return name
    raise ValueError(f"unknown cloud {value!r} (known: {', '.join(CLOUDS)})")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(value: str) -> str:
    """An ARM endpoint as configured: "" (the cloud's own), https://host[:port][/path], or
    http:// on loopback only. Returns it without a trailing slash; ValueError in one line."""
    v = value.strip().rstrip("/")
    if not v:
        return ""
    try:
        u = urlsplit(v)
        host = u.hostname or ""
        _ = u.port  # a bad port raises here
    except ValueError:
        raise ValueError(f"{value!r} is not a URL (expected https://host[:port])") from None
    if u.scheme not in ("https", "http") or not host or u.query or u.fragment:
        raise ValueError(f"{value!r} is not an https:// URL (expected https://host[:port])")
    if u.scheme == "http" and not _is_loopback(host):
        raise ValueError(
            f"plain HTTP is refused for {host} (a token would travel in clear): use https://, "
            "or http:// on loopback (127.0.0.1, ::1, localhost) for a test server"
        )
    return v


def resolve(cloud: str = "AzureCloud", arm_endpoint: str = "") -> ArmEndpoint:
    """The endpoint the clients use and the credential's authority and scope."""
    base, authority = CLOUDS[cloud_name(cloud or "AzureCloud")]
    url = check_endpoint(arm_endpoint) or base
    loopback = url.startswith("http://")
    return ArmEndpoint(url=url, authority=authority, scope=f"{url}/.default", loopback=loopback)


class PlaceholderCredential:
    """A TokenCredential for a loopback test endpoint: a fixed token, never a network call."""

    def __init__(self, token: str = LOOPBACK_TOKEN) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        # lazy: azure.core (~0.2 s) loads only with the SDK clients that call this
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)

    def close(self) -> None:
        pass


__all__ = [
    "CLOUDS",
    "LOOPBACK_TOKEN",
    "ArmEndpoint",
    "PlaceholderCredential",
    "check_endpoint",
    "cloud_name",
    "resolve",
]
