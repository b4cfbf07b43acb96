"""DNS and egress rows to the recorder's channels (``d\\t<key>`` / ``e\\t<key>``, the
layout `probes.record.codec.decode_stats` reads) for a live socket.

The recorder writes a row at most every `stats_every` seconds and scrubs every string of
it (it goes to disk and into bundles); a viewer wants every changed row at once, at 1,000
nodes ~1,700 rows a second. Here a row is converted by msgspec in C and only its free
text (errors and raw answers) goes through `probes.record.redact`: the rest are our own
identifiers (vantage, resolver, name, target, addresses), which hold no credential.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import msgspec

from probes.dns.result import DnsResult
from probes.egress.result import EgressResult
from probes.engine.frame import ProbeView
from probes.engine.history import Stats
from probes.record import redact
from probes.record.codec import DNS, EGRESS, RAW_MAX, key_text, plan_row
from probes.record.codec import _lat as _lat  # the codec's latency units (10 µs), one definition

_FREE_TEXT = ("error", "raw")


def live_row(st: Stats) -> list[Any]:
    """`st` as `probes.record.codec.stats_row` lays out a full row (keep 0, times from
    epoch 0, the last result whole), with only its free text redacted: the codec's scrub
    of every field cost ~58 ms a frame at 1,000 nodes."""
    last = st.last
    lastv: Any = None
    if isinstance(last, (DnsResult, EgressResult)):
        body = msgspec.to_builtins(last, enc_hook=repr)
        for f in _FREE_TEXT:
            v = body.get(f)
            if v:
                body[f] = redact.text(v[:RAW_MAX] if f == "raw" else v)
        if isinstance(body.get("latency_ms"), float):
            body["latency_ms"] = round(body["latency_ms"], 2)  # as the codec keeps it
        body[""] = 0 if isinstance(last, DnsResult) else 1  # the class, as the codec marks it
        lastv = body
    return [
        st.count,
        st.attempts,
        st.successes,
        _lat(st.p50),
        _lat(st.p95),
        _lat(st.p99),
        round(st.loss_pct * 100),
        st.last_outcome,
        redact.text(st.last_error) if st.last_error else "",
        redact.text(st.last_raw[:RAW_MAX]) if st.last_raw else "",
        round(st.last_ts * 1000),
        0,
        [_lat(x) for x in st.recent],
        lastv,
        st.version,
    ]


class ProbeRows:
    """Follows the frames' DNS and egress views; writes each changed row's channel into
    the state and the frame's change (a row whose key is gone is removed)."""

    def __init__(self) -> None:
        self._prev: dict[str, ProbeView | None] = {"dns": None, "egress": None}
        self._chan: dict[tuple[str, Hashable], str] = {}

    def channel(self, prefix: str, key: Hashable) -> str:
        c = self._chan.get((prefix, key))
        if c is None:
            c = self._chan[(prefix, key)] = prefix + key_text(key)
        return c

    def step(self, state: dict[str, Any], changes: dict[str, Any], name: str, view: ProbeView | None) -> None:
        old = self._prev[name]
        if view is None or view is old:
            return
        prefix = DNS if name == "dns" else EGRESS
        if old is None or view.plan is not old.plan or view.error != old.error:
            row = plan_row(view)
            if state.get(name + ".plan") != row:
                state[name + ".plan"] = changes[name + ".plan"] = row
        keys: Any
        if old is not None and view.since == old.version and view.since != -1:
            keys = view.changed
        elif old is not None:  # a frame was skipped, or the history was read again from scratch
            keys = [k for k, st in view.stats.items() if old.stats.get(k) is not st]
            for k in old.stats:
                if k not in view.stats:
                    chan = self.channel(prefix, k)
                    if state.pop(chan, None) is not None:
                        changes[chan] = None
        else:
            keys = view.stats.keys()
        stats = view.stats
        for k in keys:
            st = stats.get(k)
            if st is not None:
                chan = self.channel(prefix, k)
                state[chan] = changes[chan] = live_row(st)
        self._prev[name] = view
