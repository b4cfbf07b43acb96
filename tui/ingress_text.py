"""The Ingress tab's cells and words, from the frame's IngressView: pure functions from
rows to Rich Text (every external string as plain text, never markup)."""

from __future__ import annotations

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.text import Text

from probes.engine.history import Stats
from probes.ingress import azurelb, served
from probes.ingress.tlsresult import TlsOutcome, TlsResult
from probes.ingress.view import (
    DNS_ELSEWHERE,
    DNS_FAILING,
    DNS_NO_LB,
    DNS_NXDOMAIN,
    DNS_OK,
    ClassGroup,
    HostRow,
    LbRow,
    TlsState,
)

OK, WARN, BAD, DIM = "green", "yellow", "bold red", "dim"
DAY = 86400.0
EXPIRY_WARN_DAYS = 14.0
FAMILY = {"ingress-nginx": "ingress-nginx", "app-routing": "app routing", "agic": "AGIC", "gateway": "Gateway API"}


def group_label(g: ClassGroup) -> Text:
    fam = FAMILY.get(g.family, g.controller or "unknown controller")
    return Text.assemble(("▾ ", DIM), (g.class_name, "bold"), (f" · {fam}", DIM), no_wrap=True)


def group_lb(g: ClassGroup) -> Text:
    if not g.lb_ips:
        return Text("LB <pending>" if g.service else "no LB found", style=WARN, no_wrap=True)
    return Text(f"LB {', '.join(g.lb_ips)}", style="bold", no_wrap=True)


def group_pods(g: ClassGroup) -> Text:
    if g.family == "gateway":
        return Text("", no_wrap=True)
    if not g.pods_total:
        return Text("0 pods", style=WARN if g.family in ("ingress-nginx", "app-routing") else DIM, no_wrap=True)
    style = OK if g.pods_ready == g.pods_total else WARN if g.pods_ready else BAD
    return Text(f"{g.pods_ready}/{g.pods_total}", style=style, no_wrap=True)


def dns_cell(r: HostRow) -> Text:
    ips = ", ".join(r.resolved)
    if r.dns == DNS_OK:
        return Text(f"✓ {ips}", style=OK, no_wrap=True)
    if r.dns == DNS_ELSEWHERE:
        return Text(f"✗ {ips}", style=BAD, no_wrap=True)
    if r.dns == DNS_NXDOMAIN:
        return Text("✗ NXDOMAIN", style=BAD, no_wrap=True)
    if r.dns == DNS_FAILING:
        outcome = next((a.outcome for a in r.answers), "?")
        return Text(f"◌ {outcome}", style=WARN, no_wrap=True)
    if r.dns == DNS_NO_LB:
        return Text(f"? {ips}" if ips else "? no LB", style=WARN, no_wrap=True)
    return Text("· not asked", style=DIM, no_wrap=True)


def tls_words(t: TlsState | None, now: float) -> tuple[str, str]:
    """(short text, style) of a host's TLS state."""
    if t is None:
        return "no TLS", DIM
    if not t.certificate:
        if t.challenge is not None:
            return f"⌛ {(t.challenge.type or 'ACME').replace('-', '')}", WARN
        return ("? no cert" if t.secret else "? none"), DIM
    if t.not_after and t.not_after <= now:
        return "✗ expired", BAD
    if t.ready is False:
        if t.challenge is not None:
            age = (now - t.challenge.created) / 60 if t.challenge.created else 0
            return f"⌛ {(t.challenge.type or 'ACME').replace('-', '')} {age:.0f}m", WARN
        return f"✗ {t.reason or 'not ready'}", BAD
    if t.not_after:
        days = (t.not_after - now) / DAY
        return f"{'▲' if days < EXPIRY_WARN_DAYS else '✓'} {days:.0f}d", WARN if days < EXPIRY_WARN_DAYS else OK
    return ("✓ ready", OK) if t.ready else ("◌ pending", WARN)


def tls_cell(r: HostRow, now: float) -> Text:
    words, style = tls_words(r.tls, now)
    return Text(words, style=style, no_wrap=True)


def backends_cell(r: HostRow) -> Text:
    if not r.backends:
        return Text("—", style=DIM, no_wrap=True)
    ready = sum(b[1] for b in r.backends)
    total = sum(b[2] for b in r.backends)
    style = OK if ready and ready == total else WARN if ready else BAD
    return Text(f"{ready}/{total}", style=style, no_wrap=True)


HTTPS_CELL = Text("—", style=DIM, no_wrap=True)  # the HTTPS probe's column: no result yet

_HTTPS_WORDS = {
    TlsOutcome.EXPIRED: "✗ expired",
    TlsOutcome.NOT_YET_VALID: "✗ not yet",
    TlsOutcome.WRONG_HOST: "✗ wrong host",
    TlsOutcome.UNTRUSTED: "✗ untrusted",
    TlsOutcome.TLS_ERROR: "✗ not TLS",
    TlsOutcome.REFUSED: "✗ refused",
    TlsOutcome.TIMEOUT: "✗ timeout",
    TlsOutcome.UNREACHABLE: "✗ unreachable",
    TlsOutcome.LOCAL_ERROR: "? local error",
}


def https_words(st: Stats | None) -> tuple[str, str]:
    """(short verdict, style) of a host's HTTPS row: ✓ 89d / ▲ 5d / ✗ expired / …"""
    if st is None or not st.attempts:
        return "—", DIM
    o = served.outcome(st)
    r = st.last if isinstance(st.last, TlsResult) else None
    days = r.days_left if r is not None else None
    if o is TlsOutcome.VALID:
        return (f"✓ {days:.0f}d" if days is not None else "✓ valid"), OK
    if o is TlsOutcome.EXPIRING:
        return (f"▲ {days:.0f}d" if days is not None else "▲ expiring"), WARN
    if o is TlsOutcome.UNTRUSTED and served.is_fake(r):
        return "✗ fake cert", BAD
    if o is None:
        return f"? {st.last_outcome or 'error'}", WARN
    return _HTTPS_WORDS.get(o, f"✗ {o.value}"), (WARN if o is TlsOutcome.LOCAL_ERROR else BAD)


def https_cell(st: Stats | None, width: int = 0) -> Text:
    """The verdict, HEAD /'s status when asked for, then the leaf's issuer (dim; an
    external string, as plain text) when it fits in `width` whole (0: always)."""
    words, style = https_words(st)
    t = Text(words, style=style, no_wrap=True, overflow="ellipsis")
    r = st.last if st is not None and isinstance(st.last, TlsResult) else None
    if r is None:
        return t
    if r.http_status is not None:
        code = r.http_status
        t.append(f" {code}", style=OK if code < 400 else WARN if code < 500 else BAD)
    elif r.http_error:
        t.append(" HEAD ✗", style=WARN)
    issuer = served.issuer_of(r) if not served.is_fake(r) else ""
    if issuer and r.outcome.handshake and (not width or t.cell_len + 3 + len(issuer) <= width):
        t.append(" · ", style=DIM)
        t.append(issuer, style=DIM)
    return t


def https_width(st: Stats | None, said: tuple[str, str] | None = None) -> int:
    """https_cell(st)'s width in cells (width 0: everything), without building its Text
    (`said`: https_words(st) when the caller has it)."""
    words, _ = said or https_words(st)
    n = cell_len(words)
    r = st.last if st is not None and isinstance(st.last, TlsResult) else None
    if r is None:
        return n
    if r.http_status is not None:
        n += 1 + len(str(r.http_status))
    elif r.http_error:
        n += cell_len(" HEAD ✗")
    issuer = served.issuer_of(r) if not served.is_fake(r) else ""
    if issuer and r.outcome.handshake:
        n += 3 + cell_len(strip_control_codes(issuer))  # as Text.append keeps it
    return n


def lb_ip_cell(lb: LbRow) -> Text:
    if lb.service.pending:
        return Text("<pending>", style=WARN, no_wrap=True)
    return Text(", ".join(lb.service.external), no_wrap=True)


def lb_summary(lb: LbRow) -> Text:
    """What Azure does for the service, in a few words; a pending one's event instead."""
    svc = lb.service
    if svc.pending and lb.events:
        return Text(lb.events[0], style=WARN, no_wrap=True)
    parts: list[str] = []
    if svc.annotation(azurelb.INTERNAL).lower() == "true":
        subnet = svc.annotation(azurelb.INTERNAL_SUBNET)
        parts.append(f"internal{' ' + subnet if subnet else ''}")
    else:
        parts.append("public")
    if svc.source_ranges:
        parts.append(f"NSG {len(svc.source_ranges)} range{'s' if len(svc.source_ranges) != 1 else ''}")
    for p in lb.probes[:1]:
        parts.append(f"probe {p.protocol.upper()}" + (f" {p.path}" if p.path else ""))
    if svc.annotation(azurelb.PLS_CREATE).lower() == "true":
        parts.append("PLS")
    label = svc.annotation(azurelb.DNS_LABEL)
    if label:
        parts.append(f"dns {label}")
    if svc.external_traffic_policy == "Local":
        parts.append("ETP Local")
    return Text(" · ".join(parts), no_wrap=True)


def lb_ready_cell(lb: LbRow) -> Text:
    if not lb.sliced:
        return Text("?", style=DIM, no_wrap=True)
    style = OK if lb.ready and lb.ready == lb.total else WARN if lb.ready else BAD
    return Text(f"{lb.ready}/{lb.total}", style=style, no_wrap=True)
