"""The ingress path's channels of a recording, beside the codec's (probes/record/codec.py):

- ``ingress``: the API objects the Ingress tab joins (IngressData), written when the store
  filed a new collection;
- ``ingress.answers``: what the hosts resolved to, per vantage.

The HTTPS probe's rows travel as the codec's ``h\\t<key>`` probe rows. Replay rebuilds the
IngressView from these with the replayed topology, as the publisher built it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from probes.ingress.model import HostAnswer, IngressData
from probes.ingress.view import IngressView, build_view, region_of
from probes.record import redact

DATA, ANSWERS = "ingress", "ingress.answers"


def _b(obj: Any) -> Any:
    return msgspec.to_builtins(obj, enc_hook=repr)


def answers_of(view: IngressView) -> list[Any]:
    seen: dict[tuple[str, str], Any] = {}
    for row in view.host_rows():
        for a in row.answers:
            seen.setdefault((a.vantage, a.host), a)
    return [_b(seen[k]) for k in sorted(seen)]


def channels(view: IngressView | None, old: IngressView | None) -> list[tuple[str, Any]]:
    """(channel, value) of what moved since `old` (None: remove the channel)."""
    if view is None:
        return [(DATA, None), (ANSWERS, None)] if old is not None else []
    out: list[tuple[str, Any]] = []
    if old is None or view.data is not old.data:
        out.append((DATA, redact.scrub(_b(view.data))))
    if old is None or view.groups is not old.groups:
        out.append((ANSWERS, answers_of(view)))
    return out


def _answers(v: Any) -> Mapping[tuple[str, str], HostAnswer]:
    out = {}
    for x in v or ():
        try:
            a = msgspec.convert(x, HostAnswer)
        except (msgspec.ValidationError, TypeError):
            continue
        out[(a.vantage, a.host)] = a
    return MappingProxyType(out)


def _data(v: Any) -> IngressData | None:
    try:
        return msgspec.convert(v, IngressData)
    except (msgspec.ValidationError, TypeError):
        return None


def thaw(
    state: Mapping[str, Any],
    get: Callable[[Mapping[str, Any], str, Callable[[Any], Any]], Any],
    topology: Any,
    prev: IngressView | None,
    memo: list[Any],
) -> IngressView | None:
    """The IngressView of a state (`get`: the Thawer's cached decode; `memo`: this
    function's [data, answers, topology, view], the same view while they are the same)."""
    data = get(state, DATA, _data)
    if data is None:
        return None
    answers = get(state, ANSWERS, _answers)
    if memo and memo[0] is data and memo[1] is answers and memo[2] is topology:
        view: IngressView = memo[3]
        return view
    view = build_view(
        data,
        answers,
        nodes=len(topology.nodes),
        region=region_of(n.zone for n in topology.nodes),
        events=topology.service_events,
        prev=prev,
    )
    memo[:] = [data, answers, topology, view]
    return view


__all__ = ["ANSWERS", "DATA", "answers_of", "channels", "thaw"]
