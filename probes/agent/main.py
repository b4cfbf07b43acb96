"""``aksnet-top agent run``: the per-node agent as a process (the DaemonSet's container).

Every flag has an environment fallback (``NODE_NAME`` from the downward API, then
``AKSNET_AGENT_*``); the command line wins. The process serves one port (JSON for the
app, Prometheus metrics, a health check), logs one line per event to stderr, and exits 0
on SIGTERM/SIGINT. Exit codes: 4 bad flags (every number has a floor and a ceiling,
:data:`BOUNDS`), 3 the port cannot be had. It never loads
textual, kubernetes or azure; scapy only when an egress check really runs in SYN mode.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from probes.agent.core import DEFAULT_FEED, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, Agent, settings_for
from probes.agent.http import AgentServer
from probes.dns.resolvers import LOCALDNS_IPS, NODELOCAL_IP, PROBE_NAMES, parse_address, parse_override
from probes.egress.proxy import ProxySettings
from probes.exitcodes import ArgumentParser, ExitCode

log = logging.getLogger("probes.agent")

DEFAULT_PORT = 9102
RESOLV_CONF = "/etc/resolv.conf"
ENV = "AKSNET_AGENT_"


def nameservers(path: str = RESOLV_CONF) -> list[str]:
    """The nameserver addresses of resolv.conf, in order ([] when it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read(65536).splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                out.append(str(ipaddress.ip_address(parts[1].split("%")[0])))
            except ValueError:
                continue
    return out


def default_kube_dns(path: str = RESOLV_CONF) -> str | None:
    """The first nameserver of resolv.conf that can be kube-dns: a pod with dnsPolicy
    ClusterFirst lists the kube-dns ClusterIP there. Link-local (NodeLocal DNS, LocalDNS),
    loopback (systemd-resolved) and Azure DNS (168.63.129.16: a hostNetwork pod) are not."""
    for text in nameservers(path):
        ip = ipaddress.ip_address(text)
        if ip.is_link_local or ip.is_loopback or text == "168.63.129.16":
            continue
        return text
    return None


def detect_local_caches(nodelocal_ip: str, path: str = RESOLV_CONF) -> tuple[bool, bool]:
    """(NodeLocal DNS, AKS LocalDNS) as this pod's resolv.conf shows them, for an agent not
    told either: pods on a LocalDNS node get 169.254.10.11 as their nameserver; NodeLocal
    DNS shows only where the kubelet points pods at it (its ``-localip`` address; in
    iptables mode it answers on the kube-dns ClusterIP instead, and only the cluster can
    say: the manifest's ``--from-cluster`` and ``agent install`` do)."""
    servers = nameservers(path)
    return nodelocal_ip in servers, LOCALDNS_IPS[1] in servers


# Floors and ceilings of every number the agent takes (flag or environment): a 1 ms interval
# would be a DNS flood from every node, a million results ~0.5 GB per agent.
BOUNDS: dict[str, tuple[float, float, str]] = {
    "port": (0, 65535, "port"),
    "interval": (0.1, 3600, "interval"),
    "egress_interval": (0.1, 3600, "egress-interval"),
    "timeout": (0.05, 60, "timeout"),
    "results": (16, 65536, "results"),
}
MAX_LIST = {"names": 64, "resolvers": 32, "targets": 1000}


def _within(value: float, what: str) -> float:
    lo, hi, flag = BOUNDS[what]
    if not lo <= value <= hi:  # NaN fails both
        env = ENV + what.upper()
        raise ValueError(f"--{flag} (or ${env}) must be from {lo:g} to {hi:g}, got {value}")
    return value


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def run_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="aksnet-top agent run",
        description="Probe this node's DNS path and egress, and serve the results on one port: "
        "GET /v1/results?since=N (JSON for aksnet-top), /metrics (Prometheus), /healthz.",
        epilog="Every flag falls back to an environment variable: NODE_NAME (or AKSNET_AGENT_NODE), "
        "AKSNET_AGENT_BIND, _PORT, _INTERVAL, _EGRESS_INTERVAL, _TIMEOUT, _MODE, _KUBE_DNS, "
        "_NODELOCAL, _NODELOCAL_IP, _LOCALDNS, _NAMES, _RESOLVERS, _TARGETS (comma-separated), _APISERVER, "
        "_AKS_DEFAULTS, _RESULTS, _LOG_LEVEL, _ECHO_URL. Egress goes through HTTPS_PROXY/HTTP_PROXY (what AKS "
        "injects from httpProxyConfig) except for NO_PROXY; AKSNET_AGENT_USE_PROXY=false checks directly.",
    )
    a = p.add_argument
    a("--node", help="this node's name (default: $NODE_NAME, from the downward API)")
    a("--bind", help="address to listen on (default 0.0.0.0)")
    a("--port", type=int, help=f"port to listen on, 0 for any free one (default {DEFAULT_PORT})")
    a(
        "--interval",
        type=float,
        metavar="S",
        help="seconds between DNS queries of each resolver and name "
        "(default 10: about 2 millicores of CPU for 4 queries and 8 checks)",
    )
    a(
        "--egress-interval",
        type=float,
        metavar="S",
        help="seconds between checks of each egress target (default: --interval)",
    )
    a("--timeout", type=float, metavar="S", help="DNS and TCP handshake timeout (default 2)")
    a(
        "--mode",
        choices=("auto", "connect", "syn"),
        help="egress check mode (default auto: SYN when raw sockets are allowed, else connect)",
    )
    a(
        "--kube-dns",
        metavar="IP",
        help="the kube-dns ClusterIP (default: the first nameserver in "
        "/etc/resolv.conf that is not link-local, loopback or Azure DNS)",
    )
    a(
        "--nodelocal",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the cluster runs NodeLocal DNS: probe it (default: when resolv.conf lists its address; "
        "`agent install` and `agent manifest --from-cluster` say it from the cluster)",
    )
    a(
        "--nodelocal-ip",
        metavar="IP",
        help=f"NodeLocal DNS's address, its pods' -localip (default {NODELOCAL_IP})",
    )
    a(
        "--localdns",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="this node runs AKS LocalDNS (169.254.10.10/.11): probe it (default: when resolv.conf lists "
        "169.254.10.11, as on LocalDNS nodes)",
    )
    a(
        "--name",
        action="append",
        metavar="NAME",
        help="DNS name to query (repeatable; default kubernetes.default.svc.cluster.local and mcr.microsoft.com)",
    )
    a("--resolver", action="append", metavar="ADDR[:PORT]", help="an extra DNS server to query (repeatable)")
    a("--target", action="append", metavar="HOST:PORT", help="an extra egress target (repeatable)")
    a("--apiserver", metavar="HOST:PORT", help="the cluster's API server FQDN to check egress to")
    a(
        "--echo-url",
        metavar="URL",
        help="an echo endpoint (answers with the caller's IP) to GET every minute: the node's egress IP",
    )
    a("--no-aks-defaults", action="store_true", default=None, help="do not check AKS's required outbound endpoints")
    a("--results", type=int, metavar="N", help="results kept for the reader (default 2048)")
    a("--log-level", choices=("debug", "info", "warning", "error"), help="default info")
    lab = p.add_argument_group("lab and tests only")
    lab.add_argument(
        "--dns-override",
        action="append",
        metavar="ADDR=HOST:PORT",
        help="dial HOST:PORT for the resolver with this key or production address",
    )
    lab.add_argument(
        "--egress-dns", metavar="HOST:PORT", help="resolve egress names with this server instead of /etc/resolv.conf"
    )
    lab.add_argument(
        "--dial",
        action="append",
        metavar="ADDR[:PORT]=PORT",
        help="after resolving, dial PORT instead (the lab's DNAT)",
    )
    lab.add_argument(
        "--confine",
        action="store_true",
        default=None,
        help="dial loopback only; never resolve through /etc/resolv.conf",
    )
    return p


def _dial(text: str) -> tuple[str, int]:
    who, sep, port = text.partition("=")
    who, port = who.strip(), port.strip()
    if not sep or not who or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--dial {text!r}: write ADDR[:PORT]=PORT, e.g. 127.0.0.2=40123")
    return who, int(port)


def _hostport(text: str, flag: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ValueError as e:
        raise ValueError(f"{flag}: {e}") from None


def build_settings(
    ns: argparse.Namespace, env: dict[str, str] | None = None, resolv_conf: str = RESOLV_CONF
) -> tuple[Any, str, int, str]:
    """(AgentSettings, bind, port, log level) from flags, then env, then defaults.
    Raises ValueError in the user's words."""
    e = os.environ if env is None else env

    def pick(flag: Any, name: str, conv: Callable[[str], Any], default: Any) -> Any:
        if flag is not None:
            return flag
        raw = e.get(ENV + name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return conv(raw)
        except ValueError as err:
            raise ValueError(f"${ENV}{name}: {err}") from None

    def num(text: str) -> float:
        return float(text)

    def sized(values: list[str], what: str, flag: str) -> list[str]:
        if len(values) > MAX_LIST[what]:
            raise ValueError(f"{flag}: {len(values)} given, at most {MAX_LIST[what]}")
        return values

    node = ns.node or e.get("NODE_NAME") or e.get(ENV + "NODE") or ""
    if not node.strip():
        raise ValueError("no node name: pass --node, or set NODE_NAME from the downward API (fieldRef: spec.nodeName)")
    bind = pick(ns.bind, "BIND", str, "0.0.0.0")
    port = int(_within(pick(ns.port, "PORT", int, DEFAULT_PORT), "port"))
    interval = _within(pick(ns.interval, "INTERVAL", num, DEFAULT_INTERVAL), "interval")
    egress_interval = _within(pick(ns.egress_interval, "EGRESS_INTERVAL", num, interval), "egress_interval")
    timeout = _within(pick(ns.timeout, "TIMEOUT", num, DEFAULT_TIMEOUT), "timeout")
    mode = pick(ns.mode, "MODE", str, "auto")
    kube_dns = pick(ns.kube_dns, "KUBE_DNS", str, None)
    if kube_dns is None:
        kube_dns = default_kube_dns(resolv_conf)
        if kube_dns is None:
            log.warning("no kube-dns address in %s: kube-dns is not probed (pass --kube-dns)", resolv_conf)
    nodelocal_ip = pick(ns.nodelocal_ip, "NODELOCAL_IP", str, NODELOCAL_IP)
    try:
        nodelocal_ip = str(ipaddress.ip_address(nodelocal_ip.strip()))
    except ValueError:
        raise ValueError(f"--nodelocal-ip (or ${ENV}NODELOCAL_IP): {nodelocal_ip!r} is not an IP address") from None
    nodelocal = pick(ns.nodelocal, "NODELOCAL", _bool, None)
    localdns = pick(ns.localdns, "LOCALDNS", _bool, None)
    notes: list[str] = []
    if nodelocal is None or localdns is None:
        seen_nl, seen_ld = detect_local_caches(nodelocal_ip, resolv_conf)
        if nodelocal is None:
            nodelocal = seen_nl
            notes.append(
                f"NodeLocal DNS probed at {nodelocal_ip}: {resolv_conf} lists it"
                if seen_nl
                else f"NodeLocal DNS not probed: not told (--nodelocal/--no-nodelocal) and {resolv_conf} does not "
                f"list {nodelocal_ip}; pass --nodelocal if the cluster runs it in iptables mode"
            )
        if localdns is None:
            localdns = seen_ld
            if seen_ld:
                notes.append(f"AKS LocalDNS probed: {resolv_conf} lists {LOCALDNS_IPS[1]}")
    names = sized(pick(ns.name, "NAMES", _list, list(PROBE_NAMES)), "names", "--name")
    custom = sized(pick(ns.resolver, "RESOLVERS", _list, []), "resolvers", "--resolver")
    targets = sized(pick(ns.target, "TARGETS", _list, []), "targets", "--target")
    apiserver = pick(ns.apiserver, "APISERVER", str, None)
    aks_defaults = not ns.no_aks_defaults if ns.no_aks_defaults else pick(None, "AKS_DEFAULTS", _bool, True)
    results = int(_within(pick(ns.results, "RESULTS", int, DEFAULT_FEED), "results"))
    level = pick(ns.log_level, "LOG_LEVEL", str, "info")
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError(f"${ENV}LOG_LEVEL: choose debug, info, warning or error, got {level!r}")
    overrides = dict(parse_override(t) for t in ns.dns_override or ())
    egress_dns = _hostport(ns.egress_dns, "--egress-dns") if ns.egress_dns else None
    dial = dict(_dial(t) for t in ns.dial or ())
    # AKS injects the cluster's httpProxyConfig into pods as HTTPS_PROXY/HTTP_PROXY/NO_PROXY:
    # the agent's egress checks go through it as the node's workloads do (off: USE_PROXY=false)
    proxy = ProxySettings.from_env(e) if pick(None, "USE_PROXY", _bool, True) else None
    echo_url = pick(ns.echo_url, "ECHO_URL", str, "")
    settings = settings_for(
        node.strip(),
        kube_dns=kube_dns,
        nodelocal=nodelocal,
        nodelocal_ip=nodelocal_ip,
        localdns=localdns,
        custom=custom,
        dns_overrides=overrides,
        names=names,
        apiserver=apiserver,
        targets=targets,
        aks_defaults=aks_defaults,
        egress_dns=egress_dns,
        dial_map=dial,
        confine=bool(ns.confine),
        dns_interval=interval,
        dns_timeout=timeout,
        egress_interval=egress_interval,
        egress_timeout=timeout,
        egress_dns_timeout=timeout,
        mode=mode,
        feed_size=results,
        notes=tuple(notes),
        proxy=proxy,
        echo_url=echo_url,
    )
    return settings, bind, port, level


def _log_to_stderr(level: str) -> logging.Handler:
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    log.addHandler(h)
    log.setLevel(getattr(logging, level.upper()))
    log.propagate = False
    return h


def run(argv: Sequence[str] | None = None) -> int:
    """`aksnet-top agent run [flags]`: serve until SIGTERM/SIGINT. Returns the exit code."""
    parser = run_parser()
    try:
        ns = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as e:  # --help (0) or a bad flag (4): argparse printed why
        return ExitCode.USAGE if e.code else ExitCode.HEALTHY
    handler = _log_to_stderr("info")
    try:
        try:
            settings, bind, port, level = build_settings(ns)
        except ValueError as e:
            parser.print_usage(sys.stderr)
            print(f"{parser.prog}: error: {e}", file=sys.stderr)
            return ExitCode.USAGE
        log.setLevel(getattr(logging, level.upper()))
        try:
            return asyncio.run(serve(settings, bind, port))
        except KeyboardInterrupt:
            return ExitCode.HEALTHY
    finally:
        log.removeHandler(handler)
        log.propagate = True


async def serve(
    settings: Any,
    bind: str,
    port: int,
    *,
    ready: Callable[[str, int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run one agent and its server on the running loop until `stop` is set (or
    SIGTERM/SIGINT when `stop` is None). Returns the exit code."""
    loop = asyncio.get_running_loop()
    own_signals = stop is None
    stop = stop or asyncio.Event()
    if own_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    agent = Agent(settings)
    server = AgentServer(agent, bind, port)
    try:
        try:
            await server.start()
        except OSError as e:
            why = e.strerror or str(e)
            hint = " (another agent or process holds it; pick another with --port)" if e.errno in (98, 48) else ""
            log.error("cannot listen on %s:%d: %s%s", bind, port, why, hint)
            return ExitCode.COULD_NOT_RUN
        await agent.start()
        s = settings
        log.info(
            "agent %s on node %s listening on %s:%d: %d resolvers (%s) × %d names every %gs; "
            "%d egress targets every %gs, mode %s",
            agent.version,
            s.node,
            bind,
            server.port,
            len(s.resolvers),
            ", ".join(r.key for r in s.resolvers) or "none",
            len(s.names),
            s.dns_interval,
            len(s.targets),
            s.egress_interval,
            s.mode,
        )
        for note in s.notes:
            log.info("%s", note)
        if ready is not None:
            ready(bind, server.port)
        await stop.wait()
        log.info("stopping")
    finally:
        if own_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        await server.stop(1.0)
        if not await agent.stop(2.0):
            log.warning("some probes did not stop within 2 s")
    return ExitCode.HEALTHY


if __name__ == "__main__":
    raise SystemExit(run())
