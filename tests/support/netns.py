"""A small AKS-shaped egress path in network namespaces, for tests that need real packets
(root; `ip` from iproute2, `nft` from nftables, `conntrack` from conntrack).

::

    node1  192.0.2.2  ──┐                                    ┌─ internet ─────────────
                        ├─ lb (router + outbound SNAT) ──────┤  203.0.113.10 :80 :443  (D)
    node2  192.0.2.18 ──┘  192.0.2.1 / .17    198.51.100.1   │  203.0.113.20 :443      (E)
                           frontend 198.51.100.100           └─ 198.51.100.2 ──────────

Like an Azure Load Balancer's outbound rule, every node's connections leave from the
same frontend IP, each node with its **own block of SNAT ports** (``snat_ports`` per
node, e.g. node1 1024-1027, node2 1028-1031). A SNAT port is used per connection to one
destination IP and port, so holding ``snat_ports`` connections from node1 to D:443
exhausts node1's block: conntrack finds no free tuple for the next SYN from node1 and
drops it (timeout), while node2 still connects (F10).

Faults, all undone by :meth:`NetnsLab.clear`:

* :meth:`route` — ``blackhole`` / ``unreachable`` / ``prohibit`` routes, in the router
  (blackhole: silent drop → timeout; unreachable/prohibit: ICMP back → unreachable) or in
  a node (the node's own connect fails → unreachable) (F9);
* :meth:`nsg_drop` — drop SYNs to D:443 only, D:80 stays open (F8);
* :meth:`reject` — answer with a TCP reset or an ICMP error instead.

Everything lives in namespaces named ``akt<pid>x<hex>-<role>``: :meth:`stop` deletes
them (veths, routes and nft tables go with them) and :func:`cleanup_stale` removes those
left by a process that died. Sockets that must live in a namespace (listeners, SNAT
fillers) are made on a short-lived thread that entered it with setns(2); a socket keeps
its namespace whatever thread uses it later. Probes run in a node as a separate process
(``ip netns exec <ns> python -m probes.egress.probe``), the way the agent would run there.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

CLONE_NEWNET = 0x40000000
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

D = "203.0.113.10"  # destination with :80 and :443
E = "203.0.113.20"  # another destination with :443
FRONTEND = "198.51.100.100"  # the load balancer's outbound frontend IP
NODES = {"node1": ("192.0.2.2", "192.0.2.1", "192.0.2.0/28"), "node2": ("192.0.2.18", "192.0.2.17", "192.0.2.16/28")}
SNAT_BASE = 1024
HOST_LINK = ("198.18.0.1", "198.18.0.2")  # (this namespace, the router) with link_host()

_libc = ctypes.CDLL(None, use_errno=True)


def available() -> tuple[bool, str]:
    """(usable, why not): root, `ip netns`, `nft` and setns."""
    if os.geteuid() != 0:
        return False, "needs root (network namespaces)"
    for tool in ("ip", "nft", "conntrack"):
        if shutil.which(tool) is None:
            return False, f"`{tool}` not installed (apt-get install iproute2 nftables conntrack)"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        return False, f"`ip netns` unavailable: {r.stderr.strip()}"
    return True, ""


def _run(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def netns_call(ns: str, fn: Callable[[], T], timeout: float = 15.0) -> T:
    """Run `fn` on a fresh thread inside network namespace `ns` and return its result.
    Sockets it creates belong to `ns` for good."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns({ns}): {os.strerror(e)}")
            finally:
                os.close(fd)
            box["v"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            box["e"] = e

    t = threading.Thread(target=body, name=f"netns:{ns}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"netns_call({ns}) did not finish within {timeout:g}s")
    if "e" in box:
        raise box["e"]
    return box["v"]


def cleanup_stale() -> list[str]:
    """Delete namespaces of ours whose creating process is gone (a crashed test run)."""
    removed = []
    r = _run("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(r"akt(\d+)x[0-9a-f]+-\w+", name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            _run("ip", "netns", "del", name, check=False)
            removed.append(name)
    return removed


class _Holder:
    """Listeners in the internet namespace that accept and *keep* connections open (a
    connection held open keeps its SNAT port), on one thread that stops within a bound."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self._listeners = socks
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netns-listeners", daemon=True)
        self.accepted = 0

    def start(self) -> _Holder:
        self._thread.start()
        return self

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        for s in self._listeners:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, "listen")
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    sock = key.fileobj
                    if key.data == "listen":
                        try:
                            c, _ = sock.accept()  # type: ignore[union-attr]
                        except OSError:
                            continue
                        self.accepted += 1
                        c.setblocking(False)
                        self._conns.append(c)
                        sel.register(c, selectors.EVENT_READ, "conn")
                        continue
                    try:  # readable: data (discarded), EOF or a reset (closed here)
                        alive = bool(sock.recv(4096))  # type: ignore[union-attr]
                    except BlockingIOError:
                        alive = True
                    except OSError:
                        alive = False
                    if not alive:
                        sel.unregister(sock)
                        self._conns.remove(sock)  # type: ignore[arg-type]
                        sock.close()  # type: ignore[union-attr]
        finally:
            sel.close()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for c in self._conns + self._listeners:
            c.close()
        self._conns.clear()


@dataclass
class NetnsLab:
    """Build with start() (or `with NetnsLab() as lab:`), always stop() (deletes all)."""

    snat_ports: int = 4  # SNAT ports per node (its port block on the frontend IP)
    tag: str = field(default_factory=lambda: f"akt{os.getpid()}x{secrets.token_hex(2)}")

    def __post_init__(self) -> None:
        self._created: list[str] = []
        self._holder: _Holder | None = None
        self._held: list[socket.socket] = []
        self._routes: list[tuple[str, str, str]] = []

    # --- names --------------------------------------------------------------------------
    def ns(self, role: str) -> str:
        """Namespace name of a role: node1, node2, lb, inet."""
        return f"{self.tag}-{role}"

    def node_ip(self, node: str) -> str:
        return NODES[node][0]

    def snat_block(self, node: str) -> tuple[int, int]:
        i = list(NODES).index(node)
        lo = SNAT_BASE + i * self.snat_ports
        return lo, lo + self.snat_ports - 1

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> NetnsLab:
        ok, why = available()
        if not ok:
            raise RuntimeError(f"network namespaces unavailable: {why}")
        if not 1 <= self.snat_ports <= 1000:
            raise ValueError("snat_ports must be 1-1000")
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self) -> None:
        for role in ("node1", "node2", "lb", "inet"):
            _run("ip", "netns", "add", self.ns(role))
            self._created.append(self.ns(role))
            _run("ip", "-n", self.ns(role), "link", "set", "lo", "up")
        lb, inet = self.ns("lb"), self.ns("inet")
        for node, (ip, gw, cidr) in NODES.items():
            n = self.ns(node)
            plen = cidr.split("/")[1]
            _run("ip", "link", "add", "eth0", "netns", n, "type", "veth", "peer", "name", node, "netns", lb)
            _run("ip", "-n", n, "addr", "add", f"{ip}/{plen}", "dev", "eth0")
            _run("ip", "-n", n, "link", "set", "eth0", "up")
            _run("ip", "-n", n, "route", "add", "default", "via", gw)
            _run("ip", "-n", lb, "addr", "add", f"{gw}/{plen}", "dev", node)
            _run("ip", "-n", lb, "link", "set", node, "up")
        _run("ip", "link", "add", "wan0", "netns", lb, "type", "veth", "peer", "name", "eth0", "netns", inet)
        _run("ip", "-n", lb, "addr", "add", "198.51.100.1/24", "dev", "wan0")
        # the frontend IP answers ARP on the internet side; replies to it are de-NATed
        _run("ip", "-n", lb, "addr", "add", f"{FRONTEND}/32", "dev", "wan0")
        _run("ip", "-n", lb, "link", "set", "wan0", "up")
        _run("ip", "-n", inet, "addr", "add", "198.51.100.2/24", "dev", "eth0")
        _run("ip", "-n", inet, "link", "set", "eth0", "up")
        for dst in (D, E):
            _run("ip", "-n", inet, "addr", "add", f"{dst}/32", "dev", "lo")
        _run("ip", "-n", inet, "route", "add", "default", "via", "198.51.100.1")
        _run("ip", "-n", lb, "route", "add", "203.0.113.0/24", "via", "198.51.100.2")
        # forward; no per-destination ICMP rate limit (the route error limiter, global,
        # still allows a burst of about 5 then 1/s per node)
        _run("ip", "netns", "exec", lb, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0")
        snat = "\n".join(
            f'    ip saddr {NODES[n][0]} oifname "wan0" ip protocol tcp snat to {FRONTEND}:{lo}-{hi}'
            for n in NODES
            for lo, hi in [self.snat_block(n)]
        )
        _run(
            "ip",
            "netns",
            "exec",
            lb,
            "nft",
            "-f",
            "-",
            input=f"""
table ip aksnet {{
  chain forward {{ type filter hook forward priority 0; policy accept; }}
  chain pre {{ type nat hook prerouting priority -100; policy accept; }}
  chain post {{ type nat hook postrouting priority 100; policy accept;
{snat}
  }}
}}
""",
        )

        def listen() -> list[socket.socket]:
            out = []
            for host, port in ((D, 80), (D, 443), (E, 443)):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
                s.listen(1024)
                out.append(s)
            return out

        self._holder = _Holder(netns_call(inet, listen)).start()

    def stop(self) -> None:
        for s in self._held:
            s.close()
        self._held.clear()
        if self._holder is not None:
            self._holder.stop()
            self._holder = None
        for name in reversed(self._created):
            _run("ip", "netns", "del", name, check=False)
        self._created.clear()

    def __enter__(self) -> NetnsLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def link_host(self) -> str:
        """Give this (root) namespace a way to pods on the nodes, as the API server has to
        the pod network: each node gets a pod address (``pod_ip``) in 198.18.0.0/15
        (RFC 2544, benchmarking: routed nowhere, and unlike the node subnets it cannot
        collide with this machine's own addresses), a veth joins this namespace to the
        router, and a route for 198.18.0.0/16 goes through it. All of it goes when the
        router's namespace is deleted. Returns this side's address."""
        lb = self.ns("lb")
        here = f"{self.tag}h"[:15]
        _run("ip", "link", "add", here, "type", "veth", "peer", "name", "host0", "netns", lb)
        _run("ip", "-n", lb, "addr", "add", f"{HOST_LINK[1]}/30", "dev", "host0")
        _run("ip", "-n", lb, "link", "set", "host0", "up")
        _run("ip", "addr", "add", f"{HOST_LINK[0]}/30", "dev", here)
        _run("ip", "link", "set", here, "up")
        for node in NODES:
            pod = self.pod_ip(node)
            _run("ip", "-n", self.ns(node), "addr", "add", f"{pod}/32", "dev", "eth0")
            _run("ip", "-n", lb, "route", "add", f"{pod}/32", "via", NODES[node][0], "dev", node)
        _run("ip", "route", "add", "198.18.0.0/16", "via", HOST_LINK[1], "dev", here)
        return HOST_LINK[0]

    def pod_ip(self, node: str) -> str:
        """A pod's address on `node`, reachable from this namespace after link_host()."""
        return f"198.18.{list(NODES).index(node) + 1}.2"

    # --- faults -------------------------------------------------------------------------
    def route(self, dst: str, kind: str = "blackhole", where: str = "lb") -> None:
        """Add a `kind` route (blackhole | unreachable | prohibit) for dst in `where`."""
        if kind not in ("blackhole", "unreachable", "prohibit"):
            raise ValueError(f"route kind {kind!r}")
        _run("ip", "-n", self.ns(where), "route", "add", kind, f"{dst}/32")
        self._routes.append((where, kind, dst))

    def nsg_drop(self, dst: str = D, port: int = 443) -> None:
        """An NSG/firewall deny: SYNs (new connections) to dst:port dropped silently."""
        self._nft(f"add rule ip aksnet forward ip daddr {dst} tcp dport {port} ct state new drop")

    def reject(self, dst: str = D, port: int = 443, how: str = "tcp-reset") -> None:
        """Reject new connections to dst:port: tcp-reset | icmp-port | icmp-host | icmp-admin."""
        action = {
            "tcp-reset": "reject with tcp reset",
            "icmp-port": "reject with icmp type port-unreachable",
            "icmp-host": "reject with icmp type host-unreachable",
            "icmp-admin": "reject with icmp type admin-prohibited",
        }[how]
        self._nft(f"add rule ip aksnet forward ip daddr {dst} tcp dport {port} ct state new {action}")

    def _nft(self, rule: str) -> None:
        _run("ip", "netns", "exec", self.ns("lb"), "nft", *rule.split())

    def flush_conntrack(self) -> None:
        """Forget the router's connections (frees SNAT ports held by closed probes)."""
        _run("ip", "netns", "exec", self.ns("lb"), "conntrack", "-F", check=False)

    def clear(self) -> None:
        """Undo every fault and release held connections."""
        for s in self._held:
            s.close()
        self._held.clear()
        self._nft("flush chain ip aksnet forward")
        for where, kind, dst in self._routes:
            _run("ip", "-n", self.ns(where), "route", "del", kind, f"{dst}/32", check=False)
        self._routes.clear()
        self.flush_conntrack()

    def fill_snat(self, node: str, dst: str = D, port: int = 443) -> int:
        """Open and hold connections from `node` to dst:port until its SNAT block is full;
        returns how many were opened (== snat_ports when the pool really filled)."""

        def connect_all() -> list[socket.socket]:
            out = []
            for _ in range(self.snat_ports):
                try:
                    out.append(socket.create_connection((dst, port), timeout=1.5))
                except OSError:
                    break
            return out

        got = netns_call(self.ns(node), connect_all)
        self._held.extend(got)
        return len(got)

    def conntrack_count(self) -> int:
        r = _run("ip", "netns", "exec", self.ns("lb"), "conntrack", "-C", check=False)
        try:
            return int(r.stdout.strip() or 0)
        except ValueError:
            return -1

    # --- probing from a node ---------------------------------------------------------------
    def probe(self, node: str, targets: Iterable[str], *, mode: str = "auto", timeout: float = 1.5) -> list[dict]:
        """Run `python -m probes.egress.probe` inside `node`'s namespace; one dict per target."""
        argv = [
            "ip",
            "netns",
            "exec",
            self.ns(node),
            sys.executable,
            "-m",
            "probes.egress.probe",
            "--mode",
            mode,
            "--timeout",
            str(timeout),
            "--vantage",
            f"node/{node}",
            *targets,
        ]
        r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=30 + 3 * timeout)
        if r.returncode != 0:
            raise RuntimeError(f"probe in {node} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
        return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
