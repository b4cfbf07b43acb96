"""Where a finding's evidence is shown: the tab, and which row of it.

A finding names its subject (`node/<name>`, `target/<host:port>`, `resolver/<key>`, …);
its rule says which observation made it. From both this module picks the tab and the
fields the evidence row has (a DNS row of NodeLocal from that node, the node's SNAT row,
the target's egress rows), so Enter on a finding lands on the row that shows it, not on
the tab's first line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probes.diagnose import Finding
from tui.probe_text import short_vantage


@dataclass(frozen=True, slots=True)
class Evidence:
    tab: str  # a pane title: "Topology", "DNS", "Egress", "SNAT", "Ingress"
    node: str = ""  # the node, for the tree and the SNAT table
    fields: tuple[tuple[str, str], ...] = ()  # history-key fields the row must have
    failing_first: bool = True  # among matching rows, a failing one first

    def matches(self, key: Any) -> bool:
        return all(getattr(key, f, None) == v for f, v in self.fields)

    def describe(self) -> str:
        """'DNS tab, nodepool1/1 · nodelocal' for the detail screen."""
        bits = [short_vantage(v) if f == "vantage" else v for f, v in self.fields]
        if self.node and not self.fields:
            bits.append(short_vantage(self.node))
        return f"{self.tab} tab" + (", " + " · ".join(bits) if bits else "")


DNS_RULES = {"nodelocal-down", "nodelocal-pod-not-ready"}
KUBE_DNS_RULES = {"cluster-dns-down", "coredns-degraded", "upstream-dns-blocked"}
EGRESS_TARGET_RULES = {"egress-dropped", "egress-refused", "egress-no-route"}
SNAT_RULES = {"snat-exhausted", "snat-pressure", "snat-allocation"}
INGRESS_RULES = {
    "ingress-host-dns",
    "certificate-expired",
    "certificate-not-ready",
    "certificate-expiring",
    "acme-challenge-stuck",
    "lb-probe-path",
    "lb-probe-no-local-endpoint",
    "lb-probe-few-nodes",
}


def evidence_of(f: Finding) -> Evidence:
    kind, _, rest = f.subject.partition("/")
    node = rest if kind == "node" else ""
    if f.rule in DNS_RULES and node:
        return Evidence("DNS", node, (("vantage", f"node/{node}"), ("resolver", "nodelocal")))
    if f.rule in KUBE_DNS_RULES:
        return Evidence("DNS", "", (("resolver", "kube-dns"),))
    if f.rule == "local-vantage-limited":
        return Evidence("DNS", "", (("vantage", "local"),))
    if kind == "resolver":
        return Evidence("DNS", "", (("resolver", rest),))
    if f.rule in EGRESS_TARGET_RULES and kind == "target":
        return Evidence("Egress", "", (("target", rest),))
    if f.rule == "egress-one-node" and node:
        return Evidence("Egress", node, (("vantage", f"node/{node}"),))
    if f.rule in SNAT_RULES:
        return Evidence("SNAT", node)
    if f.rule in INGRESS_RULES:
        return Evidence("Ingress", "", (("subject", f.subject),))
    return Evidence("Topology", node)
