"""The Ingress tab's detail: the fields of the objects behind a row (Ingress, its class
and controller, the answers per vantage, the Certificate and its challenge, the
backends; or a LoadBalancer Service with its Azure annotations and what Azure does)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from probes.engine.history import Stats
from probes.ingress import azurelb, served
from probes.ingress.served import results_for
from probes.ingress.tlsresult import TlsResult
from probes.ingress.view import ClassGroup, HostRow, IngressView, LbRow
from tui import ingress_text as it

Rows = list[tuple[str, Text]]


def _date(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC") if t else "—"


def https_rows(r: HostRow, https: Mapping[Any, Stats] | None) -> Rows:
    """What the HTTPS probe was served at each address, with the chain as sent (every
    certificate field is the server's: plain Text, never markup)."""
    if r.tls is None:
        return [("https", Text("not probed: the host has no TLS entry", style="dim"))]
    got = results_for(https, r)
    if not got:
        return [("https", Text("no result yet (probed from here every https.interval s)", style="dim"))]
    rows: Rows = []
    for k, st in got:
        words, style = it.https_words(st)
        res = st.last if isinstance(st.last, TlsResult) else None
        head = Text(f"{k.vantage} → {k.address}:{k.port}: ")
        head.append(served.verdict(res) if res is not None else words, style=f"bold {style}")
        if res is not None:
            if res.outcome.handshake:
                head.append(f"  ({res.tls_version or 'TLS'}, handshake {res.latency_ms:.1f} ms)", style="dim")
        rows.append(("https", head))
        if res is None:
            continue
        if res.error:
            rows.append(("", Text(res.error)))
        if res.via:
            rows.append(("", Text(f"dialled {res.via}", style="dim")))
        for i, c in enumerate(res.chain):
            line = Text(f"{c.subject_cn or '(no CN)'}", style="bold" if i == 0 else "")
            line.append(f" ← {c.issuer_cn or c.issuer or '?'}", style="dim")
            line.append(f"  until {c.not_after_text}")
            if c.self_signed:
                line.append("  self-signed", style=it.WARN)
            rows.append(("leaf" if i == 0 else "chain", line))
            if i == 0 and c.sans:
                more = f" +{len(c.sans) - 6}" if len(c.sans) > 6 else ""
                rows.append(("SANs", Text(", ".join(c.sans[:6]) + more)))
        if res.http_status is not None:
            rows.append(("HEAD /", Text(str(res.http_status))))
        elif res.http_error:
            rows.append(("HEAD /", Text(res.http_error, style=it.WARN)))
    return rows


def host_rows(r: HostRow, view: IngressView, now: float, https: Mapping[Any, Stats] | None = None) -> Rows:
    rows: Rows = [("host", Text(r.host, style="bold")), ("from", Text(r.source))]
    kind, _, key = r.source.partition(" ")
    ns, _, name = key.partition("/")
    ing = (
        next((i for i in view.data.ingresses if i.namespace == ns and i.name == name), None)
        if kind == "ingress"
        else None
    )
    rows.append(("class", Text(r.class_name or "(default)")))
    if ing is not None:
        for rule in ing.rules:
            if rule.host == r.host:
                b = rule.backend
                rows.append(("rule", Text(f"{rule.path or '/'} → {b.service}:{b.port}" if b else rule.path)))
        for secret, hosts in ing.tls:
            if r.host in hosts:
                rows.append(("spec.tls", Text(f"secret {secret} for {', '.join(hosts)}")))
        rows.append(("status LB", Text(", ".join(ing.lb) or "— (the controller published nothing)")))
        if ing.issuer:
            rows.append(("issuer annot.", Text(ing.issuer)))
    rows.append(("expected", Text(", ".join(r.expected) or "— (no controller load balancer found)")))
    if not r.answers:
        rows.append(("resolves to", Text("not asked yet (no vantage here reaches a cluster resolver)", style="dim")))
    for a in r.answers:
        said = ", ".join(a.addresses) if a.addresses else a.outcome.upper()
        if a.error:
            said += f" ({a.error})"
        age = f"  {max(0.0, now - a.at):.0f} s ago" if a.at else ""
        rows.append(("resolves to", Text.assemble(f"{a.vantage} via {a.resolver}: ", (said, "bold"), (age, "dim"))))
    rows.extend(https_rows(r, https))
    t = r.tls
    if t is None:
        rows.append(("tls", Text("no TLS entry for this host", style="dim")))
    else:
        words, style = it.tls_words(t, now)
        rows.append(("tls", Text(words, style=style)))
        if t.certificate:
            rows.append(("certificate", Text(f"{t.certificate} (secret {t.secret})")))
            rows.append(("issuer", Text(t.issuer or "—")))
            rows.append(("Ready", Text(f"{t.ready} {t.reason}".strip())))
            if t.message:
                rows.append(("message", Text(t.message)))
            left = f" ({(t.not_after - now) / 86400:.1f} days)" if t.not_after else ""
            rows.append(("notAfter", Text(_date(t.not_after) + left)))
        elif view.data.is_absent("certificates"):
            rows.append(("certificate", Text("cert-manager is not installed (no CRDs)", style="dim")))
        else:
            rows.append(("certificate", Text(f"no Certificate for secret {t.secret or '?'}", style="dim")))
        ch = t.challenge
        if ch is not None:
            age = (now - ch.created) / 60 if ch.created else 0
            rows.append(
                (
                    "challenge",
                    Text(f"{ch.namespace}/{ch.name}: {ch.type} {ch.state or 'pending'} for {age:.0f} min"),
                )
            )
            rows.append(("", Text(f"presented {ch.presented}, processing {ch.processing}; {ch.reason}")))
    for svc, ready, total in r.backends:
        rows.append(("backend", Text(f"{svc}: {ready}/{total} endpoints ready")))
    return rows


def group_rows(g: ClassGroup, view: IngressView) -> Rows:
    rows: Rows = [
        ("class", Text(g.class_name, style="bold")),
        ("controller", Text(g.controller or "—")),
        ("family", Text(it.FAMILY.get(g.family, g.family or "unknown"))),
        ("service", Text(g.service or "— (no LoadBalancer service selects its pods)")),
        ("LB IP", Text(", ".join(g.lb_ips) or "—")),
        ("hosts", Text(str(len(g.hosts)))),
    ]
    for p in view.data.pods:
        if p.family == g.family:
            rows.append(
                (
                    "pod",
                    Text.assemble(
                        f"{p.namespace}/{p.name} on {p.node or '?'}: ",
                        ("ready" if p.ready else "not ready", it.OK if p.ready else it.BAD),
                        f", {p.phase}, {p.restarts} restarts",
                    ),
                )
            )
    return rows


def lb_rows(lb: LbRow) -> Rows:
    s = lb.service
    rows: Rows = [
        ("service", Text(s.key, style="bold")),
        ("external", Text(", ".join(s.external) or "<pending>", style="" if s.external else it.WARN)),
        ("clusterIP", Text(s.cluster_ip)),
    ]
    for p in s.ports:
        extra = f", appProtocol {p.app_protocol}" if p.app_protocol else ""
        rows.append(("port", Text(f"{p.port}/{p.protocol} → nodePort {p.node_port or '?'}{extra}")))
    rows.append(("traffic policy", Text(s.external_traffic_policy)))
    if s.health_check_node_port:
        rows.append(("healthCheckNodePort", Text(str(s.health_check_node_port))))
    if s.source_ranges:
        rows.append(("sourceRanges", Text(", ".join(s.source_ranges))))
    if s.load_balancer_ip:
        rows.append(("loadBalancerIP", Text(s.load_balancer_ip)))
    for k, v in s.annotations:
        if azurelb.is_azure(k):
            rows.append(("annotation", Text.assemble((k.removeprefix(azurelb.PREFIX), "cyan"), f" = {v}")))
    for e in lb.effects:
        rows.append((e.what, Text(e.text)))
    if lb.sliced:
        rows.append(("endpoints", Text(f"{lb.ready}/{lb.total} ready on {lb.ready_nodes} of {lb.nodes} nodes")))
    else:
        rows.append(("endpoints", Text("no EndpointSlice seen", style="dim")))
    if lb.controller:
        rows.append(("backs", Text(f"the {it.FAMILY.get(lb.controller, lb.controller)} controller")))
    for ev in lb.events:
        rows.append(("event", Text(ev, style=it.WARN)))
    return rows


class IngressDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    IngressDetailScreen { align: center middle; }
    IngressDetailScreen > VerticalScroll { width: 100%; max-width: 120; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Back")]

    def __init__(self, obj: Any, view: IngressView, now: float, https: Mapping[Any, Stats] | None = None) -> None:
        super().__init__()
        self.obj = obj
        if isinstance(obj, HostRow):
            self.rows, self.title_text = host_rows(obj, view, now, https), obj.host
        elif isinstance(obj, ClassGroup):
            self.rows, self.title_text = group_rows(obj, view), f"class {obj.class_name}"
        else:
            self.rows, self.title_text = lb_rows(obj), f"service {obj.service.key}"
        self.plain_rows = [(k, v.plain) for k, v in self.rows]  # tests

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        for key, value in self.rows:
            table.add_row(key, value)
        with VerticalScroll() as box:
            box.border_title = Text(self.title_text)
            box.border_subtitle = "Esc back"
            yield Static(table)
