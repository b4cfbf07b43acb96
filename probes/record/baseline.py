"""Before/after: `check --save-baseline FILE` keeps the report; `check --baseline FILE`
says what changed since — nodes replaced (per pool: which left, which joined), pools'
versions and sizes, routes of the nodes present both times, resolvers' latency and loss
beyond a threshold, egress outcomes, SNAT allocation — and which findings are new.

The verdict (exit code) is `check`'s, taken over the new findings only: a finding the
baseline already had does not decide, a new critical one does."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

SCHEMA = "aksnet-top/baseline/v1"
LATENCY_MS = 20.0  # a p50 must rise by this much …
LATENCY_RATIO = 2.0  # … and to this many times the baseline's, to count
LOSS_POINTS = 10.0  # loss must rise by this many percentage points


class BaselineError(Exception):
    """The baseline file cannot be read or is not one; the message is for the user."""


@dataclass
class Diff:
    lines: list[str] = field(default_factory=list)  # what changed, one line each
    new_findings: list[dict[str, Any]] = field(default_factory=list)
    gone_findings: list[dict[str, Any]] = field(default_factory=list)
    replaced: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # pool -> (left, joined)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": self.lines,
            "replaced": {p: {"left": a, "joined": b} for p, (a, b) in self.replaced.items()},
            "new_findings": self.new_findings,
            "gone_findings": self.gone_findings,
        }


def save(report: Mapping[str, Any], path: Path) -> None:
    try:
        path.write_text(json.dumps({"baseline": SCHEMA, "report": report}, indent=1))
    except OSError as e:
        raise BaselineError(f"cannot write the baseline {path}: {e}") from e


def load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BaselineError(f"cannot read the baseline {path}: {e}") from e
    if not isinstance(doc, dict) or doc.get("baseline") != SCHEMA or not isinstance(doc.get("report"), dict):
        raise BaselineError(f"{path} is not a baseline written by `aksnet-top check --save-baseline`")
    return doc["report"]


def _by(rows: Iterable[Mapping[str, Any]], *keys: str) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    return {tuple(r.get(k) for k in keys): r for r in rows}


def _fkey(f: Mapping[str, Any]) -> tuple[Any, Any]:
    return (f.get("rule"), f.get("subject"))


def compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
    d = Diff()
    ob, oa = before.get("observations", {}), after.get("observations", {})
    tb, ta = ob.get("topology", {}), oa.get("topology", {})
    nb = {n["name"]: n for n in tb.get("node_list", [])}
    na = {n["name"]: n for n in ta.get("node_list", [])}
    left, joined = sorted(set(nb) - set(na)), sorted(set(na) - set(nb))
    pools = sorted({nb[n]["pool"] for n in left} | {na[n]["pool"] for n in joined})
    for pool in pools:
        lp = [n for n in left if nb[n]["pool"] == pool]
        jp = [n for n in joined if na[n]["pool"] == pool]
        d.replaced[pool] = (lp, jp)
        if lp and jp:
            d.lines.append(f"pool {pool}: nodes replaced: {', '.join(lp)} → {', '.join(jp)}")
        elif lp:
            d.lines.append(f"pool {pool}: nodes gone: {', '.join(lp)}")
        else:
            d.lines.append(f"pool {pool}: nodes added: {', '.join(jp)}")
    for name in sorted(set(nb) & set(na)):
        a, b = nb[name], na[name]
        for k in ("internal_ip", "pod_cidrs", "ready", "network_unavailable"):
            if a.get(k) != b.get(k):
                d.lines.append(f"node {name}: {k} {a.get(k)} → {b.get(k)}")
    pb, pa = _by(tb.get("pools", []), "name"), _by(ta.get("pools", []), "name")
    for key in sorted(set(pb) | set(pa)):
        a, b = pb.get(key), pa.get(key)
        if a is None or b is None:
            d.lines.append(f"pool {key[0]}: {'added' if a is None else 'gone'}")
            continue
        for k in ("kubelet_versions", "vm_size"):
            if a.get(k) != b.get(k):
                d.lines.append(f"pool {key[0]}: {k} {a.get(k)} → {b.get(k)}")
    if tb.get("server_version") != ta.get("server_version"):
        d.lines.append(f"API server {tb.get('server_version')} → {ta.get('server_version')}")
    _routes(d, ob.get("routes", {}), oa.get("routes", {}), set(nb) & set(na), set(left) | set(joined))
    # a replaced node's own probes (drained, deleted or just joined while the run probed)
    # are said by "nodes replaced": their latency and loss then describe the upgrade itself
    gone = {f"node/{n}" for n in (*left, *joined)}
    _probes(d, ob.get("dns", []), oa.get("dns", []), ("vantage", "resolver", "name", "type"), "DNS", gone)
    _probes(d, ob.get("egress", []), oa.get("egress", []), ("vantage", "target"), "egress", gone)
    sb, sa = ob.get("snat", {}).get("allocation"), oa.get("snat", {}).get("allocation")
    if sb and sa:
        for k in ("tier", "ports_per_node", "ports_during_surge", "outbound_ips", "idle_timeout_min"):
            if sb.get(k) != sa.get(k):
                d.lines.append(f"SNAT {k}: {sb.get(k)} → {sa.get(k)}")
    fb = {_fkey(f) for f in before.get("findings", [])}
    fa = {_fkey(f) for f in after.get("findings", [])}
    d.new_findings = [f for f in after.get("findings", []) if _fkey(f) not in fb]
    d.gone_findings = [f for f in before.get("findings", []) if _fkey(f) not in fa]
    return d


def _routes(d: Diff, rb: Mapping[str, Any], ra: Mapping[str, Any], both: set[str], replaced: set[str]) -> None:
    """Routes of nodes present before and after: a replaced node's route (gone, added, or
    left behind as an orphan, which its own finding reports) goes with the replacement."""
    if rb.get("state") != ra.get("state"):
        d.lines.append(f"route tables: {rb.get('state')} → {ra.get('state')}")
    xb = {r.get("name"): r for r in rb.get("routes", [])}
    xa = {r.get("name"): r for r in ra.get("routes", [])}
    for name in sorted(set(xb) | set(xa)):
        a, b = xb.get(name), xa.get(name)
        if a == b or name in replaced:
            continue
        if a is not None and b is not None:
            d.lines.append(
                f"route {name}: {a.get('prefix')} via {a.get('next_hop_ip')} → {b.get('prefix')} via {b.get('next_hop_ip')} ({b.get('kind')})"
            )
        elif (
            name in both
            or (a is None and b is not None and b.get("kind") != "route")
            or (a is not None and a.get("kind") != "route")
        ):
            d.lines.append(f"route {name}: {'gone' if b is None else 'added (' + str(b.get('kind')) + ')'}")


def _probes(
    d: Diff,
    before: list[Mapping[str, Any]],
    after: list[Mapping[str, Any]],
    keys: tuple[str, ...],
    what: str,
    replaced: Collection[str] = (),
) -> None:
    """Rows present both times: a worse outcome, latency or loss beyond the thresholds.
    Rows from a `replaced` node's vantage are left out."""
    b, a = _by(before, *keys), _by(after, *keys)
    for k in sorted(set(b) & set(a), key=str):
        x, y = b[k], a[k]
        if x.get("vantage") in replaced:
            continue
        label = f"{what} {' '.join(str(v) for v in k if v)}"
        if x.get("health") != y.get("health"):
            d.lines.append(f"{label}: {x.get('health')} → {y.get('health')} ({y.get('last_outcome')})")
            continue
        p0, p1 = x.get("p50_ms", x.get("handshake_p50_ms")), y.get("p50_ms", y.get("handshake_p50_ms"))
        if p0 is not None and p1 is not None and p1 - p0 >= LATENCY_MS and p1 >= p0 * LATENCY_RATIO:
            d.lines.append(f"{label}: p50 {p0:.1f} → {p1:.1f} ms")
        l0 = x.get("loss_pct", 100 - (x.get("success_pct") or 100))
        l1 = y.get("loss_pct", 100 - (y.get("success_pct") or 100))
        if l1 - l0 >= LOSS_POINTS:
            d.lines.append(f"{label}: loss {l0:.0f}% → {l1:.0f}%")


def render(diff: Diff, out: IO[str]) -> None:
    print("since the baseline:", file=out)
    if not diff.lines and not diff.new_findings and not diff.gone_findings:
        print("  nothing changed", file=out)
    for line in diff.lines:
        print(f"  {line}", file=out)
    for f in diff.new_findings:
        print(f"  new finding [{str(f.get('severity')).upper()}] {f.get('subject')}: {f.get('cause')}", file=out)
    for f in diff.gone_findings:
        print(f"  cleared: {f.get('subject')}: {f.get('rule')}", file=out)
