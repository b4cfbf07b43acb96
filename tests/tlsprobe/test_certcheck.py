"""The certificate verdict without a network: chains made here, judged at chosen moments."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from probes.ingress.certcheck import classify, host_matches, parse_cert, trusted_cas
from probes.ingress.tlsresult import TlsOutcome
from probes.lab.tls import LabCA, self_signed

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
T = NOW.timestamp()


def der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = LabCA("test root", not_before=NOW - 400 * DAY, not_after=NOW + 3000 * DAY)
    issuing = LabCA("test issuing", not_before=NOW - 300 * DAY, not_after=NOW + 900 * DAY, parent=root)
    bundle = tmp_path_factory.mktemp("ca") / "root.pem"
    bundle.write_bytes(root.pem)
    return root, issuing, trusted_cas(str(bundle))


def leaf(issuing: LabCA, *sans: str, start=NOW - DAY, end=NOW + 90 * DAY) -> list[bytes]:
    cert, _ = issuing.issue(sans[0] if sans else "no-san", sans=sans, not_before=start, not_after=end)
    return [der(cert), der(issuing.pem)]


@pytest.mark.parametrize(
    ("sans", "host", "ok"),
    [
        (["shop.example.com"], "shop.example.com", True),
        (["Shop.Example.COM"], "shop.example.com.", True),
        (["*.example.com"], "shop.example.com", True),
        (["*.example.com"], "a.b.example.com", False),  # one label only
        (["*.example.com"], "example.com", False),  # not the apex
        (["*.com"], "example.com", False),  # not a whole TLD
        (["a.*.example.com"], "a.b.example.com", False),  # leftmost label only
        (["shop.example.com"], "shop.example.org", False),
        (["10.0.0.5"], "10.0.0.5", True),
        (["shop.example.com"], "10.0.0.5", False),
        (["10.0.0.5"], "10.0.0.6", False),
        ([], "shop.example.com", False),
    ],
)
def test_host_matches(sans, host, ok):
    assert host_matches(sans, host) is ok


def test_valid_then_expiring_then_expired_as_time_passes(pki):
    _, issuing, cas = pki
    chain = leaf(issuing, "shop.example.com")
    assert classify(chain, "shop.example.com", cas, T)[0] is TlsOutcome.VALID
    o, why, summary = classify(chain, "shop.example.com", cas, T + 80 * 86400)
    assert o is TlsOutcome.EXPIRING and "expires in 10.0 days" in why
    assert classify(chain, "shop.example.com", cas, T + 80 * 86400, expiring_days=7)[0] is TlsOutcome.VALID
    o, why, _ = classify(chain, "shop.example.com", cas, T + 91 * 86400)
    assert o is TlsOutcome.EXPIRED and "expired 1.0 days ago" in why
    o, why, _ = classify(chain, "shop.example.com", cas, T - 2 * 86400)
    assert o is TlsOutcome.NOT_YET_VALID and "not valid before" in why
    assert [s.subject_cn for s in summary] == ["shop.example.com", "test issuing"]


def test_wildcard_and_ip_certificates_verify(pki):
    _, issuing, cas = pki
    assert classify(leaf(issuing, "*.apps.example.com"), "a.apps.example.com", cas, T)[0] is TlsOutcome.VALID
    assert classify(leaf(issuing, "*.apps.example.com"), "apps.example.com", cas, T)[0] is TlsOutcome.WRONG_HOST
    assert classify(leaf(issuing, "20.1.2.3"), "20.1.2.3", cas, T)[0] is TlsOutcome.VALID


def test_no_subject_alt_name_is_the_wrong_host(pki):
    _, issuing, cas = pki
    o, why, _ = classify(leaf(issuing), "no-san", cas, T)
    assert o is TlsOutcome.WRONG_HOST and "no subjectAltName" in why


def test_missing_intermediate(pki):
    _, issuing, cas = pki
    only_leaf = leaf(issuing, "shop.example.com")[:1]
    o, why, _ = classify(only_leaf, "shop.example.com", cas, T)
    assert o is TlsOutcome.UNTRUSTED
    assert "issued by test issuing" in why and "does not send its intermediate" in why


def test_expired_intermediate(pki):
    root, _, cas = pki
    stale = LabCA("stale issuing", not_before=NOW - 300 * DAY, not_after=NOW - DAY, parent=root)
    cert, _ = stale.issue(
        "shop.example.com", sans=["shop.example.com"], not_before=NOW - 2 * DAY, not_after=NOW + 90 * DAY
    )
    o, why, _ = classify([der(cert), der(stale.pem)], "shop.example.com", cas, T)
    assert o is TlsOutcome.UNTRUSTED and "expired intermediate" in why


def test_private_root_sent_by_the_server(pki):
    _, _, cas = pki
    other = LabCA("corp root", not_before=NOW - 10 * DAY, not_after=NOW + 900 * DAY)
    cert, _ = other.issue("shop.example.com", sans=["shop.example.com"], not_before=NOW - DAY, not_after=NOW + 9 * DAY)
    o, why, _ = classify([der(cert), der(other.pem)], "shop.example.com", cas, T)
    assert o is TlsOutcome.UNTRUSTED and "the chain ends at corp root, which is not a trusted CA" in why


def test_untrusted_wins_over_wrong_host_and_expiry(pki):
    """The order an operator fixes things: trust first, then the name, then the dates."""
    _, issuing, cas = pki
    cert, _ = self_signed("x", sans=["other.example.com"], not_before=NOW - 9 * DAY, not_after=NOW - DAY)
    assert classify([der(cert)], "shop.example.com", cas, T)[0] is TlsOutcome.UNTRUSTED
    expired_wrong = leaf(issuing, "other.example.com", start=NOW - 9 * DAY, end=NOW - DAY)
    assert classify(expired_wrong, "shop.example.com", cas, T)[0] is TlsOutcome.WRONG_HOST


def test_bytes_that_are_not_a_certificate(pki):
    _, issuing, cas = pki
    o, why, chain = classify([b"\x30\x03\x02\x01\x00"], "shop.example.com", cas, T)
    assert (o, chain) == (TlsOutcome.TLS_ERROR, ()) and "could not be read" in why
    assert classify([], "shop.example.com", cas, T)[:2] == (TlsOutcome.TLS_ERROR, "the server sent no certificate")
    good = leaf(issuing, "shop.example.com")
    o, _, chain = classify([good[0], b"junk", good[1]], "shop.example.com", cas, T)
    assert len(chain) == 1  # judged on what came before the unreadable extra


def test_each_certificate_is_parsed_once(pki):
    _, issuing, _ = pki
    d = leaf(issuing, "shop.example.com")[0]
    assert parse_cert(d)[1] is parse_cert(bytes(d))[1]


def test_system_store_loads():
    cas = trusted_cas()
    assert cas.source.startswith("the system CA store")
    assert trusted_cas() is cas  # cached
    if cas.count == 0:
        pytest.skip("no system CA bundle on this machine")
    assert cas.store is not None and len(cas.subjects) <= cas.count


def test_a_remembered_pass_is_for_that_host_and_those_cas_only(pki, tmp_path):
    _, issuing, cas = pki
    chain = leaf(issuing, "shop.example.com")
    assert classify(chain, "shop.example.com", cas, T)[0] is TlsOutcome.VALID
    assert classify(chain, "shop.example.com", cas, T)[0] is TlsOutcome.VALID  # from memory
    assert classify(chain, "other.example.com", cas, T)[0] is TlsOutcome.WRONG_HOST
    other = LabCA("someone else", not_before=NOW - DAY, not_after=NOW + 9 * DAY)
    bundle = tmp_path / "other.pem"
    bundle.write_bytes(other.pem)
    o, why, _ = classify(chain, "shop.example.com", trusted_cas(str(bundle)), T)
    assert o is TlsOutcome.UNTRUSTED and "not a CA trusted here" in why
