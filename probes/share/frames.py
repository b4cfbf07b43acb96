"""The viewer's frames, rebuilt from the owner's channels as they arrive.

`probes.record.codec.Thawer` rebuilds a frame from a whole state, reading every channel:
right for a seek in a recording, too slow at 4 frames a second for a thousand nodes' 11,000
probe rows. Here the probe rows (``d\\t…`` / ``e\\t…``) are kept apart, decoded only when
they changed since the last frame, and their views are one copy of a dict; everything else
(the topology, agents, SNAT, routes, findings: a few thousand channels at most, cached by
the Thawer) goes through the Thawer as in replay.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from probes.dns.result import DnsResult, ProbeKey
from probes.egress.result import EgressKey, EgressResult
from probes.engine.frame import EMPTY, Frame, ProbeView
from probes.engine.history import Stats
from probes.record.codec import DNS, EGRESS, KEEP, Thawer, apply, decode_stats, unpatch_row
from probes.share.host import DETAILS


class _Rows:
    """One probe's rows: raw as received, decoded when a frame is built."""

    def __init__(self, prefix: str, key_t: Any) -> None:
        self.prefix = prefix
        self.key_t = key_t
        self.raw: dict[str, Any] = {}
        self.dirty: set[str] = set()
        self.stats: dict[Hashable, Stats] = {}
        self.keys: dict[str, Hashable] = {}
        self.view: ProbeView | None = None
        self.version = 0

    def key(self, chan: str) -> Hashable:
        k = self.keys.get(chan)
        if k is None:
            k = self.keys[chan] = self.key_t(*json.loads(chan[len(self.prefix) :]))
        return k

    def put(self, chan: str, value: Any) -> None:
        if value is None:
            self.raw.pop(chan, None)
        elif isinstance(value, list) and len(value) > KEEP and value[KEEP]:
            self.raw[chan] = unpatch_row(self.raw.get(chan), value)  # a patch on the row held
        else:
            self.raw[chan] = value
        self.dirty.add(chan)

    def build(self, base: ProbeView | None, details: Mapping[Hashable, tuple[Any, ...]]) -> ProbeView | None:
        """The view: the Thawer's (plan, error) with these rows' stats and the followed
        rows' last results."""
        if base is None:
            return None
        old = self.view
        changed = []
        for chan in self.dirty:
            k = self.key(chan)
            v = self.raw.get(chan)
            if v is None:
                self.stats.pop(k, None)
            else:
                try:
                    self.stats[k] = decode_stats(v)
                except (IndexError, TypeError, ValueError, KeyError):
                    continue  # a row this version cannot read: left out
            changed.append(k)
        self.dirty.clear()
        if (
            old is not None
            and not changed
            and old.plan is base.plan
            and old.error == base.error
            and old.details is details
        ):
            return old
        self.version += 1
        gone = any(k not in self.stats for k in changed)
        since = old.version if old is not None and not gone else -1
        self.view = ProbeView(
            plan=base.plan,
            stats=MappingProxyType(dict(self.stats)),
            changed=frozenset(changed if since != -1 else self.stats),
            since=since,
            version=self.version,
            error=base.error,
            details=details,
        )
        return self.view


class LiveFrames:
    def __init__(self) -> None:
        self.base: dict[str, Any] = {}  # every channel but the probe rows
        self._rows = {DNS: _Rows(DNS, ProbeKey), EGRESS: _Rows(EGRESS, EgressKey)}
        self._thawer = Thawer()
        self._out: tuple[Frame | None, Any, Any, Frame | None] = (None, None, None, None)
        self._details_cache: dict[str, tuple[Any, Mapping[Hashable, tuple[Any, ...]]]] = {}

    def reset(self, state: Mapping[str, Any]) -> None:
        """The owner's whole state (a keyframe): everything is read again."""
        self.base = {}
        self._rows = {DNS: _Rows(DNS, ProbeKey), EGRESS: _Rows(EGRESS, EgressKey)}
        self._thawer = Thawer()
        self._out = (None, None, None, None)
        self._details_cache = {}
        self.apply(state)

    def apply(self, channels: Mapping[str, Any]) -> None:
        """One message's channels: probe rows to their rows, the rest onto the state as the
        recorder's reader applies a delta (`probes.record.codec.apply`: a SNAT node's row
        that carries only its new minutes is resolved against the row held)."""
        rows = self._rows
        rest = {}
        for name, value in channels.items():
            r = rows.get(name[:2])
            if r is not None:
                r.put(name, value)
            else:
                rest[name] = value
        if rest:
            try:
                apply(self.base, rest)
            except (TypeError, IndexError, KeyError):  # a row this version cannot read: kept as it came
                for name, value in rest.items():
                    if value is None:
                        self.base.pop(name, None)
                    else:
                        self.base[name] = value

    def _details(self, kind: str) -> Mapping[Hashable, tuple[Any, ...]]:
        raw = self.base.get(DETAILS + kind)
        hit = self._details_cache.get(kind)
        if hit is not None and hit[0] is raw:
            return hit[1]
        out: Mapping[Hashable, tuple[Any, ...]] = EMPTY
        if raw:
            rows = self._rows[DNS if kind == "dns" else EGRESS]
            typ = DnsResult if kind == "dns" else EgressResult
            got = {}
            for text, results in raw.items():
                try:
                    got[rows.key(rows.prefix + text)] = tuple(msgspec.convert(r, typ) for r in results)
                except (msgspec.ValidationError, TypeError, ValueError):
                    continue
            out = MappingProxyType(got)
        self._details_cache[kind] = (raw, out)
        return out

    def frame(self, at: float) -> Frame:
        f = self._thawer.frame(self.base, at)
        dns = self._rows[DNS].build(f.dns, self._details("dns"))
        egress = self._rows[EGRESS].build(f.egress, self._details("egress"))
        base, d, e, out = self._out
        if out is not None and base is f and d is dns and e is egress:
            return out
        out = dataclasses.replace(f, dns=dns, egress=egress)
        self._out = (f, dns, egress, out)
        return out
