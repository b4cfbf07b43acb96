"""The demo's egress world: per-node DNS answers pointing at loopback TCP targets.

In ``--demo`` each scenario node is an egress vantage. Every name a node checks is
resolved through a lab DNS responder (real DNS over UDP/TCP on loopback) that answers
that node's view of the name (the scenario's ``egress:`` section,
probes/lab/egressspec.py) with the address of a loopback host that really behaves that
way (probes/lab/tcptargets.py):

* 127.0.0.2 accepts (open), 127.0.0.3 answers RST (refused), 127.0.0.4 drops SYNs
  (timeout) — on every port;
* a rule that differs per port (``{443: drop}``) gets a host of its own from 127.0.0.5 up,
  with all three behaviours on it, and the DNAT says which port goes where.

The targets listen on ephemeral ports; :meth:`EgressDemo.dial_map` is the DNAT the probe
applies after resolving ('addr:port' for one port, 'addr' for any). A name whose rule is a
DNS failure gets it from that view's responder, as a node's resolver would give it:
``nxdomain`` an NXDOMAIN answer, ``servfail`` a SERVFAIL answer, ``dns-timeout`` no answer
at all. A name the lab does not know gets NXDOMAIN, so nothing is ever dialled beyond loopback; the vantages are
``confine``-d on top (probes/egress/service.py). This module is the one place that reads the
scenario's ``egress:`` section: the probes see DNS answers and packets only.

The cluster's HTTP proxy (the scenario's ``network:`` httpProxy/httpsProxy, when named by
a DNS name) is a real CONNECT proxy on 127.0.1.x (probes/lab/connectproxy.py) behaving as
``network.proxy`` says; every view's DNS answers its name, the DNAT maps its port, and
:meth:`EgressDemo.proxy_settings` is what AKS would inject into the agents' pods
(``HTTPS_PROXY``/``NO_PROXY``). Its tunnels reach the default view's targets.

Responders are shared by view: one for every node without an override (and `local`,
the laptop), one per node whose view differs. At most ``max_nodes`` node vantages are
offered (the first nodes by name), as in the DNS demo.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from probes.egress.proxy import ProxySettings, parse_proxy
from probes.egress.targets import AKS_REQUIRED
from probes.kube.model import LOCAL_VANTAGE, Topology, node_vantage
from probes.lab.connectproxy import LabConnectProxy
from probes.lab.dnsdemo import resolve_node
from probes.lab.dnsserver import DnsResponder, Zone
from probes.lab.dnsspec import ANSWER, Behaviour, DnsFaultMode
from probes.lab.egressspec import DNS_TIMEOUT, SERVFAIL, EgressLabSpec, PortRule
from probes.lab.networkspec import NetworkLabSpec
from probes.lab.tcptargets import DROP_HOST, OPEN_HOST, REFUSED_HOST, LoopbackTargets

MAX_NODES = 50
FIRST_MIXED = 5  # 127.0.0.5: the first host whose behaviour depends on the port
MAX_MIXED = 200
_UNIFORM = {"open": OPEN_HOST, "refused": REFUSED_HOST, "drop": DROP_HOST}
# the DNS failures a view's responder gives per name (nxdomain: the name is left out of its zone)
_DNS_MODES = {SERVFAIL: DnsFaultMode.SERVFAIL, DNS_TIMEOUT: DnsFaultMode.DROP}
PROXY_NET = "127.0.1."  # the lab's proxies: 127.0.1.1, .2 (httpProxy and httpsProxy when they differ)
# what AKS adds to the injected NO_PROXY whatever httpProxyConfig.noProxy says
AKS_NO_PROXY = ("localhost", "127.0.0.1", "168.63.129.16", "169.254.169.254", "konnectivity", ".svc", ".cluster.local")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def view_behaviour(view: dict[str, PortRule]) -> Behaviour:
    """A view's responder: SERVFAIL or silence for the names whose rule says so, an answer
    from its zone for the rest (the names were validated: letters, digits, '-' and '.', so
    each pattern matches only itself)."""
    rules = tuple(
        (name, Behaviour(mode=_DNS_MODES[r.default])) for name, r in sorted(view.items()) if r.default in _DNS_MODES
    )
    return Behaviour(by_name=rules) if rules else ANSWER


def spec_of(scenario: Any) -> EgressLabSpec:
    """The scenario's parsed ``egress:`` section, or the all-open default."""
    spec = getattr(scenario, "extra", {}).get("egress")
    return spec if isinstance(spec, EgressLabSpec) else EgressLabSpec()


class EgressDemo:
    """Start the targets and responders, answer EgressVantageMap queries, stop everything."""

    version = 0

    def __init__(
        self,
        scenario: Any = None,
        *,
        spec: EgressLabSpec | None = None,
        max_nodes: int = MAX_NODES,
        dns_host: str = "127.0.0.1",
    ) -> None:
        base = spec if spec is not None else spec_of(scenario)
        nodes = {resolve_node(scenario, k, "egress"): v for k, v in base.nodes.items()}
        self.spec = EgressLabSpec(dict(base.names), nodes)
        self.max_nodes = max_nodes
        self._dns_host = dns_host
        self.names = self.spec.known(t.host for t in AKS_REQUIRED)
        self.views: dict[str | None, dict[str, PortRule]] = {None: self.spec.view(None, self.names)}
        for node in nodes:
            v = self.spec.view(node, self.names)
            if v != self.views[None]:
                self.views[node] = v
        self._targets: list[LoopbackTargets] = []
        self.responders: dict[str | None, DnsResponder] = {}
        self.hosts: dict[PortRule, str] = {}  # rule -> loopback address that behaves so
        self._dial: dict[str, int] = {}
        self._started = False
        net = getattr(scenario, "extra", {}).get("network") if scenario is not None else None
        self.network = net if isinstance(net, NetworkLabSpec) else None
        self.proxies: dict[tuple[str, int], str] = {}  # (proxy name, port) -> its loopback address
        self._proxy_servers: list[LabConnectProxy] = []
        if self.network is not None:
            for url in (self.network.http_proxy, self.network.https_proxy):
                if not url:
                    continue
                _, host, port = parse_proxy(url)
                if _is_ip(host) or (host.lower(), port) in self.proxies:
                    continue  # an address: served in ARM only (the lab dials loopback)
                self.proxies[(host.lower(), port)] = f"{PROXY_NET}{len(self.proxies) + 1}"

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> EgressDemo:
        try:
            base = LoopbackTargets().start(verify=False)  # verified by the tests; the demo must open fast
            self._targets.append(base)
            self._dial.update(base.dial_map())
            mixed = self._assign()
            for rule in mixed:
                host = self.hosts[rule]
                t = LoopbackTargets(host, host, host).start(verify=False)
                self._targets.append(t)
                port = {"open": t.open.port, "refused": t.refused.port, "drop": t.dropped.port}
                self.hosts[rule] = host
                self._dial[host] = port[rule.default]
                for p, b in rule.ports:
                    self._dial[f"{host}:{p}"] = port[b]
            proxy_names = self._start_proxies()
            for node, view in self.views.items():
                zone = Zone(
                    cluster={},
                    external={**{n: self.hosts[r] for n, r in view.items() if not r.dns}, **proxy_names},
                    synthesize_external=False,
                )
                self.responders[node] = DnsResponder(
                    view_behaviour(view), zone=zone, host=self._dns_host, name=f"egress-dns:{node or 'default'}"
                ).start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def _start_proxies(self) -> dict[str, str]:
        """The scenario's proxies on loopback; name -> the address every view answers."""
        names: dict[str, str] = {}
        behaviour = self.network.proxy if self.network is not None else "tunnel"
        for (name, port), addr in self.proxies.items():
            if behaviour == "down":  # nothing listens: the name answers the refusing host
                names[name] = REFUSED_HOST
                continue
            p = LabConnectProxy(behaviour, addr, 0, upstream=self.upstream).start()
            self._proxy_servers.append(p)
            self._dial[f"{addr}:{port}"] = p.port
            names[name] = addr
        return names

    def upstream(self, host: str, port: int) -> tuple[str, int] | None:
        """Where the lab's tunnelling proxy connects for CONNECT host:port: the default
        view's target for the name (as the proxy, outside the nodes, resolves it)."""
        if _is_ip(host):
            return (host, port) if ipaddress.ip_address(host).is_loopback else None
        rule = self.views[None].get(host.lower().rstrip("."))
        if rule is None or rule.dns or rule not in self.hosts:
            return None
        addr = self.hosts[rule]
        return addr, self._dial.get(f"{addr}:{port}", self._dial.get(addr, port))

    def proxy_settings(self) -> ProxySettings | None:
        """What AKS injects into the pods from httpProxyConfig (HTTPS_PROXY, HTTP_PROXY,
        NO_PROXY with AKS's own entries); None without a proxy the lab serves."""
        n = self.network
        if n is None or not self.proxies:
            return None
        return ProxySettings(n.http_proxy, n.https_proxy, (*n.no_proxy, *AKS_NO_PROXY))

    def _assign(self) -> list[PortRule]:
        """Which loopback address behaves like each rule (self.hosts); the per-port rules, in
        the order their hosts were given. No sockets: the lab's ARM endpoint asks it too."""
        mixed = sorted({r for v in self.views.values() for r in v.values() if not r.dns and not r.uniform}, key=repr)
        if len(mixed) > MAX_MIXED:
            raise ValueError(f"egress: {len(mixed)} different per-port rules; the lab has room for {MAX_MIXED}")
        for rule in {r for v in self.views.values() for r in v.values() if r.uniform and not r.dns}:
            self.hosts[rule] = _UNIFORM[rule.default]
        for i, rule in enumerate(mixed):
            self.hosts[rule] = f"127.0.0.{FIRST_MIXED + i}"
        return mixed

    def addresses(self) -> dict[str, str]:
        """name -> the address the default view's DNS answers (what an NSG rule written for the
        name would hold); names that do not resolve are left out."""
        if not self.hosts:
            self._assign()
        return {n.lower(): self.hosts[r] for n, r in self.views[None].items() if not r.dns}

    def stop(self, timeout: float = 2.0) -> None:
        self._started = False
        for r in list(self.responders.values()):
            try:
                r.stop(timeout)
            except Exception:  # noqa: BLE001
                pass
        self.responders.clear()
        for t in self._targets:
            t.stop()
        self._targets.clear()
        for p in self._proxy_servers:
            p.stop()
        self._proxy_servers.clear()
        self._dial.clear()

    def __enter__(self) -> EgressDemo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the probes get -----------------------------------------------------------
    def dial_map(self) -> dict[str, int]:
        return dict(self._dial)

    def extra_targets(self) -> list[str]:
        """What an operator chasing this scenario would add to ``[egress] targets``: every
        port a per-port rule names, and port 80, of that rule's name (so "443 dropped,
        80 open" is on screen side by side). The demo's builder adds them to the config's."""
        out: list[str] = []
        for view in self.views.values():
            for name, rule in view.items():
                if rule.uniform:
                    continue
                for p in sorted({80, *(p for p, _ in rule.ports)}):
                    if p != 443 and f"{name}:{p}" not in out:
                        out.append(f"{name}:{p}")
        return out

    def dns_for(self, node: str | None) -> tuple[str, int] | None:
        r = self.responders.get(node) or self.responders.get(None)
        return r.address if r is not None else None

    def vantages(self, topology: Topology) -> list[Any]:
        """EgressVantageMap: `local` (the laptop sees what every node sees by default)
        and the first `max_nodes` nodes, all confined to loopback."""
        # lazy: probes.egress.service pulls in the egress probe engine, which only
        # a running demo needs
        from probes.egress.service import EgressVantage

        if not self._started:
            return [EgressVantage(LOCAL_VANTAGE, confine=True)]  # no names resolved yet
        dial = self.dial_map()
        out = [EgressVantage(LOCAL_VANTAGE, None, self.dns_for(None), dial, confine=True)]
        # node vantages stand for agents, which run on Linux nodes only (the DaemonSet's nodeSelector)
        for node in sorted((n for n in topology.nodes if n.os != "windows"), key=lambda n: n.name)[: self.max_nodes]:
            out.append(EgressVantage(node_vantage(node.name), node.name, self.dns_for(node.name), dial, confine=True))
        return out
