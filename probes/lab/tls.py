"""Throwaway PKI for the lab: a CA, a server cert for 127.0.0.1/localhost, a client cert
(:func:`make_pki`); CAs, intermediates and self-signed leaves for the ingress TLS endpoints.

Imported only when TLS is asked for (``cryptography`` costs ~100 ms to import). EC P-256
keys keep generation fast; Go (kubectl) and Python's ssl both accept them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, slots=True)
class LabPKI:
    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes
    dir: str  # holds the PEM files ssl needs; removed by cleanup()

    @property
    def ca_path(self) -> str:
        return os.path.join(self.dir, "ca.crt")

    def server_context(self, client_cert_auth: bool) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(os.path.join(self.dir, "server.crt"), os.path.join(self.dir, "server.key"))
        if client_cert_auth:
            ctx.load_verify_locations(cafile=self.ca_path)
            ctx.verify_mode = ssl.CERT_OPTIONAL  # like kube-apiserver: no cert -> try the token
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def cleanup(self) -> None:
        for f in ("ca.crt", "server.crt", "server.key"):
            try:
                os.unlink(os.path.join(self.dir, f))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class LabCA:
    """A throwaway certificate authority: its key stays in memory, its certificate is what
    clients trust. :func:`make_pki` uses one for the API server; the ingress TLS endpoints
    (probes/lab/tlshosts.py) issue per-host certificates from another."""

    def __init__(
        self,
        cn: str = "aksnet-top lab CA",
        *,
        not_before: dt.datetime,
        not_after: dt.datetime,
        parent: LabCA | None = None,
    ) -> None:
        """A root CA, or an intermediate signed by `parent`."""
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(cn)
        signer = parent.key if parent is not None else self.key
        b = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(parent.name if parent is not None else self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
        )
        if parent is not None:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False
            )
        self.cert = b.sign(signer, hashes.SHA256())

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        cn: str,
        *,
        not_before: dt.datetime,
        not_after: dt.datetime,
        sans: list[str] | tuple[str, ...] = (),
        org: str | None = None,
        server: bool = True,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> tuple[bytes, bytes]:
        """A leaf signed by this CA: (certificate PEM, key PEM). `sans`: DNS names or IP
        addresses (a server certificate only); `key`: reuse one (many leaves, one key)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, org))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_LEAF_USAGE, critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if server and sans:
            b = b.add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_encipherment=False,
    key_cert_sign=False,
    crl_sign=False,
    content_commitment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def _general_names(names: list[str] | tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for h in dict.fromkeys(names):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def self_signed(
    cn: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    sans: list[str] | tuple[str, ...] = (),
    org: str | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> tuple[bytes, bytes]:
    """A server certificate signed by its own key (what a misconfigured server, or
    ingress-nginx without a certificate for the host, presents): (certificate PEM, key PEM)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = _name(cn, org)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
    cert = b.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def make_pki(hosts: list[str], client_cn: str = "aksnet-top", client_org: str = "system:masters") -> LabPKI:
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)
    ca = LabCA(not_before=start, not_after=end)
    s_cert, s_key = ca.issue(
        "kube-apiserver", not_before=start, not_after=end, sans=[*hosts, "127.0.0.1", "localhost"], server=True
    )
    c_cert, c_key = ca.issue(client_cn, not_before=start, not_after=end, org=client_org, server=False)
    d = tempfile.mkdtemp(prefix="aksnet-lab-tls-")
    ca_pem = ca.pem
    for fname, data in (("ca.crt", ca_pem), ("server.crt", s_cert), ("server.key", s_key)):
        fd = os.open(os.path.join(d, fname), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return LabPKI(ca_pem, s_cert, s_key, c_cert, c_key, d)


def peer_identity(cert: dict | None) -> str | None:
    """CN of a verified client certificate (from SSLSocket.getpeercert())."""
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None
