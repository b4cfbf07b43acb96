"""Credentials out of every URL the user sees: one function for the header, `check`'s table
and JSON, error messages and log lines.

``https://user:password@host`` becomes ``https://user:***@host`` (a lone ``token@`` becomes
``***@``: a user name in a URL is often the secret itself), and the values of query or
fragment parameters that carry secrets (``sig``, ``token``, ``code``, ``access_token``,
``client_secret``, ``password``, …) become ``***``. Pure string work: it never raises,
whatever the text (a URL that ``urllib.parse`` refuses is still redacted), and redacting
twice changes nothing.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "SECRET_PARAMS", "redact_text", "redact_url"]

MASK = "***"
# query/fragment parameters whose value is a credential: SAS signatures (sig), bearer and
# OAuth tokens, authorization codes, client secrets, API keys
SECRET_PARAMS = frozenset(
    {
        "sig",
        "signature",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "code",
        "client_secret",
        "password",
        "passwd",
        "pwd",
        "secret",
        "api_key",
        "api-key",
        "apikey",
        "key",
        "auth",
        "x-amz-signature",
        "x-goog-signature",
    }
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"<>`]+")
_PARAM = re.compile(r"(?P<sep>^|[?&;#])(?P<name>[^=&;#?]+)=(?P<value>[^&;#]*)")
# a secret parameter of a URL without its scheme (urllib3 logs "/api?token=…"): in any text
_LOOSE = re.compile(r"(?P<sep>[?&;#])(?P<name>[A-Za-z0-9_.-]+)=(?P<value>[^&;#\s\"'<>`)]*)")


def _params(part: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group("name").strip().lower() in SECRET_PARAMS and m.group("value") not in ("", MASK):
            return f"{m.group('sep')}{m.group('name')}={MASK}"
        return m.group(0)

    return _PARAM.sub(one, part)


def redact_url(url: str) -> str:
    """`url` with its credentials replaced by ``***`` (userinfo and secret parameters)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _params(url) if ("?" in url or "#" in url) else url
    end = len(rest)
    for c in "/?#":
        i = rest.find(c)
        if i != -1:
            end = min(end, i)
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        userinfo = f"{user}:{MASK}" if colon and user else MASK
        authority = f"{userinfo}@{host}"
    q = min((i for i in (tail.find("?"), tail.find("#")) if i != -1), default=-1)
    if q != -1:
        tail = tail[:q] + _params(tail[q:])
    return f"{scheme}://{authority}{tail}"


def redact_text(text: str) -> str:
    """Every URL in `text` (a message, a log line) redacted, and any secret parameter of a
    URL quoted without its scheme (``/api?token=…``); the rest unchanged."""
    if "://" in text:
        text = _URL.sub(_one_url, text)
    if "=" in text:
        text = _LOOSE.sub(_one_param, text)
    return text


def _one_param(m: re.Match[str]) -> str:
    value = m.group("value")
    core = value.rstrip(".,:!?]}'")  # the sentence's punctuation stays
    if m.group("name").lower() in SECRET_PARAMS and core not in ("", MASK):
        return f"{m.group('sep')}{m.group('name')}={MASK}{value[len(core) :]}"
    return m.group(0)


def _one_url(m: re.Match[str]) -> str:
    url = m.group(0)
    cut = len(url.rstrip(".,;:!?)]}'"))  # the sentence's punctuation (or quote) is not the URL's
    return redact_url(url[:cut]) + url[cut:]
