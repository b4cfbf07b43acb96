"""The [egress] config section: defaults, layering, lists from env, clear errors naming
the key, and the settings the service gets from it."""

from __future__ import annotations

import pytest

from probes import config as c
from probes.egress.service import EgressSettings


def _write(tmp_path, text):  # type: ignore[no-untyped-def]
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_defaults():
    e = c.load(env={"XDG_CONFIG_HOME": "/nonexistent"}).egress
    assert (e.interval, e.timeout, e.mode, e.targets, e.aks_defaults, e.apiserver) == (
        10.0,
        2.0,
        "auto",
        (),
        True,
        True,
    )


def test_file_env_and_settings(tmp_path):
    cfg = c.load(
        env={"AKSNET_EGRESS_MODE": "Connect", "AKSNET_EGRESS_AKS_DEFAULTS": "no"},
        path=_write(
            tmp_path,
            '[egress]\ninterval = 30\ntimeout = 1.5\ntargets = ["Example.org:443", "10.1.0.4:8080", "[fd00::1]:443"]\n',
        ),
    )
    e = cfg.egress
    assert e.interval == 30.0 and e.timeout == 1.5 and e.mode == "connect" and e.aks_defaults is False
    assert e.targets == ("example.org:443", "10.1.0.4:8080", "[fd00::1]:443")
    s = EgressSettings.from_config(e)
    assert (s.interval, s.timeout, s.mode, s.targets, s.aks_defaults) == (30.0, 1.5, "connect", e.targets, False)


@pytest.mark.parametrize(
    "text,needle",
    [
        ('[egress]\ntargets = ["mcr.microsoft.com"]\n', "egress.targets: egress target 'mcr.microsoft.com': no port"),
        ('[egress]\ntargets = ["x.example:70000"]\n', "egress.targets: egress target 'x.example:70000': port must be"),
        (
            '[egress]\ntargets = ["https://x.example"]\n',
            "egress.targets: egress target 'https://x.example': write host:port",
        ),
        (
            '[egress]\ntargets = ["fd00::1:443"]\n',
            "egress.targets: egress target 'fd00::1:443': put an IPv6 address in brackets",
        ),
        ('[egress]\ntargets = ["bad..name:443"]\n', "egress.targets: egress target 'bad..name:443'"),
        ('[egress]\ntargets = "a:1"\n', None),  # one string is a one-element list, as from the environment
        ("[egress]\ntargets = [443]\n", "egress.targets must be a list of strings"),
        ('[egress]\nmode = "raw"\n', "egress.mode: must be auto, syn or connect, got 'raw'"),
        ("[egress]\ninterval = 0.1\n", "egress.interval must be a number of seconds from 0.5 to 3600"),
        ("[egress]\ntimeout = 0\n", "egress.timeout must be a number of seconds from 0.05 to 60"),
        ('[egress]\ntimeout = "soon"\n', "egress.timeout must be a number"),
        ('[egress]\naks_defaults = "maybe"\n', "egress.aks_defaults must be true or false"),
        ("[egress]\nnope = 1\n", "unknown key egress.nope"),
    ],
)
def test_errors_name_the_key(tmp_path, text, needle):
    if needle is None:
        assert c.load(env={}, path=_write(tmp_path, text)).egress.targets == ("a:1",)
        return
    with pytest.raises(c.ConfigError) as e:
        c.load(env={}, path=_write(tmp_path, text))
    assert needle in str(e.value)


def test_env_error_names_origin():
    with pytest.raises(c.ConfigError) as e:
        c.load(env={"AKSNET_EGRESS_TARGETS": "ok.example:443, nope:0"})
    assert str(e.value).startswith("environment: egress.targets: egress target 'nope:0'")


def test_describe_lists_egress_keys():
    keys = {k: t for k, t, _ in c.describe()}
    assert keys["egress.targets"] == "list[str]" and keys["egress.mode"] == "str"
    assert keys["egress.aks_defaults"] == "bool" and keys["egress.interval"] == "float"
