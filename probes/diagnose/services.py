"""Service rules: LoadBalancer services without an external IP (F12)."""

from __future__ import annotations

from collections.abc import Iterable

from probes.diagnose.model import Finding, Observations, Severity


# --- services ----------------------------------------------------------------------------
def rule_lb_pending(obs: Observations) -> Iterable[Finding]:
    """F12: a LoadBalancer service without an external IP."""
    for s in obs.topology.services:
        if s.pending:
            events = obs.topology.service_events.get(f"{s.namespace}/{s.name}", ())
            yield Finding(
                "lb-service-pending",
                "F12",
                Severity.WARNING,
                f"service/{s.namespace}/{s.name}",
                f"LoadBalancer service has no {'internal ' if s.internal_lb else ''}IP yet"
                + (f": {events[0]}" if events else ""),
                {
                    "ports": ", ".join(s.ports),
                    "internal": s.internal_lb,
                    **({"events": " | ".join(events)} if events else {}),
                },
                f"`kubectl -n {s.namespace} describe service {s.name}` for the cloud provider's error"
                + ("; an internal LB on your own subnet needs Network Contributor on it" if s.internal_lb else ""),
            )
