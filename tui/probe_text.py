"""How a probe row looks, shared by the DNS and egress panes and their detail screens:
short forms of vantages, latencies and outcomes, sparklines, and the colour and bullet of
each `Health`. Its own module so that a pane and its detail screen both import it
without importing each other."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text

from probes.dns.probe import DnsOutcome
from probes.egress.result import EgressOutcome
from probes.engine.health import Health
from probes.engine.history import Brief, Stats, judge
from tui.format import BAD, DIM, OK, WARN

STYLE = {Health.GOOD: OK, Health.DEGRADED: WARN, Health.FAILING: BAD, Health.PENDING: DIM, Health.UNREACHABLE: DIM}
BULLET = {Health.GOOD: "●", Health.DEGRADED: "▲", Health.FAILING: "✖", Health.PENDING: "◌", Health.UNREACHABLE: "○"}

SPARK = "▁▂▃▄▅▆▇█"
SPARK_MS = (0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 200.0)  # upper bounds of the first 7 levels
SPARK_WIDTH = 9

DNS_SHORT = {
    "ok": "ok",
    "nxdomain": "nxdomain",
    "servfail": "servfail",
    "refused": "refused",
    "other-rcode": "rcode",
    "timeout": "timeout",
    "truncated-tcp-ok": "tc→tcp",
    "truncated-tcp-failed": "tc,tcp✖",
    "network-error": "net-err",
    "malformed": "malformed",
    "error": "error",
}
EGRESS_SHORT = {
    "open": "open",
    "refused": "refused",
    "timeout": "timeout",
    "unreachable": "unreach",
    "dns-timeout": "dns-tmout",
    "dns-servfail": "dns-srvfl",
    "dns-nxdomain": "dns-nxdom",
    "dns-failure": "dns-fail",
    "local-error": "local-err",
    "error": "error",
    "proxy-refused": "prx-refus",
    "proxy-timeout": "prx-tmout",
    "proxy-unreachable": "prx-unrch",
}
MODE_LABEL = {"syn": "syn", "connect": "conn", "proxy": "proxy"}
# the "last" cell of a DNS row whose EDNS answer was whole but a no-EDNS client's was not
NO_EDNS_SHORT = {"truncated-tcp-ok": "512:tc", "truncated-tcp-failed": "512:tc✖"}


def dns_health(st: Stats | Brief | None, reachable: bool = True) -> Health:
    return judge(st, DnsOutcome, reachable=reachable)


def egress_health(st: Stats | None, reachable: bool = True) -> Health:
    return judge(st, EgressOutcome, reachable=reachable)


def outcome_style(kind: type, value: str) -> str:
    """The colour of one result's outcome in a history list."""
    member = kind._value2member_map_.get(value)  # type: ignore[attr-defined]
    return STYLE[member.health] if member is not None else BAD


_AKS_NODE = re.compile(r"^aks-(?P<pool>[a-z0-9]+)-\d{8}-vmss(?P<id>[0-9a-z]{6})$")


def short_vantage(vantage: str, width: int = 12) -> str:
    """'node/aks-nodepool1-57993984-vmss000001' -> 'nodepool1/1' (pool / VMSS instance)."""
    name = vantage[5:] if vantage.startswith("node/") else vantage
    m = _AKS_NODE.match(name)
    if m:
        return f"{m.group('pool')}/{int(m.group('id'), 36)}"
    if len(name) <= width:
        return name
    keep = width - 1
    return name[: keep // 2] + "…" + name[len(name) - (keep - keep // 2) :]


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    if v < 10:
        return f"{v:.2f}"
    if v < 100:
        return f"{v:.1f}"
    if v < 10000:
        return f"{v:.0f}"
    return f"{v / 1000:.0f}s"


def spark_levels(recent: tuple[float | None, ...], width: int = SPARK_WIDTH) -> tuple[int, ...]:
    """0..7 per attempt on absolute thresholds (sub-ms … >200 ms); -1 for a lost query."""
    out = []
    for v in recent[-width:]:
        if v is None:
            out.append(-1)
        else:
            out.append(next((i for i, hi in enumerate(SPARK_MS) if v < hi), len(SPARK_MS)))
    return tuple(out)


_SPARK_CACHE: dict[tuple[int, ...], Text] = {}


def spark_text(levels: tuple[int, ...]) -> Text:
    """A steady row looks flat; × marks a lost query. Cached: rows repeat the same shapes."""
    t = _SPARK_CACHE.get(levels)
    if t is None:
        t = Text(no_wrap=True)
        for lv in levels:
            if lv < 0:
                t.append("×", style=BAD)
            else:
                t.append(SPARK[lv], style=OK if lv < 4 else WARN if lv < 6 else BAD)
        if len(_SPARK_CACHE) > 4096:
            _SPARK_CACHE.clear()
        _SPARK_CACHE[levels] = t
    return t


def sparkline(recent: tuple[float | None, ...], width: int = SPARK_WIDTH) -> Text:
    return spark_text(spark_levels(recent, width))


def success_pct(st: Stats) -> float:
    return 100.0 * st.successes / st.attempts if st.attempts else 0.0


def mode_cell(last: Any) -> Text:
    """'syn' / 'conn'; a connect that ran because SYN mode was refused is marked '*'."""
    mode = getattr(getattr(last, "mode", None), "value", "")
    if not mode:
        return Text("")
    label = MODE_LABEL.get(mode, mode[:4])
    if getattr(last, "fallback", ""):
        return Text(label + "*", style=WARN)
    return Text(label, style=DIM)
