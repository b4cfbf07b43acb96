"""Fuzz the HTTPS probe's parsers (Hypothesis): a chain of arbitrary bytes, a real chain
with bytes flipped, arbitrary host rows. Only outcomes come back, never an exception."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.ingress.certcheck import classify, host_matches, trusted_cas
from probes.ingress.httpsservice import plan_targets
from probes.ingress.tlsresult import TlsOutcome
from probes.lab.tls import LabCA
from tests.fuzz.strategies import FUZZ, SCALARS, json_like

FEW = {**FUZZ, "max_examples": 100}  # a chain verified, or nested rows built, per example: keep the suite's time

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
_ROOT = LabCA("fuzz root", not_before=NOW - 9 * DAY, not_after=NOW + 99 * DAY)
_LEAF = x509.load_pem_x509_certificate(
    _ROOT.issue("a.fuzz.test", sans=["a.fuzz.test"], not_before=NOW - DAY, not_after=NOW + 9 * DAY)[0]
).public_bytes(serialization.Encoding.DER)


def _cas(tmp_path_factory):
    p = tmp_path_factory.mktemp("fuzzca") / "root.pem"
    p.write_bytes(_ROOT.pem)
    return trusted_cas(str(p))


@settings(**FEW)
@given(chain=st.lists(st.binary(max_size=600), max_size=4), host=st.text(max_size=40))
def test_arbitrary_bytes_are_an_outcome(tmp_path_factory, chain, host):
    o, why, summary = classify(chain, host, _cas(tmp_path_factory), NOW.timestamp())
    assert isinstance(o, TlsOutcome) and isinstance(why, str) and len(summary) <= len(chain)


@settings(**FEW)
@given(flips=st.lists(st.tuples(st.integers(0, len(_LEAF) - 1), st.integers(1, 255)), min_size=1, max_size=4))
def test_a_damaged_certificate_is_an_outcome(tmp_path_factory, flips):
    b = bytearray(_LEAF)
    for i, x in flips:
        b[i] ^= x
    o, _, _ = classify([bytes(b)], "a.fuzz.test", _cas(tmp_path_factory), NOW.timestamp())
    assert isinstance(o, TlsOutcome)
    if o in (TlsOutcome.VALID, TlsOutcome.EXPIRING):  # only when what was signed, and the signature, survived
        c, orig = x509.load_der_x509_certificate(bytes(b)), x509.load_der_x509_certificate(_LEAF)
        assert (c.tbs_certificate_bytes, c.signature) == (orig.tbs_certificate_bytes, orig.signature)


@settings(**FEW)
@given(rows=st.lists(json_like(scalars=SCALARS, leaves=4) | st.tuples(st.text(max_size=20), SCALARS, SCALARS)))
def test_arbitrary_rows_are_kept_or_left_out(rows):
    targets, left = plan_targets(rows, confine=True)
    assert len(targets) + len(left) <= len(rows)
    assert all(t.address.startswith("127.") or t.address == "::1" for t in targets)


@settings(**FUZZ)
@given(sans=st.lists(st.text(max_size=30), max_size=5), host=st.text(max_size=30))
def test_host_matching_never_raises(sans, host):
    assert host_matches(sans, host) in (True, False)


def test_a_damaged_name_is_an_outcome_not_a_typeerror(tmp_path_factory):
    """Found by the fuzzer: one flipped bit in the issuer makes cryptography raise TypeError
    ("oid must be X500_UNIQUE_IDENTIFIER for BitString type") when the name is read."""
    b = bytearray(_LEAF)
    b[108] ^= 1
    o, why, _ = classify([bytes(b)], "a.fuzz.test", _cas(tmp_path_factory), NOW.timestamp())
    assert o is TlsOutcome.TLS_ERROR and "could not be read" in why
