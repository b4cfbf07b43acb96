"""The egress probe against real kernel behaviour on loopback: each outcome in connect
mode and in SYN mode, DNS failures, the lab's per-address port map, and the fallback to
connect mode when raw sockets are refused (injected, and for real without privileges)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from probes.egress.probe import (
    EgressKey,
    EgressMode,
    EgressOutcome,
    EgressProbe,
    classify_errno,
    resolver_at,
    static_resolver,
)
from probes.egress.targets import parse_target
from probes.lab.dnsserver import DnsResponder, Zone
from probes.lab.dnsspec import Behaviour
from probes.lab.dnsspec import DnsFaultMode as DnsMode

ROOT = Path(__file__).resolve().parents[2]


async def _one(mode: str, target, **kw):
    p = EgressProbe(mode=mode, timeout=kw.pop("timeout", 1.2), **kw)
    try:
        return await p.probe(target)
    finally:
        await p.close()


async def test_open(lab, mode):
    r = await _one(mode, lab.open.text)
    assert r.outcome is EgressOutcome.OPEN, r
    assert r.mode is EgressMode(mode) and r.fallback == ""
    assert r.success and not r.lost and r.error == ""
    assert 0.0 < r.latency_ms < 1000.0
    assert r.address == lab.open.host and r.port == lab.open.port
    assert r.key == EgressKey("local", lab.open.text)
    if mode == "syn":
        assert " SA" in r.raw  # the SYN-ACK, rendered by scapy


async def test_refused(lab, mode):
    r = await _one(mode, lab.refused.text)
    assert r.outcome is EgressOutcome.REFUSED, r
    assert r.lost and not r.success
    assert "refused" in r.error


async def test_timeout_on_a_full_accept_queue(lab, mode):
    r = await _one(mode, lab.dropped.text, timeout=1.3)  # > 1 s: the SYN is sent twice
    assert r.outcome is EgressOutcome.TIMEOUT, r
    assert r.latency_ms >= 1250.0
    assert "no answer" in r.error


async def test_syn_mode_open_leaves_no_connection(lab, root):
    """The half-open handshake is torn down: the listener never accepts a connection."""
    import asyncio

    before = lab.accepted
    p = EgressProbe(mode="syn", timeout=1.0)
    try:
        rs = await p.probe_all([lab.open.text] * 20)
    finally:
        await p.close()
    assert all(r.outcome is EgressOutcome.OPEN for r in rs)
    await asyncio.sleep(0.3)
    assert lab.accepted == before
    assert p._syn is None or p._syn._tcp is None  # raw sockets closed when idle


async def test_connect_mode_closes_with_reset(lab):
    """Open checks in connect mode leave no TIME_WAIT on this host (SO_LINGER 0)."""
    p = EgressProbe(mode="connect", timeout=1.0)
    rs = await p.probe_all([lab.open.text] * 50)
    assert all(r.outcome is EgressOutcome.OPEN for r in rs)
    ss = subprocess.run(
        ["ss", "-tanH", "state", "time-wait", "dst", lab.open.host, "dport", "=", str(lab.open.port)],
        capture_output=True,
        text=True,
    )
    if ss.returncode == 0:
        assert ss.stdout.strip() == "", ss.stdout


async def test_dns_failure_via_resolver_function(mode, requires):
    r = await _one(mode, "nowhere.example:443", resolve=static_resolver({}))
    assert r.outcome is EgressOutcome.DNS_NXDOMAIN and r.outcome.dns
    assert "NXDOMAIN" in r.error and r.address == ""
    assert not r.lost and not r.success


@pytest.mark.parametrize(
    "behaviour, kind, words",
    [
        (Behaviour(mode=DnsMode.NXDOMAIN), EgressOutcome.DNS_NXDOMAIN, "NXDOMAIN"),
        (Behaviour(mode=DnsMode.SERVFAIL), EgressOutcome.DNS_SERVFAIL, "SERVFAIL"),
        (Behaviour(mode=DnsMode.DROP), EgressOutcome.DNS_TIMEOUT, "no DNS answer"),
        (Behaviour(mode=DnsMode.REFUSED), EgressOutcome.DNS_FAILURE, "REFUSED"),
    ],
)
async def test_dns_failure_kinds_from_a_lab_dns_server(behaviour, kind, words):
    """The kind comes from what the server put on the wire (dnspython's exception and the
    answer's rcode): NXDOMAIN, SERVFAIL, silence, and REFUSED as 'anything else'."""
    with DnsResponder(behaviour) as dns:
        r = await _one(
            "connect", "mcr.microsoft.com:443", resolve=resolver_at(*dns.address, timeout=0.5), dns_timeout=0.8
        )
        assert dns.queries >= 1  # asked for real
    assert r.outcome is kind, r
    assert r.outcome.dns and not r.lost and r.address == ""
    assert words in r.error


async def test_dns_kinds_per_name_from_one_server(lab):
    """One server, three names, three kinds (the lab's per-node view in the demo): the
    probe tells them apart per check, and the name that resolves is dialled."""
    zone = Zone(cluster={}, external={"ok.example": lab.open.host}, synthesize_external=False)
    beh = Behaviour(
        by_name=(
            ("slow.example", Behaviour(mode=DnsMode.DROP)),
            ("broken.example", Behaviour(mode=DnsMode.SERVFAIL)),
        )
    )
    with DnsResponder(beh, zone=zone) as dns:
        p = EgressProbe(mode="connect", timeout=0.5, resolve=resolver_at(*dns.address, timeout=0.5), dns_timeout=0.8)
        try:
            rs = await p.probe_all(
                ["slow.example:443", "broken.example:443", "gone.example:443", f"ok.example:{lab.open.port}"]
            )
        finally:
            await p.close()
    got = {r.target: r.outcome for r in rs}
    assert got == {
        "slow.example:443": EgressOutcome.DNS_TIMEOUT,
        "broken.example:443": EgressOutcome.DNS_SERVFAIL,
        "gone.example:443": EgressOutcome.DNS_NXDOMAIN,
        f"ok.example:{lab.open.port}": EgressOutcome.OPEN,  # resolved, then dialled
    }


def test_every_dns_kind_fails_the_check_and_is_no_loss():
    for o in EgressOutcome:
        assert o.dns == o.value.startswith("dns-")
        if o.dns:
            assert not o.down and o.health.name == "FAILING"


async def test_name_resolved_by_lab_dns_then_dialled_through_the_port_map(lab, mode):
    """The demo's wiring: a DNS answer picks a loopback behaviour; the port map sends
    443 to the behaviour's real port. The default targets are never dialled for real."""
    zone = Zone(
        external={
            "mcr.microsoft.com": lab.dropped.host,
            "management.azure.com": lab.open.host,
            "login.microsoftonline.com": lab.refused.host,
        },
        synthesize_external=False,
    )
    with DnsResponder(zone=zone) as dns:
        p = EgressProbe(mode=mode, timeout=1.2, resolve=resolver_at(*dns.address), dial_map=lab.dial_map())
        try:
            rs = await p.probe_all(
                [
                    "mcr.microsoft.com:443",
                    "management.azure.com:443",
                    "login.microsoftonline.com:443",
                    "unknown.example:443",
                ]
            )
        finally:
            await p.close()
    got = {r.target: r for r in rs}
    assert got["mcr.microsoft.com:443"].outcome is EgressOutcome.TIMEOUT
    assert got["management.azure.com:443"].outcome is EgressOutcome.OPEN
    assert got["management.azure.com:443"].via == lab.open.text
    assert got["management.azure.com:443"].port == 443
    assert got["login.microsoftonline.com:443"].outcome is EgressOutcome.REFUSED
    assert got["unknown.example:443"].outcome is EgressOutcome.DNS_NXDOMAIN


async def test_fallback_when_raw_sockets_are_refused(lab):
    def denied(family, proto):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    p = EgressProbe(mode="auto", timeout=1.0, raw_socket=denied)
    rs = await p.probe_all([lab.open.text, lab.refused.text])
    assert [r.outcome for r in rs] == [EgressOutcome.OPEN, EgressOutcome.REFUSED]
    assert all(r.mode is EgressMode.CONNECT for r in rs)
    assert all("raw sockets not permitted" in r.fallback for r in rs)
    assert p.mode is EgressMode.CONNECT


async def test_forced_syn_mode_without_raw_sockets_is_a_local_error(lab):
    def denied(family, proto):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    r = await _one("syn", lab.open.text, raw_socket=denied)
    assert r.outcome is EgressOutcome.LOCAL_ERROR and "raw sockets" in r.error


async def test_auto_uses_syn_mode_as_root(lab, root):
    r = await _one("auto", lab.open.text)
    assert r.mode is EgressMode.SYN and r.fallback == "" and r.outcome is EgressOutcome.OPEN


async def test_ipv6_target_falls_back_to_connect_in_syn_mode(root):
    r = await _one("syn", "[::1]:1")
    if r.outcome is EgressOutcome.LOCAL_ERROR:  # no IPv6 on this host
        pytest.skip(r.error)
    assert r.mode is EgressMode.CONNECT and "IPv4-only" in r.fallback
    assert r.outcome is EgressOutcome.REFUSED


def test_real_unprivileged_run_falls_back(lab, requires):
    """Without CAP_NET_RAW the raw socket is refused for real: connect mode, and the
    result says why. (setpriv drops the capability from the bounding set; an unprivileged
    uid would also need read access to the interpreter, which a pyenv under /root lacks.)"""
    requires("root", "dropping CAP_NET_RAW")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but setpriv (util-linux) is missing")
        pytest.skip("setpriv (util-linux) not installed")
    r = subprocess.run(
        [
            setpriv,
            "--bounding-set=-net_raw",
            "--inh-caps=-net_raw",
            "--",
            sys.executable,
            "-m",
            "probes.egress.probe",
            "--timeout",
            "1",
            lab.open.text,
            lab.refused.text,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["outcome"] for x in rows] == ["open", "refused"]
    assert all(x["mode"] == "connect" and "raw sockets not permitted" in x["fallback"] for x in rows)


def test_classify_errno_covers_routes_and_local_errors():
    assert classify_errno(errno.ECONNREFUSED)[0] is EgressOutcome.REFUSED
    for e in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EINVAL, errno.EACCES, errno.EPERM):
        assert classify_errno(e)[0] is EgressOutcome.UNREACHABLE
    for e in (errno.EADDRNOTAVAIL, errno.EMFILE, errno.ENFILE, errno.ENOBUFS):
        assert classify_errno(e)[0] is EgressOutcome.LOCAL_ERROR
    assert "ephemeral ports" in classify_errno(errno.EADDRNOTAVAIL)[1]


async def test_local_error_when_out_of_descriptors(lab, monkeypatch):
    import socket as socket_mod

    real = socket_mod.socket

    def emfile(*a, **kw):
        if a and a[0] == socket_mod.AF_INET and len(a) > 1 and a[1] == socket_mod.SOCK_STREAM:
            raise OSError(errno.EMFILE, "Too many open files")
        return real(*a, **kw)

    monkeypatch.setattr("probes.egress.probe.socket.socket", emfile)
    r = await _one("connect", lab.open.text)
    assert r.outcome is EgressOutcome.LOCAL_ERROR and "EMFILE" in r.error


def test_invalid_target_raises_at_config_time():
    with pytest.raises(ValueError, match="1 to 65535"):
        parse_target("mcr.microsoft.com:70000")
    with pytest.raises(ValueError, match="auto, syn or connect"):
        EgressProbe(mode="udp")


def test_probes_import_neither_scapy_nor_textual():
    code = (
        "import sys, probes.egress.probe, probes.egress.targets, probes.lab.tcptargets, tests.support.netns; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('scapy', 'textual')]; "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
