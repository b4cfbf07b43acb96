"""Egress through the cluster's HTTP proxy: the no-proxy list (Go's httpproxy rules), and
the CONNECT probe against real CONNECT proxies on loopback — one that tunnels (to an open,
a refusing and a dropping destination), one that answers 403, one that hangs — and a proxy
that is not there."""

from __future__ import annotations

import socket
import time

import pytest

from probes.egress.probe import EgressMode, EgressOutcome, EgressProbe, static_resolver
from probes.egress.proxy import ProxySettings, bypass, parse_proxy, proxy_text
from probes.egress.targets import parse_target
from probes.engine.health import Health
from probes.lab.connectproxy import LabConnectProxy


@pytest.mark.parametrize(
    ("entries", "host", "port", "direct"),
    [
        (["*"], "mcr.microsoft.com", 443, True),
        (["mcr.microsoft.com"], "mcr.microsoft.com", 443, True),
        (["microsoft.com"], "mcr.microsoft.com", 443, True),  # a domain covers its subdomains
        ([".microsoft.com"], "mcr.microsoft.com", 443, True),
        ([".microsoft.com"], "microsoft.com", 443, False),  # a leading dot: subdomains only
        (["*.microsoft.com"], "mcr.microsoft.com", 443, True),
        (["icrosoft.com"], "mcr.microsoft.com", 443, False),  # whole labels only
        (["10.0.0.0/8"], "10.1.2.3", 443, True),
        (["10.0.0.0/8"], "11.1.2.3", 443, False),
        (["10.0.0.0/8"], "ten.example", 443, False),  # a CIDR never matches a name
        (["10.1.2.3"], "10.1.2.3", 443, True),
        (["mcr.microsoft.com:80"], "mcr.microsoft.com", 443, False),  # a port narrows it
        (["mcr.microsoft.com:443"], "mcr.microsoft.com", 443, True),
        (["MCR.Microsoft.com"], "mcr.microsoft.com.", 443, True),
        (["", "bad/cidr"], "mcr.microsoft.com", 443, False),
        ([], "mcr.microsoft.com", 443, False),
    ],
)
def test_bypass_follows_the_go_rules(entries, host, port, direct):
    assert bypass(entries, host, port) is direct


def test_proxy_urls_and_env():
    assert parse_proxy("http://proxy.hub.example:3128") == ("http", "proxy.hub.example", 3128)
    assert parse_proxy("10.50.2.4:3128") == ("http", "10.50.2.4", 3128)
    assert proxy_text("http://user:secret@proxy.hub.example:3128/") == "proxy.hub.example:3128"  # no credentials
    with pytest.raises(ValueError, match="socks5"):
        parse_proxy("socks5://x:1080")
    s = ProxySettings.from_env({"HTTPS_PROXY": "http://p:3128", "no_proxy": "localhost, .svc,10.0.0.0/8"})
    assert s is not None and s.no_proxy == ("localhost", ".svc", "10.0.0.0/8")
    assert s.url_for(443) == "http://p:3128" and s.url_for(80) == "http://p:3128"
    assert ProxySettings.from_env({"PATH": "/bin"}) is None
    both = ProxySettings("http://plain:80", "http://tls:3128")
    assert both.url_for(80) == "http://plain:80" and both.url_for(443) == "http://tls:3128"


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def _via(proxy: ProxySettings, target: str, timeout: float = 1.0, **kw):
    p = EgressProbe("node/n1", mode="connect", timeout=timeout, proxy=proxy, **kw)
    try:
        return await p.probe(parse_target(target))
    finally:
        await p.close()


def _settings(port: int, no_proxy: tuple[str, ...] = ()) -> ProxySettings:
    return ProxySettings(https_proxy=f"http://127.0.0.1:{port}", no_proxy=no_proxy)


@pytest.fixture
def tunnel(lab):
    """A tunnelling proxy whose upstream knows three names: open, refused, dropped."""
    names = {"open.example": lab.open, "refused.example": lab.refused, "dropped.example": lab.dropped}

    def upstream(host: str, port: int):
        e = names.get(host)
        return (e.host, e.port) if e is not None else None

    with LabConnectProxy("tunnel", upstream=upstream) as p:
        yield p


async def test_tunnel_opens_to_an_open_destination(tunnel, lab):
    before = lab.accepted
    r = await _via(_settings(tunnel.port), "open.example:443")
    assert (r.mode, r.outcome, r.status) == (EgressMode.PROXY, EgressOutcome.OPEN, 200)
    assert r.outcome.health is Health.GOOD and r.success
    assert r.proxy == f"127.0.0.1:{tunnel.port}" and r.address == "127.0.0.1"
    assert tunnel.requests[-1] == "CONNECT open.example:443 HTTP/1.1"
    deadline = time.monotonic() + 2.0
    while lab.accepted == before and time.monotonic() < deadline:  # the proxy really connected
        time.sleep(0.02)
    assert lab.accepted > before


@pytest.mark.parametrize(("name", "status"), [("refused.example", 502), ("unknown.example", 502)])
async def test_tunnel_says_when_it_cannot_reach_the_destination(tunnel, name, status):
    r = await _via(_settings(tunnel.port), f"{name}:443")
    assert (r.outcome, r.status) == (EgressOutcome.PROXY_REFUSED, status)
    assert "could not reach the destination" in r.error and r.outcome.health is Health.FAILING
    assert r.lost  # counted as loss, like a refused handshake


async def test_tunnel_to_a_silent_destination_answers_504_or_times_out(tunnel):
    # the lab's proxy waits 2 s for the destination; a probe with 3 s sees its 504
    r = await _via(_settings(tunnel.port), "dropped.example:443", timeout=3.0)
    assert (r.outcome, r.status) == (EgressOutcome.PROXY_REFUSED, 504), r.error
    # one with 1 s sees a proxy that does not answer in time
    r = await _via(_settings(tunnel.port), "dropped.example:443", timeout=1.0)
    assert r.outcome is EgressOutcome.PROXY_TIMEOUT


async def test_forbidding_proxy_is_refused_with_its_status():
    with LabConnectProxy("forbidden") as p:
        r = await _via(_settings(p.port), "mcr.microsoft.com:443")
    assert (r.mode, r.outcome, r.status) == (EgressMode.PROXY, EgressOutcome.PROXY_REFUSED, 403)
    assert f"proxy 127.0.0.1:{p.port} answered 403 Forbidden to CONNECT mcr.microsoft.com:443" in r.error
    assert r.outcome.health is Health.FAILING and r.outcome.proxy


async def test_proxy_wanting_credentials_is_407():
    with LabConnectProxy("auth") as p:
        r = await _via(_settings(p.port), "mcr.microsoft.com:443")
    assert (r.outcome, r.status) == (EgressOutcome.PROXY_REFUSED, 407) and "credentials" in r.error


async def test_hanging_proxy_times_out_within_the_timeout():
    with LabConnectProxy("hang") as p:
        t0 = time.monotonic()
        r = await _via(_settings(p.port), "mcr.microsoft.com:443", timeout=0.6)
        took = time.monotonic() - t0
    assert r.outcome is EgressOutcome.PROXY_TIMEOUT and r.status == 0
    assert "did not answer CONNECT" in r.error
    assert 0.5 <= took < 3.0
    assert r.outcome.health is Health.FAILING


async def test_absent_proxy_is_unreachable():
    r = await _via(_settings(_closed_port()), "mcr.microsoft.com:443")
    assert r.outcome is EgressOutcome.PROXY_UNREACHABLE and r.mode is EgressMode.PROXY
    assert r.outcome.health is Health.FAILING and r.lost


async def test_no_proxy_targets_go_direct(lab):
    r = await _via(_settings(_closed_port(), no_proxy=("127.0.0.0/8",)), f"{lab.open.host}:{lab.open.port}")
    assert r.mode is EgressMode.CONNECT and r.outcome is EgressOutcome.OPEN and r.proxy == ""


async def test_proxy_name_resolves_through_the_vantage_and_the_lab_dnat(tunnel):
    """The proxy's own name resolves as the pod resolves it; the lab's DNAT maps its port."""
    proxy = ProxySettings(https_proxy="http://proxy.hub.example:3128")
    r = await _via(
        proxy,
        "open.example:443",
        resolve=static_resolver({"proxy.hub.example": "127.0.0.1"}),
        dial_map={"127.0.0.1:3128": tunnel.port},
    )
    assert r.outcome is EgressOutcome.OPEN and r.proxy == "proxy.hub.example:3128"
    assert r.via == f"127.0.0.1:{tunnel.port}"
    r = await _via(proxy, "open.example:443", resolve=static_resolver({}))
    assert r.outcome is EgressOutcome.PROXY_UNREACHABLE and "does not resolve" in r.error
