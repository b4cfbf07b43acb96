"""Run inside a network namespace (``ip netns exec NS python tests/netns/netns_dns_probe.py MODE``):
start lab responders on the production addresses the namespace owns, probe them with the
real DnsProbe and resolvers from a topology, print one JSON line of outcomes.

MODE: ``ok`` (everything answers) or ``nodelocal-drop`` (169.254.20.10 drops queries).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from probes.dns.probe import DnsProbe  # noqa: E402
from probes.dns.resolvers import ResolverOptions, resolvers_for  # noqa: E402
from probes.kube.model import NetworkPlugin, Topology  # noqa: E402
from probes.lab.dnsserver import DnsResponder  # noqa: E402
from probes.lab.dnsspec import ANSWER, Behaviour, DnsFaultMode  # noqa: E402


async def probe_all(names: tuple[str, ...]) -> dict[str, str]:
    topo = Topology(
        cluster="netns",
        plugin=NetworkPlugin.KUBENET,
        dataplane="azure",
        pod_cidrs=(),
        dns_service_ip="10.0.0.10",
        nodes=(),
        pools=(),
        coredns=(),
        nodelocal_enabled=True,
    )
    resolvers = resolvers_for(topo, ResolverOptions(names=names, coredns_pods=False))
    assert all(r.target is None for r in resolvers), "must dial the production addresses"
    p = DnsProbe("node/netns", timeout=0.5)
    results = await asyncio.gather(*(p.query(r, n) for r in resolvers for n in names))
    return {f"{r.resolver}@{r.target}/{r.qname}": r.outcome.value for r in results}


def main() -> int:
    mode = sys.argv[1]
    nodelocal = Behaviour(DnsFaultMode.DROP) if mode == "nodelocal-drop" else ANSWER
    rs = [
        DnsResponder(nodelocal, host="169.254.20.10", port=53).start(),
        DnsResponder(ANSWER, host="10.0.0.10", port=53).start(),
    ]
    try:
        out = asyncio.run(probe_all(("kubernetes.default.svc.cluster.local", "mcr.microsoft.com")))
    finally:
        for r in rs:
            r.stop()
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
