"""DefaultAzureCredential's 15-line "Attempted credentials" report as one line.

azure-identity raises (and logs at WARNING) a message listing every credential it tried,
each with its reason and a troubleshooting link. The user needs one line: which sources
were tried and why each failed (``tried EnvironmentCredential: environment variables are
not fully configured; AzureCliCredential: Azure CLI not found on path``). Pure text work;
never raises.
"""

from __future__ import annotations

import re

__all__ = ["summarize"]

_ENTRY = re.compile(r"^\t(?P<name>[A-Za-z][\w.]*): ?(?P<why>.*)$")


def _reason(name: str, why: str) -> str:
    why = re.sub(rf"^{re.escape(name)} authentication unavailable\.?\s*", "", why.strip())
    why = re.sub(r"\s*(Visit|To mitigate) https?://\S+.*$", "", why)
    first = re.split(r"(?<=\.)\s", why, maxsplit=1)[0].rstrip(".").strip()
    return (first[:1].lower() + first[1:])[:120] or "unavailable"


def summarize(text: str, limit: int = 400) -> str:
    """ "tried A: why; B: why" from a credential chain's error text, or its first line
    (cut to `limit`) when it lists no attempts."""
    lines = text.splitlines()
    tried = []
    for line in lines:
        m = _ENTRY.match(line)
        if m:
            tried.append(f"{m.group('name')}: {_reason(m.group('name'), m.group('why'))}")
        elif tried and line.startswith("To mitigate"):
            break
    if tried:
        out = "tried " + "; ".join(tried)
    else:
        out = next((ln.strip() for ln in lines if ln.strip()), "")
    return out if len(out) <= limit else out[: limit - 1] + "…"
