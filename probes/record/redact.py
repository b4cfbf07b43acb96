"""Credentials never reach a recording or a bundle: URLs lose user:password@ and token
query parameters, bearer tokens and JWTs are masked. Cheap on strings that cannot hold one."""

from __future__ import annotations

import re
from typing import Any

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_QUERY = re.compile(
    r"(?i)([?&;](?:access_token|token|sig|signature|code|key|secret|password|client_secret|se|sp|sv|skoid)=)[^&#\s]*"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_HINTS = ("@", "?", "&", "earer", "asic", "eyJ")


def text(s: str) -> str:
    """`s` without credentials."""
    if not any(h in s for h in _HINTS):
        return s
    s = _USERINFO.sub(r"\1***@", s)
    s = _QUERY.sub(r"\1***", s)
    s = _BEARER.sub(r"\1 ***", s)
    return _JWT.sub("***", s)


def scrub(obj: Any) -> Any:
    """Every string in a tree of builtins (dicts, lists, tuples), redacted."""
    if isinstance(obj, str):
        return text(obj)
    if isinstance(obj, dict):
        return {k: scrub(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    return obj
