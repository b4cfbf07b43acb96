"""Target parsing (config-time errors), the default AKS list and the API server target."""

from __future__ import annotations

import pytest

from probes.egress.targets import (
    AKS_REQUIRED,
    Target,
    apiserver_target,
    data_mcr_host,
    egress_targets,
    parse_target,
    parse_targets,
)


@pytest.mark.parametrize(
    "text, host, port",
    [
        ("mcr.microsoft.com:443", "mcr.microsoft.com", 443),
        ("  MCR.Microsoft.com:443 ", "mcr.microsoft.com", 443),
        ("10.0.0.1:80", "10.0.0.1", 80),
        ("[fd00::1]:443", "fd00::1", 443),
        ("[::1]:1", "::1", 1),
        ("example.com.:65535", "example.com", 65535),
    ],
)
def test_parse_ok(text, host, port):
    t = parse_target(text)
    assert (t.host, t.port) == (host, port)
    assert parse_target(t.text) == t


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty"),
        ("mcr.microsoft.com", "no port"),
        ("mcr.microsoft.com:0", "1 to 65535"),
        ("mcr.microsoft.com:65536", "1 to 65535"),
        ("mcr.microsoft.com:-1", "1 to 65535"),
        ("mcr.microsoft.com:https", "1 to 65535"),
        ("mcr.microsoft.com:", "1 to 65535"),
        ("https://mcr.microsoft.com:443", "not a URL"),
        ("fd00::1:443", "brackets"),
        ("[fd00::1", "missing ']'"),
        ("[fd00::1]443", "expected ':port'"),
        ("[10.0.0.1]:443", "not an IPv6"),
        ("[fd00::1]", "no port"),
        ("bad_host!:443", "may hold only"),
        ("a..b:443", "empty label"),
        ("999.1.1.1:443", "neither an IP"),
    ],
)
def test_parse_errors_say_what_is_wrong(text, words):
    with pytest.raises(ValueError) as e:
        parse_target(text)
    assert words in str(e.value)


def test_default_port_and_bare_v6():
    assert parse_target("mcr.microsoft.com", default_port=443).port == 443
    assert parse_target("fd00::2", default_port=443).text == "[fd00::2]:443"


def test_parse_targets_names_the_bad_entry():
    with pytest.raises(ValueError, match="'nope:99999'"):
        parse_targets(["a.example:1", "nope:99999"])


def test_apiserver_target_from_kubeconfig_url():
    t = apiserver_target("https://myaks-dns-1a2b3c.hcp.eastus.azmk8s.io:443")
    assert t == Target("myaks-dns-1a2b3c.hcp.eastus.azmk8s.io", 443, "apiserver", t.why)
    assert apiserver_target("https://10.1.0.4").text == "10.1.0.4:443"
    assert apiserver_target("https://[fd00::4]:6443").text == "[fd00::4]:6443"
    with pytest.raises(ValueError):
        apiserver_target("https://:443")


def test_default_list_is_data_only_and_deduplicated():
    names = {t.host for t in AKS_REQUIRED}
    assert {
        "mcr.microsoft.com",
        "management.azure.com",
        "login.microsoftonline.com",
        "packages.microsoft.com",
        "acs-mirror.azureedge.net",
    } <= names
    assert all(t.port == 443 and t.source == "aks-required" and t.why for t in AKS_REQUIRED)
    ts = egress_targets(
        server_url="https://x.hcp.westeurope.azmk8s.io:443",
        extra=["mcr.microsoft.com:443", "10.0.0.1:8443"],
        region="westeurope",
    )
    texts = [t.text for t in ts]
    assert len(texts) == len(set(texts))
    assert "westeurope.data.mcr.microsoft.com:443" in texts
    assert texts[-2:] == ["x.hcp.westeurope.azmk8s.io:443", "10.0.0.1:8443"]
    assert egress_targets(defaults=False, extra=["a.example:1"]) == [parse_target("a.example:1")]
    assert data_mcr_host("West Europe").host == "westeurope.data.mcr.microsoft.com"
