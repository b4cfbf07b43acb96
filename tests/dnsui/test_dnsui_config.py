"""The [dns] config section: defaults, layering, lists from env, clear errors naming the key."""

from __future__ import annotations

import pytest

from probes import config as c
from probes.dns.resolvers import PROBE_NAMES
from probes.dns.service import DnsSettings


def load(env=None, tmp_path=None, text=None):  # type: ignore[no-untyped-def]
    path = None
    if text is not None:
        path = tmp_path / "config.toml"
        path.write_text(text)
    return c.load(env=env or {"XDG_CONFIG_HOME": "/nonexistent"}, path=path)


def test_defaults():
    d = load().dns
    # two cluster names (twice the samples for the slow/replica rules) and one external
    assert d.interval == 5.0 and d.names == PROBE_NAMES == (
        "kubernetes.default.svc.cluster.local",
        "kube-dns.kube-system.svc.cluster.local",
        "mcr.microsoft.com",
    )
    assert d.azure_dns is False and d.resolvers == () and d.overrides == ()


def test_file_env_and_settings(tmp_path):
    cfg = c.load(
        env={"AKSNET_DNS_AZURE_DNS": "yes", "AKSNET_DNS_RESOLVERS": "10.1.0.4, [fd00::53]:5353"},
        path=_write(
            tmp_path,
            '[dns]\ninterval = 2\nnames = ["example.org.", "Example.org", "kubernetes.default"]\n'
            'overrides = ["kube-dns=127.0.0.1:5353", "169.254.20.10=[::1]:53"]\n',
        ),
    )
    d = cfg.dns
    assert d.interval == 2.0 and d.names == ("example.org", "kubernetes.default")
    assert d.azure_dns is True and d.resolvers == ("10.1.0.4", "[fd00::53]:5353")
    s = DnsSettings.from_config(d)
    assert s.overrides == {"kube-dns": ("127.0.0.1", 5353), "169.254.20.10": ("::1", 53)}


def _write(tmp_path, text):  # type: ignore[no-untyped-def]
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text,needle",
    [
        ('[dns]\nnames = ["bad..name"]\n', "dns.names: DNS name 'bad..name' has an empty label"),
        ("[dns]\nnames = []\n", "dns.names: no DNS names to probe"),
        ('[dns]\nnames = "x y"\n', "dns.names"),
        ("[dns]\nnames = [1]\n", "dns.names must be a list of strings"),
        ('[dns]\nresolvers = ["10.0.0.300"]\n', "dns.resolvers: DNS server '10.0.0.300'"),
        ('[dns]\noverrides = ["kube-dns:53"]\n', "dns.overrides: 'kube-dns:53' must look like RESOLVER=HOST[:PORT]"),
        ("[dns]\ninterval = 0\n", "dns.interval must be a number of seconds from 0.1 to 3600"),
        ('[dns]\ntimeout = "soon"\n', "dns.timeout must be a number"),
        ("[dns]\nnope = 1\n", "unknown key dns.nope"),
    ],
)
def test_errors_name_the_key(tmp_path, text, needle):
    with pytest.raises(c.ConfigError) as e:
        c.load(env={}, path=_write(tmp_path, text))
    assert needle in str(e.value)


def test_describe_lists_dns_keys():
    keys = {k: t for k, t, _ in c.describe()}
    assert keys["dns.names"] == "list[str]" and keys["dns.interval"] == "float"
