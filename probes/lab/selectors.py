"""Label and field selectors with the API server's grammar and error messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SelectorError", "parse_label_selector", "parse_field_selector", "FIELDS"]


class SelectorError(ValueError):
    """Bad selector: the server answers 400 BadRequest with this message."""


_NAME = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class _Req:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!exists":
            return self.key not in labels
        v = labels.get(self.key)
        if op in ("=", "in"):
            return v is not None and v in self.values
        if op in ("!=", "notin"):
            return v is None or v not in self.values
        if v is None:
            return False
        try:
            n = int(v)
        except ValueError:
            return False
        return n > int(self.values[0]) if op == "gt" else n < int(self.values[0])


def _split_top(s: str) -> list[str]:
    """Split on commas outside parentheses."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _check_key(k: str, full: str) -> str:
    if not k or not _NAME.fullmatch(k) or len(k.rpartition("/")[2]) > 63:
        raise SelectorError(
            f"unable to parse requirement: <nil>: Invalid value: {k!r}: name part must consist "
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )
    return k


def _check_value(v: str) -> str:
    if len(v) > 63 or not _VALUE.fullmatch(v):
        raise SelectorError(
            f"unable to parse requirement: values[0]: Invalid value: {v!r}: a valid label must "
            "be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character"
        )
    return v


_SET = re.compile(r"\s*(\S+?)\s+(in|notin)\s*\(([^()]*)\)\s*")
_CMP = re.compile(r"\s*([^\s=!<>]+)\s*(==|!=|=|>|<)\s*([^\s=!<>]*)\s*")


def parse_label_selector(s: str | None) -> Callable[[dict[str, str]], bool] | None:
    """-> predicate over a labels dict, or None for 'everything'."""
    if s is None or not s.strip():
        return None
    reqs: list[_Req] = []
    for part in _split_top(s):
        if not part.strip():
            raise SelectorError(f"found '', expected: identifier (selector {s!r})")
        m = _SET.fullmatch(part)
        if m:
            key = _check_key(m.group(1), s)
            vals = tuple(_check_value(v.strip()) for v in m.group(3).split(",")) if m.group(3).strip() else ()
            if not vals:
                raise SelectorError(
                    "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
                )
            reqs.append(_Req(key, m.group(2), vals))
            continue
        m = _CMP.fullmatch(part)
        if m:
            key = _check_key(m.group(1), s)
            op = {"==": "=", ">": "gt", "<": "lt"}.get(m.group(2), m.group(2))
            val = m.group(3)
            if op in ("gt", "lt") and not re.fullmatch(r"-?\d+", val):
                raise SelectorError(
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"
                )
            reqs.append(_Req(key, op, (_check_value(val),)))
            continue
        p = part.strip()
        if p.startswith("!"):
            reqs.append(_Req(_check_key(p[1:].strip(), s), "!exists"))
        elif re.fullmatch(r"\S+", p):
            reqs.append(_Req(_check_key(p, s), "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: found '{p}', expected: in, notin, =, ==, !=, gt, lt")
    if len(reqs) == 1:
        return reqs[0].matches
    return lambda labels: all(r.matches(labels) for r in reqs)


# Field selectors each resource supports (as the real API server's field label conversions).
FIELDS: dict[str, tuple[str, ...]] = {
    "nodes": ("metadata.name", "spec.unschedulable"),
    "namespaces": ("metadata.name", "status.phase"),
    "pods": (
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "services": ("metadata.name", "metadata.namespace"),
    "events": (
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
}


def field_value(obj: dict[str, Any], path: str) -> str:
    if path == "source":
        return (obj.get("source") or {}).get("component", "")
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return "false" if path in ("spec.unschedulable", "spec.hostNetwork") else ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(s: str | None, resource: str) -> Callable[[dict[str, Any]], bool] | None:
    """-> predicate over an object dict, or None for 'everything'."""
    if s is None or not s.strip():
        return None
    allowed = FIELDS.get(resource, ("metadata.name", "metadata.namespace"))
    terms: list[tuple[str, bool, str]] = []
    for part in s.split(","):
        m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*", part)
        if not m:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        key, op, val = m.groups()
        if key not in allowed:
            only = ", ".join(f'"{a}"' for a in allowed)
            raise SelectorError(f'"{key}" is not a known field selector: only {only}')
        terms.append((key, op != "!=", val))

    def pred(obj: dict[str, Any]) -> bool:
        for key, eq, val in terms:
            if (field_value(obj, key) == val) != eq:
                return False
        return True

    return pred
