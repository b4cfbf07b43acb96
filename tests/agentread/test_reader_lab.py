"""The app reads per-node agents through the lab API server's pod proxy, within its budget.

Real agents (probes.agent) serve on loopback; the lab registers them as agent pods and
proxies to them like kube-apiserver; the reader uses the real kubernetes client. Stand-in
servers play agents that hang or answer garbage (remote ends, never our own code).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from probes.agent.core import Agent, AgentSettings
from probes.agent.hint import CorednsPod
from probes.agent.http import AgentServer
from probes.agent.reader import AgentReader, ReaderSettings
from probes.agent.wire import encode
from probes.config import KubeConfig
from probes.dns.probe import ProbeKey
from probes.dns.resolvers import Resolver, ResolverKind
from probes.dns.service import DnsService, DnsSettings, wait_for
from probes.engine.history import History
from probes.engine.scheduler import BackgroundLoop
from probes.engine.store import Store
from probes.kube.model import node_vantage
from probes.lab.apiserver import LabApiServer
from probes.lab.cluster import LabAgentPod
from probes.lab.dnsserver import DnsResponder
from probes.lab.dnsspec import Behaviour, DnsFaultMode
from tests.support.leaks import guard_threads

NAME = "kubernetes.default.svc.cluster.local"


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    yield from guard_threads()


@pytest.fixture
def lab(tmp_path) -> Iterator[tuple[LabApiServer, KubeConfig]]:
    srv = LabApiServer("healthy").start()
    srv.proxy_timeout = 1.0
    path = srv.write_kubeconfig(os.path.join(tmp_path, "kubeconfig"))
    try:
        yield srv, KubeConfig(kubeconfig=path)
    finally:
        srv.stop()


class Agents:
    """Real agents on one loop, each on its own loopback port."""

    def __init__(self) -> None:
        self.bg = BackgroundLoop(name="test-agents")
        self.agents: dict[str, tuple[Agent, AgentServer]] = {}

    def add(
        self,
        node: str,
        resolver: tuple[str, int],
        interval: float = 0.2,
        pods: dict[str, tuple[str, int]] | None = None,
    ) -> tuple[str, int]:
        """`pods`: CoreDNS pod key -> loopback responder (the lab's overrides; confined)."""
        s = AgentSettings(
            node=node,
            resolvers=(Resolver("kube-dns", ResolverKind.KUBE_DNS, "10.0.0.10", target=resolver),),
            names=(NAME,),
            dns_interval=interval,
            dns_timeout=0.3,
            targets=(),
            dns_overrides=dict(pods or {}),
            confine=pods is not None,
        )

        async def go() -> tuple[Agent, AgentServer]:
            a = Agent(s)
            await a.start()
            return a, await AgentServer(a, "127.0.0.1", 0).start()

        a, srv = self.bg.call(go()).result(5)
        self.agents[node] = (a, srv)
        return srv.address

    def close(self) -> None:
        async def halt() -> None:
            for a, srv in self.agents.values():
                await srv.stop()
                await a.stop()

        self.bg.call(halt()).result(5)
        self.bg.close(3)


@pytest.fixture
def agents() -> Iterator[Agents]:
    a = Agents()
    try:
        yield a
    finally:
        a.close()


def nodes_of(srv: LabApiServer) -> list[str]:
    with srv.state.lock:
        return sorted(srv.state.nodes)


def reader_for(kube: KubeConfig, dns: History | None = None, **kw: object) -> AgentReader:
    s = ReaderSettings(**{"budget": 20.0, "timeout": 2.0, "discover_every": 0.5, **kw})  # type: ignore[arg-type]
    return AgentReader(kube, s, dns_history=dns, egress_history=History())


def test_results_arrive_under_the_node_of_the_pod(lab, agents) -> None:
    srv, kube = lab
    n1, n2 = nodes_of(srv)[:2]
    with (
        DnsResponder(host="127.0.0.1", name="ok") as ok,
        DnsResponder(Behaviour(DnsFaultMode.DROP), host="127.0.0.1", name="drop") as bad,
    ):
        srv.set_agent_pods(
            {
                n1: LabAgentPod(endpoint=agents.add(n1, ok.address)),
                n2: LabAgentPod(endpoint=agents.add(n2, bad.address)),
            }
        )
        hist = History()
        reader = reader_for(kube, hist)
        reader.start()
        try:
            k1 = ProbeKey(node_vantage(n1), "kube-dns", NAME, "A")
            k2 = ProbeKey(node_vantage(n2), "kube-dns", NAME, "A")
            assert wait_for(
                lambda: (
                    (s1 := hist.stats(k1)) is not None
                    and s1.attempts >= 3
                    and (s2 := hist.stats(k2)) is not None
                    and s2.attempts >= 2
                ),
                15,
            )
            assert hist.stats(k1).loss_pct == 0
            assert hist.stats(k2).loss_pct == 100  # the dropping responder: that node only
            st = reader.statuses()
            assert st[n1].error == "" and st[n1].age() is not None and st[n1].results >= 3
            assert [r.key for r in st[n1].resolvers] == ["kube-dns"]
            # a second read asks only for what is new: no result is replayed twice
            seen = hist.stats(k1).attempts
            assert wait_for(lambda: hist.stats(k1).attempts > seen, 10)
            a1 = agents.agents[n1][0]
            assert hist.stats(k1).attempts <= a1.held
            # every agent has been read, though the next round is always in flight
            assert reader.read_once()
        finally:
            reader.stop()


def test_dns_plan_shows_agent_vantages_and_does_not_probe_them(lab, agents) -> None:
    srv, kube = lab
    n1 = nodes_of(srv)[0]
    with DnsResponder(host="127.0.0.1") as ok:
        srv.set_agent_pods({n1: LabAgentPod(endpoint=agents.add(n1, ok.address))})
        hist = History()
        reader = reader_for(kube, hist)
        svc = DnsService(Store(), DnsSettings(interval=0.2), history=hist, agents=reader, poll=0.05)
        reader.start()
        svc.start()
        try:
            assert wait_for(lambda: any(v.vantage.agent for v in svc.plan().vantages), 10)
            vp = next(v for v in svc.plan().vantages if v.vantage.agent)
            assert vp.vantage.name == node_vantage(n1) and vp.vantage.node == n1
            key = ProbeKey(node_vantage(n1), "kube-dns", NAME, "A")
            assert wait_for(lambda: (s := hist.stats(key)) is not None and s.attempts >= 2, 10)
            # the service schedules nothing for an agent's vantage (its own jobs: `local` only)
            assert all(k[0] != node_vantage(n1) for k in svc._scheduler.keys())  # type: ignore[union-attr]
            # the agent's pod goes away: the vantage leaves the plan, its rows with it
            srv.set_agent_pods({})
            assert wait_for(lambda: not any(v.vantage.agent for v in svc.plan().vantages), 10)
            assert wait_for(lambda: hist.stats(key) is None, 5)
        finally:
            svc.stop()
            reader.stop()


@contextlib.contextmanager
def two_coredns_pods(srv: Any, agents: Any, interval: float) -> Iterator[tuple[tuple[CorednsPod, ...], str, str]]:
    """The first two nodes' agents (probing every `interval` s), told to reach two CoreDNS
    pods: the first answers, the second drops every query. Yields (pods, node 1, node 2)."""
    n1, n2 = nodes_of(srv)[:2]
    pods = (CorednsPod("coredns-aaa-11111", "10.244.0.7", n1), CorednsPod("coredns-aaa-22222", "10.244.1.9", n2))
    with (
        DnsResponder(host="127.0.0.1", name="ok") as ok,
        DnsResponder(Behaviour(DnsFaultMode.DROP), host="127.0.0.1", name="drop") as bad,
    ):
        over = {f"coredns/{pods[0].name}": ok.address, f"coredns/{pods[1].name}": bad.address}
        srv.set_agent_pods(
            {n: LabAgentPod(endpoint=agents.add(n, ok.address, interval=interval, pods=over)) for n in (n1, n2)}
        )
        yield pods, n1, n2


def test_the_reader_hands_each_agent_the_coredns_pods_early(lab, agents) -> None:
    """The agents learn the CoreDNS pods with the reader's first read — even while check
    holds the other reads back — probe each, and the rows come back per node and pod."""
    srv, kube = lab
    with two_coredns_pods(srv, agents, interval=0.2) as (pods, n1, n2):
        known: list[tuple[CorednsPod, ...] | None] = [None]  # not listed yet: no early read
        hist = History()
        reader = AgentReader(
            kube,
            ReaderSettings(budget=20.0, timeout=2.0, discover_every=30.0),  # one listing: requests are reads
            dns_history=hist,
            egress_history=History(),
            coredns=lambda: known[0],
        )
        reader.start(reads_from=time.monotonic() + 60.0)  # check's hold: only the hand-over reads
        try:
            assert wait_for(lambda: reader.discovered, 5)
            time.sleep(0.3)
            assert reader.requests == 1  # the listing only: nothing to hand over yet
            known[0] = pods
            assert wait_for(lambda: all(a.pods for a, _ in agents.agents.values()), 10)
            assert wait_for(lambda: reader.requests == 3, 5)  # one read per agent, then held
            st = reader.statuses()
            assert [(r.key, r.detail) for r in st[n1].resolvers] == [
                ("kube-dns", ""),
                (f"coredns/{pods[0].name}", n1),
                (f"coredns/{pods[1].name}", n2),
            ]
            time.sleep(0.5)
            assert reader.requests == 3
        finally:
            reader.stop()
        # read again without the hold: each node's rows per pod, the dropping one lost from both
        reader = AgentReader(
            kube,
            ReaderSettings(budget=20.0, timeout=2.0, discover_every=0.5),
            dns_history=hist,
            egress_history=History(),
            coredns=lambda: pods,
        )
        reader.start()
        try:
            keys = [ProbeKey(node_vantage(n), f"coredns/{p.name}", NAME, "A") for n in (n1, n2) for p in pods]
            assert wait_for(lambda: all((s := hist.stats(k)) is not None and s.attempts >= 2 for k in keys), 15)
            assert [hist.stats(k).loss_pct for k in keys] == [0.0, 100.0, 0.0, 100.0]
        finally:
            reader.stop()


def test_checks_one_read_per_agent_carries_every_rows_cycles(lab, agents) -> None:
    """`check` (rounds=2) does not wait for the agents' cadence: the read that hands over
    the pods asks for 2 rounds and is answered with them, so one read per agent leaves
    every row, each pod's included, with its 2 results (the agents' cadence is 30 s)."""
    srv, kube = lab
    srv.proxy_timeout = 5.0  # the agent holds the read for its rounds (a real API server waits as long)
    with two_coredns_pods(srv, agents, interval=30.0) as (pods, n1, n2):
        hist = History()
        reader = AgentReader(
            kube,
            ReaderSettings(budget=20.0, timeout=2.0, discover_every=30.0, rounds=2),
            dns_history=hist,
            egress_history=History(),
            coredns=lambda: pods,
        )
        reader.start(reads_from=time.monotonic() + 60.0)  # check's hold: the hand-over reads only
        try:
            assert wait_for(reader.read_once, 10)
            assert reader.requests == 3  # the listing and one read per agent
            keys = [
                ProbeKey(node_vantage(n), r, NAME, "A")
                for n in (n1, n2)
                for r in ("kube-dns", *(f"coredns/{p.name}" for p in pods))
            ]
            assert all((st := hist.stats(k)) is not None and st.attempts >= 2 for k in keys), {
                k: getattr(hist.stats(k), "attempts", 0) for k in keys
            }
            assert [hist.stats(k).loss_pct for k in keys] == [0.0, 0.0, 100.0] * 2  # the dropping pod, from both
            assert all(not st.error for st in reader.statuses().values())
        finally:
            reader.stop()


class _Garbage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"<html>not an agent</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


def test_agents_that_hang_or_answer_garbage_mark_their_node_only(lab, agents) -> None:
    srv, kube = lab
    good, hang, junk, gone = nodes_of(srv)[:4]
    hanger = socket.socket()
    hanger.bind(("127.0.0.1", 0))
    hanger.listen(16)  # accepts (backlog), never answers
    garbage = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    gt = threading.Thread(target=garbage.serve_forever, kwargs={"poll_interval": 0.1})
    gt.start()
    try:
        with DnsResponder(host="127.0.0.1") as ok:
            srv.set_agent_pods(
                {
                    good: LabAgentPod(endpoint=agents.add(good, ok.address)),
                    hang: LabAgentPod(endpoint=hanger.getsockname()),
                    junk: LabAgentPod(endpoint=garbage.server_address[:2]),
                    gone: LabAgentPod(phase="Pending"),
                }
            )
            hist = History()
            reader = reader_for(kube, hist)
            reader.start()
            try:
                assert wait_for(
                    lambda: (
                        reader.read_once()
                        and all(
                            reader.statuses().get(n) and (reader.statuses()[n].error or reader.statuses()[n].read_at)
                            for n in (good, hang, junk)
                        )
                    ),
                    15,
                )
                st = reader.statuses()
                assert st[good].error == "" and st[good].read_at is not None
                assert "503" in st[hang].error and st[hang].read_at is None
                assert "not JSON" in st[junk].error or "JSON" in st[junk].error
                assert not st[gone].ready and st[gone].read_at is None
                assert {k.vantage for k in hist.keys()} == {node_vantage(good)}
                # the good agent keeps being read while the others fail
                before = st[good].results
                assert wait_for(lambda: reader.statuses()[good].results > before, 10)
                # an agent pod that vanishes leaves the statuses at the next listing
                v = reader.version
                srv.set_agent_pods({good: LabAgentPod(endpoint=agents.agents[good][1].address)})
                assert wait_for(lambda: junk not in reader.statuses() and reader.version > v, 5)
            finally:
                reader.stop()
    finally:
        garbage.shutdown()
        garbage.server_close()
        gt.join(2)
        hanger.close()


class _Canned(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a: object) -> None:
        pass


def test_the_budget_holds_with_a_thousand_agents(tmp_path) -> None:
    """1,000 agent pods, budget 5/s: in no second does the lab see more than 5 requests
    from the reader (listing included), and no agent is read twice before all are read."""
    if True:
        srv = LabApiServer("healthy", nodes=1000).start()
        try:
            kube = KubeConfig(kubeconfig=srv.write_kubeconfig(os.path.join(tmp_path, "kc")))
            _Canned.body = encode(Agent(AgentSettings(node="x")), 0)  # a valid, empty answer
            canned = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
            ct = threading.Thread(target=canned.serve_forever, kwargs={"poll_interval": 0.1})
            ct.start()
            try:
                nodes = nodes_of(srv)
                assert len(nodes) == 1000
                srv.set_agent_pods({n: LabAgentPod(endpoint=canned.server_address[:2]) for n in nodes})
                t0 = time.monotonic()
                reader = AgentReader(
                    kube, ReaderSettings(budget=5.0, timeout=2.0), dns_history=History(), egress_history=History()
                )
                reader.start()
                try:
                    assert wait_for(lambda: sum(1 for s in reader.statuses().values() if s.read_at) >= 14, 10)
                finally:
                    reader.stop()
                log = [r for r in srv.request_log(since=t0) if r.resource == "pods"]
            finally:
                canned.shutdown()
                canned.server_close()
                ct.join(2)
        finally:
            srv.stop()
    times = sorted(r.arrived for r in log)  # when each request reached the API server
    assert len(times) >= 15
    worst = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert worst <= 5, f"{worst} requests in one second"
    proxied = [r.path for r in log if r.verb == "proxy"]
    pods = [p.split("/pods/")[1].split(":")[0] for p in proxied]
    assert len(pods) == len(set(pods))  # rolling: nobody twice before everyone once
    assert sum(1 for r in log if r.verb == "list") == 1  # one listing (every 30 s)


def test_agents_installed_after_the_reader_started_are_found_within_seconds(lab, agents) -> None:
    """No agent pod at the first listing (the demo opens the app while its agents start; an
    operator installs the agent while the app runs): the reader looks again after 2, 4, 8 s,
    not only at its 30 s rhythm, and it lists at that rhythm once it has found them."""
    srv, kube = lab
    n1 = nodes_of(srv)[0]
    with DnsResponder(host="127.0.0.1", name="ok") as ok:
        hist = History()
        reader = reader_for(kube, hist, discover_every=30.0)
        reader.start()
        try:
            assert wait_for(lambda: reader.discovered, 5)
            assert reader.statuses() == {}
            t0 = time.monotonic()
            srv.set_agent_pods({n1: LabAgentPod(endpoint=agents.add(n1, ok.address))})
            assert wait_for(lambda: n1 in reader.statuses(), 12)
            assert time.monotonic() - t0 < 12  # well before the 30 s rhythm
            lists = sum(1 for r in srv.requests.records() if r.verb == "list" and r.resource == "pods")
            assert lists >= 2
            time.sleep(3)  # found: the next listing is 30 s away
            assert sum(1 for r in srv.requests.records() if r.verb == "list" and r.resource == "pods") == lists
        finally:
            reader.stop()
