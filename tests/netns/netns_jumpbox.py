"""Run inside a network namespace (``ip netns exec NS python tests/netns/netns_jumpbox.py MODE``)
and print one JSON line.

``classify``: read this namespace's routing table and plan the `local` vantage's DNS
probes for an overlay cluster (kube-dns 10.0.0.10, a CoreDNS pod 10.244.1.5, NodeLocal,
a custom resolver 10.1.0.53): key -> why not reachable ("" when reachable).

``truncation``: a lab responder on 10.1.0.53:53 answers big.example.com TXT with 734
bytes; the real probe asks it with both client profiles; the result and F7's finding.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from probes.diagnose import diagnose, observe  # noqa: E402
from probes.dns.probe import DnsProbe  # noqa: E402
from probes.dns.resolvers import Resolver, ResolverKind  # noqa: E402
from probes.dns.service import DnsSettings, Vantage, build_plan  # noqa: E402
from probes.engine.history import History  # noqa: E402
from probes.engine.reach import for_topology  # noqa: E402
from probes.kube.model import LOCAL_VANTAGE, NetworkPlugin, PodState, Topology  # noqa: E402
from probes.lab.dnsserver import DnsResponder  # noqa: E402
from probes.lab.dnsspec import Behaviour, DnsFaultMode  # noqa: E402

RESOLVER = "10.1.0.53"
TOPOLOGY = Topology(
    cluster="netns",
    plugin=NetworkPlugin.AZURE_CNI_OVERLAY,
    dataplane="azure",
    pod_cidrs=("10.244.0.0/16",),
    dns_service_ip="10.0.0.10",
    nodes=(),
    pools=(),
    coredns=(PodState("kube-system", "coredns-a", "n1", "10.244.1.5", "Running", True),),
    nodelocal_enabled=True,
)


def classify() -> dict[str, str]:
    reach = for_topology(TOPOLOGY)  # this namespace's /proc/net/route
    settings = DnsSettings(resolvers=(RESOLVER,))
    plan = build_plan(TOPOLOGY, settings, [Vantage(LOCAL_VANTAGE)], 1, reach=reach.why_not)
    return {r.key: r.unreachable for r in plan.vantages[0].resolvers} | {"jobs": str(plan.jobs)}


def truncation() -> dict[str, object]:
    r = DnsResponder(Behaviour(mode=DnsFaultMode.HUGE_TXT, txt_size=675), host=RESOLVER, port=53).start()
    try:
        res = asyncio.run(
            DnsProbe("node/netns", timeout=1.0).query(
                Resolver("kube-dns", ResolverKind.KUBE_DNS, RESOLVER), "big.example.com", "TXT"
            )
        )
    finally:
        r.stop()
    h = History()
    h.add(res.key, res)
    found = [f.to_json() for f in diagnose(observe(TOPOLOGY, h.snapshot())) if f.fault == "F7"]
    return {"outcome": res.outcome.value, "size": res.size, "no_edns": res.no_edns, "target": res.target, "f7": found}


if __name__ == "__main__":
    out = classify() if sys.argv[1] == "classify" else truncation()
    print(json.dumps(out, sort_keys=True))
