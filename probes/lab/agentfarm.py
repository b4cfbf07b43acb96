"""The demo's simulated nodes: one real agent per node, all in one process, on loopback.

``python -m probes.lab.agentfarm`` reads ONE JSON line from stdin::

    {"scenario": "f4", "nodes": null, "agents": ["aks-nodepool1-…-vmss000001", …],
     "dns_service_ip": "10.0.0.10", "nodelocal": true, "localdns_nodes": [],
     "interval": 5, "timeout": 2, "egress_interval": 10, "egress_timeout": 2,
     "mode": "connect", "names": [...], "targets": ["extra.example:443"],
     "apiserver": "127.0.0.1:6443" | null,
     "coredns": [{"name": "coredns-…", "ready": true}, …] | null}
     "apiserver": "127.0.0.1:6443" | null, "echo": false}

(every key but ``scenario`` optional; ``echo``: serve an echo endpoint on loopback, answering
the lab ARM endpoint's outbound public IP, and give the agents its URL; the scenario's
HTTP proxy, when named, is what the agents get as AKS's injected ``HTTPS_PROXY``: ``agents`` defaults to the first 50 nodes by name,
``dns_service_ip``/``nodelocal`` to the scenario's, ``localdns_nodes`` to every agent when
the scenario enables LocalDNS; ``coredns``, the lab's CoreDNS pods, makes the kube-dns
responder balance over the ready ones and maps each pod to its responder, so that an
agent told a pod by the app's reader reaches it), loads the scenario, starts its DNS responders and egress
targets (:class:`~probes.lab.dnsdemo.DnsDemo`, :class:`~probes.lab.egressdemo.EgressDemo`:
the only code that reads the scenario), then one :class:`~probes.agent.core.Agent` and
:class:`~probes.agent.http.AgentServer` per node on 127.0.0.1 (ephemeral ports), all on
one event loop, each agent seeing exactly what that node's vantage sees in the in-process
demo. It prints ONE JSON line::

    {"agents": {"<node>": "127.0.0.1:PORT", …},
     "local": {"dns_overrides": {"10.0.0.10": ["127.0.0.1", P], "coredns": [...],
                                 "coredns/<pod>": [...]},
               "egress_dns": ["127.0.0.1", P] | null, "dial": {"127.0.0.2": P, …},
               "extra_targets": ["host:80", …]}}

``local`` is what the app's own ``local`` vantage needs to reach the same responders and
targets (what DnsDemo/EgressDemo give it in-process). ``coredns`` is the responder of
every CoreDNS pod without one of its own: :func:`local_dns_overrides` expands it for a
topology. Then it serves until stdin reaches EOF (the parent closed it or died) or
SIGTERM/SIGINT, and exits 0 within 2 s. Any error: one line ``{"error": "…"}``, exit 3.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from probes.kube.model import NetworkPlugin, NodeInfo, Topology, node_vantage

MAX_AGENTS = 1000
DEFAULT_AGENTS = 50
LINE_LIMIT = 1 << 20
EXIT_ERROR = 3


class FarmError(Exception):
    """What the parent reads in {"error": …}."""


@dataclass(frozen=True, slots=True)
class FarmRequest:
    scenario: str
    nodes: int | None = None
    agents: tuple[str, ...] | None = None
    dns_service_ip: str | None = None
    nodelocal: bool | None = None
    localdns_nodes: tuple[str, ...] | None = None
    interval: float = 5.0
    timeout: float = 2.0
    egress_interval: float = 10.0
    egress_timeout: float = 2.0
    mode: str = "connect"
    names: tuple[str, ...] | None = None
    targets: tuple[str, ...] = ()
    apiserver: str | None = None
    coredns: tuple[tuple[str, bool], ...] | None = None  # (pod name, ready)
    echo: bool = False  # serve an echo endpoint on loopback and give the agents its URL


def parse_request(line: bytes | str) -> FarmRequest:
    try:
        doc = json.loads(line)
    except ValueError as e:
        raise FarmError(f"the first line on stdin is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise FarmError("the first line on stdin must be a JSON object")
    known = set(FarmRequest.__dataclass_fields__)
    unknown = sorted(set(doc) - known)
    if unknown:
        raise FarmError(f"unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")

    def typed(key: str, kinds: tuple[type, ...], what: str, default: Any = None) -> Any:
        v = doc.get(key, default)
        if v is None:
            return default
        if isinstance(v, bool) and bool not in kinds or not isinstance(v, kinds):
            raise FarmError(f"{key}: expected {what}, got {v!r}"[:200])
        return v

    def strings(key: str) -> tuple[str, ...] | None:
        v = typed(key, (list,), "a list of text")
        if v is None:
            return None
        if not all(isinstance(x, str) for x in v):
            raise FarmError(f"{key}: expected a list of text")
        return tuple(v)

    def seconds(key: str, default: float) -> float:
        v = float(typed(key, (int, float), "seconds", default))
        if not 0 < v <= 3600:
            raise FarmError(f"{key}: expected seconds in (0, 3600], got {v!r}")
        return v

    def pods() -> tuple[tuple[str, bool], ...] | None:
        v = typed("coredns", (list,), "a list of {name, ready}")
        if v is None:
            return None
        out = []
        for p in v:
            if (
                not isinstance(p, dict)
                or not isinstance(p.get("name"), str)
                or not isinstance(p.get("ready", True), bool)
            ):
                raise FarmError("coredns: expected a list of {name: text, ready: true|false}")
            out.append((p["name"], bool(p.get("ready", True))))
        return tuple(out)

    scenario = typed("scenario", (str,), "a scenario name or path")
    if not scenario:
        raise FarmError("scenario: required (a built-in name like f4, or a path to a .yaml file)")
    mode = typed("mode", (str,), "auto, connect or syn", "connect")
    if mode not in ("auto", "connect", "syn"):
        raise FarmError(f"mode: expected auto, connect or syn, got {mode!r}")
    return FarmRequest(
        scenario=scenario,
        nodes=typed("nodes", (int,), "a node count"),
        agents=strings("agents"),
        dns_service_ip=typed("dns_service_ip", (str,), "an IP address"),
        nodelocal=typed("nodelocal", (bool,), "true or false"),
        localdns_nodes=strings("localdns_nodes"),
        interval=seconds("interval", 5.0),
        timeout=seconds("timeout", 2.0),
        egress_interval=seconds("egress_interval", 10.0),
        egress_timeout=seconds("egress_timeout", 2.0),
        mode=mode,
        names=strings("names"),
        targets=strings("targets") or (),
        apiserver=typed("apiserver", (str,), "host:port"),
        coredns=pods(),
        echo=bool(typed("echo", (bool,), "true or false", False)),
    )


def _topology(nodes: list[str], dns_ip: str, nodelocal: bool, localdns: set[str]) -> Topology:
    infos = tuple(
        NodeInfo(
            name=n,
            internal_ip="",
            pod_cidrs=(),
            pool="",
            ready=True,
            ready_reason="",
            cordoned=False,
            network_unavailable=None,
            network_reason="",
            kubelet_version="",
            zone="",
            provider_id="",
            vmss="",
            instance_id="",
            created=0.0,
            localdns=n in localdns,
        )
        for n in nodes
    )
    return Topology(
        cluster="",
        plugin=NetworkPlugin.UNKNOWN,
        dataplane="",
        pod_cidrs=(),
        dns_service_ip=dns_ip,
        nodes=infos,
        pools=(),
        coredns=(),
        nodelocal_enabled=nodelocal,
    )


def local_dns_overrides(local: Mapping[str, Any], topology: Topology) -> dict[str, tuple[str, int]]:
    """The farm's ``local.dns_overrides`` for a topology: every CoreDNS pod without an
    entry of its own (``coredns/<pod>``) gets the shared ``coredns`` responder, as
    DnsDemo gives the in-process ``local`` vantage."""
    out = {k: (str(v[0]), int(v[1])) for k, v in local.items() if k != "coredns" and not k.startswith("coredns/#")}
    shared = local.get("coredns")
    for i, pod in enumerate(sorted(topology.coredns, key=lambda p: p.name)):
        own = local.get(f"coredns/#{i}", shared)  # "#1": the second pod by name
        if pod.ip and own is not None:
            out.setdefault(f"coredns/{pod.name}", (str(own[0]), int(own[1])))
    return out


class Farm:
    """The responders, targets, agents and servers of one request, on the running loop."""

    def __init__(self, req: FarmRequest) -> None:
        self.req = req
        self.dns_demo: Any = None
        self.egress_demo: Any = None
        self.echo: Any = None
        self.agents: dict[str, Any] = {}
        self.servers: dict[str, Any] = {}
        self.local: dict[str, Any] = {}

    async def start(self) -> None:
        # lazy: the agents' runtime loads in the farm's process; the app imports this module for local_dns_overrides
        from probes.agent.core import Agent, settings_for
        from probes.agent.http import AgentServer
        from probes.dns.resolvers import DEFAULT_NAMES
        from probes.lab.dnsdemo import DnsDemo
        from probes.lab.egressdemo import EgressDemo
        from probes.lab.scenario import load_scenario

        r = self.req
        try:
            sc = load_scenario(r.scenario, r.nodes)
        except ValueError as e:  # ScenarioError is a ValueError
            raise FarmError(str(e)) from None
        all_nodes = sorted(n.name for n in sc.nodes())
        agents = list(dict.fromkeys(r.agents)) if r.agents is not None else all_nodes[:DEFAULT_AGENTS]
        if len(agents) > MAX_AGENTS:
            raise FarmError(f"agents: {len(agents)} asked, at most {MAX_AGENTS}")
        dns_ip = r.dns_service_ip or str(sc.cluster.dns_service_ip)
        nodelocal = sc.cluster.node_local_dns if r.nodelocal is None else r.nodelocal
        localdns = set(r.localdns_nodes if r.localdns_nodes is not None else (agents if sc.cluster.local_dns else ()))
        topo = _topology(agents, dns_ip, nodelocal, localdns)
        try:
            pods = list(r.coredns) if r.coredns is not None else None
            self.dns_demo = DnsDemo(sc, max_nodes=max(1, len(agents)), coredns=pods).start()
            self.egress_demo = EgressDemo(sc, max_nodes=max(1, len(agents))).start()
        except (ValueError, OSError) as e:
            raise FarmError(f"cannot start the lab's responders and targets: {e}") from None
        if r.echo:
            # lazy: the echo endpoint only when agents.echo_url is set
            from probes.lab.echo import LabEcho, lab_egress_ip

            ip = lab_egress_ip(sc)
            self.echo = LabEcho(lambda: ip).start()
        extra = [*r.targets, *(t for t in self.egress_demo.extra_targets() if t not in r.targets)]
        dns_v = {v.name: v for v in self.dns_demo.vantages(topo)}
        # the CoreDNS pods by key: what an agent reaches when the app's reader hands them over
        pod_over = {
            f"coredns/{name}": a for name, _ in (r.coredns or ()) if (a := self.dns_demo.pod_address(name)) is not None
        }
        egress_v = {v.name: v for v in self.egress_demo.vantages(topo)}
        for node in agents:
            dv, ev = dns_v[node_vantage(node)], egress_v[node_vantage(node)]
            try:
                s = settings_for(
                    node,
                    kube_dns=dns_ip,
                    nodelocal=nodelocal,
                    nodelocal_ip=str(sc.cluster.node_local_dns_ip),  # what the lab's pods' -localip says
                    localdns=node in localdns,
                    dns_overrides={**pod_over, **dv.overrides},
                    names=r.names or DEFAULT_NAMES,
                    apiserver=r.apiserver,
                    targets=extra,
                    egress_dns=ev.dns,
                    dial_map=ev.dial_map,
                    confine=True,
                    dns_interval=r.interval,
                    dns_timeout=r.timeout,
                    egress_interval=r.egress_interval,
                    egress_timeout=r.egress_timeout,
                    egress_dns_timeout=r.egress_timeout,
                    mode=r.mode,
                    feed_size=2048,
                    proxy=self.egress_demo.proxy_settings(),
                    echo_url=self.echo.url if self.echo is not None else "",
                )
            except ValueError as e:
                raise FarmError(f"agent {node}: {e}") from None
            agent = Agent(s)
            try:
                server = await AgentServer(agent, "127.0.0.1", 0).start()
            except OSError as e:
                raise FarmError(f"no free port for agent {node}: {e.strerror or e}") from None
            self.agents[node] = agent
            self.servers[node] = server
        for a in self.agents.values():
            await a.start()
        responders = self.dns_demo.responders
        over: dict[str, list[Any]] = {}
        if "kube-dns" in responders:
            over[dns_ip] = list(responders["kube-dns"].address)
        for key, resp in responders.items():
            if key == "coredns" or key.startswith("coredns/"):
                over[key] = list(resp.address)
        for key, addr in pod_over.items():
            over[key] = list(addr)
        eg = self.egress_demo.dns_for(None)
        self.local = {
            "dns_overrides": over,
            "egress_dns": list(eg) if eg is not None else None,
            "dial": self.egress_demo.dial_map(),
            "extra_targets": self.egress_demo.extra_targets(),
        }

    def announce(self) -> dict[str, Any]:
        return {"agents": {n: f"127.0.0.1:{s.port}" for n, s in self.servers.items()}, "local": self.local}

    async def stop(self) -> None:
        """Everything down within about 1.5 s, whatever hangs."""
        await asyncio.gather(*(s.stop(0.5) for s in self.servers.values()), return_exceptions=True)
        await asyncio.gather(*(a.stop(0.5) for a in self.agents.values()), return_exceptions=True)
        threads = [
            threading.Thread(target=d.stop, args=(0.5,), name="farm-stop", daemon=True)
            for d in (self.dns_demo, self.egress_demo)
            if d is not None
        ]
        if self.echo is not None:
            threads.append(threading.Thread(target=self.echo.stop, name="farm-stop", daemon=True))
        for t in threads:
            t.start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _join, threads, 1.0)


def _join(threads: list[threading.Thread], timeout: float) -> None:
    end = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))


def _read_line(fd: int) -> bytes:
    """The first line of `fd`, read without buffering past it where the OS allows."""
    buf = bytearray()
    while len(buf) < LINE_LIMIT:
        chunk = os.read(fd, 1)
        if not chunk:
            break
        if chunk == b"\n":
            return bytes(buf)
        buf += chunk
    if not buf:
        raise FarmError("no request on stdin (expected one JSON line)")
    if len(buf) >= LINE_LIMIT:
        raise FarmError("the request line on stdin is longer than 1 MB")
    return bytes(buf)


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set `stop` when stdin reaches EOF (the parent closed it or died)."""

    def readable() -> None:
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(0)
            stop.set()

    try:
        loop.add_reader(0, readable)  # readable: one read returns at once, even if blocking
    except (OSError, ValueError, NotImplementedError):  # a regular file or /dev/null

        def drain() -> None:
            try:
                while os.read(0, 65536):
                    pass
            except OSError:
                pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=drain, name="farm-stdin", daemon=True).start()


def _say(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _run(req: FarmRequest) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    farm = Farm(req)
    try:
        try:
            await farm.start()
        except FarmError as e:
            _say({"error": str(e)})
            return EXIT_ERROR
        _say(farm.announce())
        _watch_stdin(loop, stop)
        await stop.wait()
        return 0
    finally:
        try:
            loop.remove_reader(0)
        except (ValueError, OSError):
            pass
        await farm.stop()


def main() -> int:
    try:
        req = parse_request(_read_line(0))
    except FarmError as e:
        _say({"error": str(e)})
        return EXIT_ERROR
    try:
        return asyncio.run(_run(req))
    except KeyboardInterrupt:
        return 0
    except Exception as e:  # noqa: BLE001 - the parent reads one line, never a traceback
        _say({"error": f"agent farm failed: {type(e).__name__}: {e}"[:300]})
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
