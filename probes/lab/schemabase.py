"""Typed structs for the scenario format (msgspec) with the lab's one-line, key-path errors.

Every section of a scenario file is a :class:`Doc` (a ``msgspec.Struct`` that rejects
unknown keys); :func:`convert` decodes YAML-loaded data into it with ``msgspec.convert``
and turns msgspec's ``Expected `int`, got `str` - at `$.pools[1].count``` into the message
a user reads: ``healthy.yaml: pools[1].count: expected a non-negative integer, got 'x'``.

The wording lives next to the type, in ``msgspec.Meta(extra=...)`` of a field (see
:func:`M`) and in ClassVars of a struct (``unknown_key``, ``not_mapping``), so that one
format has one description: the JSON Schema (docs/scenario.schema.json) is generated from
the same structs. Checks that need more than one key (a CIDR inside another, durations,
patterns on numbers-as-strings) stay in the builders that turn a Doc into the lab's records.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, ClassVar

import msgspec
import msgspec.inspect as mi

__all__ = ["Doc", "M", "ScenarioError", "UNSET", "UnsetType", "convert", "parse_duration", "show"]

UNSET = msgspec.UNSET
UnsetType = msgspec.UnsetType


def show(v: Any) -> str:
    """A value as messages quote it: repr, cut at 60 characters."""
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() splits on


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid. The message names file and key,
    on one line (a key or value with a line break in it is shown escaped)."""

    def __init__(self, message: str = "") -> None:
        if any(c in message for c in _BREAKS):
            message = "".join(repr(c)[1:-1] if c in _BREAKS else c for c in message)
        super().__init__(message)


_DUR = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


MAX_DURATION = 3650 * 86400.0  # ten years: an age, a delay or a ramp beyond it is a typo (and no timestamp)


def parse_duration(v: Any) -> float:
    """'30s', '5m', '1h30m', '2d' or a number of seconds -> seconds, from 0 to ten years
    (ValueError outside: 18446744073709551615 would be no date the lab can write)."""
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, (int, float)):
        seconds = float(v) if not isinstance(v, int) or abs(v) <= MAX_DURATION else math.inf
    else:
        if not isinstance(v, str) or not v.strip():
            raise ValueError(v)
        m = _DUR.fullmatch(v.strip())
        if not m or not any(m.groups()):
            raise ValueError(v)
        d, h, mins, s = (float(x) if x else 0.0 for x in m.groups())
        seconds = d * 86400 + h * 3600 + mins * 60 + s
    if not 0 <= seconds <= MAX_DURATION:  # also NaN
        raise ValueError(v)
    return seconds


class Doc(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A mapping of the scenario file. ClassVars word its errors (``{allowed}``: its keys)."""

    unknown_key: ClassVar[str] = "unknown key (allowed: {allowed})"
    unknown_key_here: ClassVar[bool] = False  # report at the mapping, not at the key
    not_mapping: ClassVar[str] = "expected a mapping, got {got}"


def M(
    expected: str | None = None,
    *,
    error: str | None = None,
    missing: str | None = None,
    description: str | None = None,
    **constraints: Any,
) -> msgspec.Meta:
    """The ``msgspec.Meta`` of a field, with its error wording: ``Annotated[int, M("a port")]``.

    ``expected`` gives "expected <expected>, got <value>"; ``error`` is the whole message, a
    str.format template ({got}: the value as shown, {type}: its type name; literal braces
    doubled); ``missing`` replaces "required key is missing". ``constraints`` are Meta's
    (ge, le, pattern, extra_json_schema...).
    """
    extra = {k: v for k, v in (("expected", expected), ("error", error), ("missing", missing)) if v}
    return msgspec.Meta(description=description, extra=extra or None, **constraints)


# --------------------------------------------------------------------------- errors

_AT = re.compile(r"^(?P<msg>.*?)(?: - at (?P<key>`key` in )?`(?P<path>\$[^`]*)`)?$", re.S)
_SEG = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<f>[^`]*)`")
_MISSING = re.compile(r"Object missing required field `(?P<f>[^`]*)`")


def _unwrap(t: Any) -> tuple[Any, dict[str, Any]]:
    extra: dict[str, Any] = {}
    while isinstance(t, mi.Metadata):
        extra = {**(t.extra or {}), **extra}
        t = t.type
    return t, extra


def _pick(t: Any, value: Any) -> Any:
    """The member of a union that ``value`` is decoded as (a mapping: the struct or dict)."""
    t, _ = _unwrap(t)
    if not isinstance(t, mi.UnionType):
        return t
    members = [_unwrap(m)[0] for m in t.types]
    if isinstance(value, dict):
        structs = [m for m in members if isinstance(m, mi.StructType)]
        tagged = [m for m in structs if m.tag_field is not None and value.get(m.tag_field) == m.tag]
        candidates: list[Any] = tagged or structs or [m for m in members if isinstance(m, mi.DictType)]
        for m in candidates:
            return m
    if isinstance(value, list):
        for m in members:
            if isinstance(m, (mi.ListType, mi.TupleType, mi.VarTupleType)):
                return m
    return t


def _doc(st: mi.StructType) -> Any:
    """The struct class (a :class:`Doc`, whose ClassVars word the errors)."""
    return st.cls


def _field(st: mi.StructType, encode_name: str) -> mi.Field | None:
    return _fields(st.cls).get(encode_name)


@functools.cache
def _fields(cls: type) -> dict[str, mi.Field]:
    return {f.encode_name: f for f in _info(cls).fields}


def _translate(e: msgspec.ValidationError, data: Any, info: Any, prefix: str) -> tuple[str, str]:
    """(key path, message) for a msgspec error on ``data`` decoded as type info ``info``."""
    m = _AT.match(str(e))
    assert m is not None
    msg, path = m.group("msg"), m.group("path") or "$"
    parts: list[str] = []
    t: Any = info
    extra: dict[str, Any] = {}
    value = data
    for name, index in _SEG.findall(path[1:]):
        union, _ = _unwrap(t)
        t = _pick(t, value)
        if name and isinstance(t, mi.StructType) and name == t.tag_field:  # no such kind of item
            members: Any = union.types if isinstance(union, mi.UnionType) else (t,)
            tags = [m.tag for m in members]
            value = value.get(name) if isinstance(value, dict) else None
            t, extra = mi.StrType(), {"expected": f"one of {', '.join(map(str, tags))}"}
            parts.append(f".{name}")
        elif name:
            f = _field(t, name) if isinstance(t, mi.StructType) else None
            t, extra = _unwrap(f.type) if f is not None else (t, {})
            value = value.get(name) if isinstance(value, dict) else None
            parts.append(f".{name}")
        elif index == "...":  # msgspec does not say which key of a mapping: find it
            vt = t.value_type if isinstance(t, mi.DictType) else Any
            key = next((k for k, v in (value or {}).items() if _bad(v, vt)), None)
            t, extra = _unwrap(vt)
            value = value.get(key) if isinstance(value, dict) else None
            parts.append(f".{key}")
        else:
            t = t.item_type if isinstance(t, (mi.ListType, mi.VarTupleType)) else t
            t, extra = _unwrap(t)
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            parts.append(f"[{index}]")
    where = (prefix + "".join(parts)).lstrip(".")
    t = _pick(t, value)

    def at(sub: str) -> str:
        return f"{where}.{sub}" if where else sub

    if m.group("key"):  # a mapping's key has the wrong type
        if isinstance(t, mi.StructType) and isinstance(value, dict):  # a key no struct has
            bad = next(k for k in value if not isinstance(k, str))
            allowed = ", ".join(sorted([f.encode_name for f in t.fields] + ([t.tag_field] if t.tag_field else [])))
            return at(str(bad)), _doc(t).unknown_key.format(allowed=allowed)
        return where, _expected(extra, value) or f"expected a mapping with string keys, got {show(value)}"
    if (u := _UNKNOWN.match(msg)) and isinstance(t, mi.StructType):
        cls = _doc(t)
        allowed = ", ".join(sorted([f.encode_name for f in t.fields] + ([t.tag_field] if t.tag_field else [])))
        text = cls.unknown_key.format(allowed=allowed)
        return (where, text) if cls.unknown_key_here else (at(u.group("f")), text)
    if (u := _MISSING.match(msg)) and isinstance(t, mi.StructType):
        f = _field(t, u.group("f"))
        _, fextra = _unwrap(f.type) if f is not None else (None, {})
        return at(u.group("f")), fextra.get("missing", "required key is missing")
    if (text := _expected(extra, value)) is not None:
        return where, text
    if isinstance(t, mi.StructType) and not isinstance(value, dict):
        return where, _doc(t).not_mapping.format(got=show(value), type=type(value).__name__)
    if isinstance(t, (mi.ListType, mi.VarTupleType)) and not isinstance(value, list):
        return where, f"expected a list, got {show(value)}"
    return where, msg[:1].lower() + msg[1:].replace("`", "")


def _bad(value: Any, t: Any) -> bool:
    """Whether ``value`` fails as type info ``t`` (used to find the failing key of a mapping)."""
    cls = _python_type(t)
    if cls is None:
        return False
    try:
        msgspec.convert(value, cls)
    except msgspec.ValidationError:
        return True
    return False


def _python_type(t: Any) -> Any:
    t, _ = _unwrap(t)
    if isinstance(t, mi.StructType):
        return t.cls
    if isinstance(t, mi.UnionType):
        members = [_python_type(m) for m in t.types]
        if any(m is None for m in members):
            return None
        out = members[0]
        for m in members[1:]:
            out = out | m
        return out
    if isinstance(t, mi.DictType):
        k, v = _python_type(t.key_type), _python_type(t.value_type)
        return None if k is None or v is None else dict[k, v]  # type: ignore[valid-type]
    if isinstance(t, (mi.ListType, mi.VarTupleType)):
        i = _python_type(t.item_type)
        return None if i is None else list[i]  # type: ignore[valid-type]
    simple: dict[Any, Any] = {
        mi.StrType: str,
        mi.IntType: int,
        mi.FloatType: float,
        mi.BoolType: bool,
        mi.NoneType: type(None),
        mi.AnyType: Any,
    }
    return simple.get(type(t))


def _expected(extra: dict[str, Any], value: Any) -> str | None:
    if "error" in extra:
        return extra["error"].format(got=show(value), type=type(value).__name__)
    if "expected" in extra:
        return f"expected {extra['expected']}, got {show(value)}"
    return None


def _strip_nulls(value: Any, t: Any) -> Any:
    """``key: null`` in a mapping of the format means "the default", as YAML users expect."""
    if not isinstance(value, (dict, list)):
        return value
    t = _pick(t, value)
    if isinstance(t, mi.StructType) and isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if v is None:
                continue
            f = _field(t, k) if isinstance(k, str) else None
            out[k] = _strip_nulls(v, f.type) if f is not None else v
        return out
    if isinstance(t, mi.DictType) and isinstance(value, dict):
        return {k: _strip_nulls(v, t.value_type) for k, v in value.items()}
    if isinstance(t, (mi.ListType, mi.VarTupleType)) and isinstance(value, list):
        return [_strip_nulls(v, t.item_type) for v in value]
    return value


@functools.cache
def _info(root: type) -> Any:
    return mi.type_info(root)


def convert(data: Any, root: type, file: str, prefix: str = "", error: type[Exception] = ValueError) -> Any:
    """Decode ``data`` as ``root``; a failure is ``error("<file>: <key path>: <message>")``.

    ``prefix`` is the key path of ``data`` in the file (``dns`` for the dns section).
    """
    try:
        return msgspec.convert(data, root, strict=True)
    except msgspec.ValidationError:
        pass
    # the slow path, only for documents msgspec refused: `key: null` means the default,
    # then the first problem is said in the lab's words
    info = _info(root)
    data = _strip_nulls(data, info)
    try:
        return msgspec.convert(data, root, strict=True)
    except msgspec.ValidationError as e:
        where, msg = _translate(e, data, info, "." + prefix if prefix else "")
        raise error(f"{file}: {where}: {msg}" if where else f"{file}: {msg}") from None
