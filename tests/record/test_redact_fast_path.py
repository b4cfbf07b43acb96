"""The recorder's redaction skips a string that holds none of its hints: the skip must
never let a credential through (every pattern applied to every string says the same)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.record import redact

PIECES = (
    "https://user:pass@host/x",
    "?token=abc",
    "&sig=xyz",
    "Bearer abcdefgh",
    "Basic dXNlcjpwYXNz",
    "eyJhbGciOi.eyJzdWIiOi.c2ln",
    "coredns/coredns-7d8f9",
    "node/aks-apps-1",
    " ",
    "@",
    "?",
    "&",
)


def everything(s: str) -> str:
    """Every pattern, on every string: what `text` must answer."""
    s = redact._USERINFO.sub(r"\1***@", s)
    s = redact._QUERY.sub(r"\1***", s)
    s = redact._BEARER.sub(r"\1 ***", s)
    return redact._JWT.sub("***", s)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=6))
def test_the_skip_loses_no_credential(parts):
    s = "".join(parts)
    assert redact.text(s) == everything(s)


def test_each_hint_reaches_its_pattern():
    for s, want in (
        ("https://u:p@h/", "https://***@h/"),
        ("x?token=1", "x?token=***"),
        ("x&key=1", "x&key=***"),
        ("Bearer abcdefgh", "Bearer ***"),
        ("basic abcdefgh", "basic ***"),
        ("a eyJabcd.efgh.ij b", "a *** b"),
    ):
        assert redact.text(s) == want
    assert redact.text("coredns/coredns-7d8f9") == "coredns/coredns-7d8f9"
