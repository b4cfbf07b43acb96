"""Config layering: defaults < file < environment < flags, with clear errors naming the key."""

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes import config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_defaults_without_file(tmp_path):
    cfg = config.load(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert cfg.kube.page_size == 500
    assert cfg.demo.scenario == "healthy"


def test_precedence_file_env_flags(tmp_path):
    p = write(tmp_path, '[kube]\npage_size = 100\ncontext = "from-file"\n[ui]\nrefresh_interval = 1.5\n')
    env = {"AKSNET_KUBE_PAGE_SIZE": "200", "AKSNET_CONFIG": str(p)}
    cfg = config.load(env=env)
    assert cfg.kube.page_size == 200  # env beats file
    assert cfg.kube.context == "from-file"
    assert cfg.ui.refresh_interval == 1.5
    cfg = config.load(flags={"kube": {"page_size": 300}}, env=env)
    assert cfg.kube.page_size == 300  # flags beat env


def test_xdg_location_is_read(tmp_path):
    (tmp_path / "aksnet-top").mkdir()
    (tmp_path / "aksnet-top" / "config.toml").write_text('[demo]\nscenario = "overlay"\n')
    assert config.load(env={"XDG_CONFIG_HOME": str(tmp_path)}).demo.scenario == "overlay"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[kube]\npage_sise = 5\n", "unknown key kube.page_sise"),
        ("[kubes]\n", "unknown section [kubes]"),
        ("[kube]\npage_size = 'many'\n", "kube.page_size must be an integer"),
        ("[kube]\npage_size = 0\n", "kube.page_size must be an integer from 1 to 10000"),
        ("[ui]\nrefresh_interval = true\n", "ui.refresh_interval must be a number"),
        ("[kube\n", "not valid TOML"),
    ],
)
def test_bad_file_names_the_key(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as e:
        config.load(path=p, env={})
    assert needle in str(e.value)
    assert str(p) in str(e.value)


def test_bad_env_names_variable(tmp_path):
    with pytest.raises(config.ConfigError, match="unknown variable AKSNET_FOO"):
        config.load(env={"AKSNET_FOO": "1", "XDG_CONFIG_HOME": str(tmp_path)})
    with pytest.raises(config.ConfigError, match="environment: demo.nodes must be an integer from 0 to 5000"):
        config.load(env={"AKSNET_DEMO_NODES": "9000", "XDG_CONFIG_HOME": str(tmp_path)})


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(path=tmp_path / "nope.toml", env={})


def test_describe_lists_every_key():
    keys = {k for k, _, _ in config.describe()}
    assert {"kube.kubeconfig", "kube.context", "kube.page_size", "ui.refresh_interval", "demo.scenario"} <= keys


# --- what a user can break: one ConfigError line, never a traceback ---------------------------


def _one_line_error(p: Path, env: dict | None = None, flags: dict | None = None) -> str:
    with pytest.raises(config.ConfigError) as e:
        config.load(path=p, env=env or {}, flags=flags)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and len(msg) < 500, msg
    return msg


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"\xff\xfe[kube]\n", "not UTF-8 text (byte 0"),
        (b'[kube]\ncontext = "caf\xe9"\n', "not UTF-8 text (byte 21"),
        (b"[kube]\npage_size = " + b"9" * 5000 + b"\n", "an integer has more than 4300 digits"),
        (b"[kube]\npage_size = " + b"9" * 4000 + b"\n", "kube.page_size must be an integer from 1 to 10000, got 999"),
        (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        (b"kube = 3\n", "[kube] must be a table of keys"),
        (b"[kube.extra]\nx = 1\n", "unknown key kube.extra (known in [kube]: context, kubeconfig, page_size"),
        (b"top = 1\n", "unknown section [top] (known: agents, azure, demo, dns, egress, https, kube, record, ui)"),
        (b"[kube]\ncontext = 5\n", "kube.context must be a string, got 5"),
        (b"[kube]\npage_size = 2.0\n", "kube.page_size must be an integer, got 2.0"),
        (b"[dns]\nazure_dns = 1\n", "dns.azure_dns must be true or false, got 1"),
        (b"[demo]\nscenario = 1979-05-27\n", "demo.scenario must be a string"),
        (b"[ui]\nrefresh_interval = nan\n", "ui.refresh_interval must be a number of seconds from 0.05 to 10, got nan"),
        (b'[dns]\nnames = ["a.example", {x = 1}]\n', "dns.names must be a list of strings"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, data, needle):
    p = tmp_path / "config.toml"
    p.write_bytes(data)
    msg = _one_line_error(p)
    assert needle in msg and msg.startswith(str(p))


def test_text_is_read_as_a_person_writes_it(tmp_path):
    p = write(tmp_path, "[kube]\npage_size = ' 42 '\n[egress]\nmode = ' SYN '\n")
    cfg = config.load(
        path=p, env={"AKSNET_DNS_AZURE_DNS": "On", "AKSNET_EGRESS_TARGETS": " a.example:1 ,, b.example:2"}
    )
    assert (cfg.kube.page_size, cfg.egress.mode, cfg.dns.azure_dns) == (42, "syn", True)
    assert cfg.egress.targets == ("a.example:1", "b.example:2")
    assert "environment: agents.budget must be a number of requests per second from 0.1 to 100, got 'inf'" in (
        _one_line_error(p, env={"AKSNET_AGENTS_BUDGET": "inf"})
    )
    assert _one_line_error(p, flags={"kube": {"page_size": "9x"}}) == (
        "command line: kube.page_size must be an integer, got '9x'"
    )


def test_environment_bytes_that_are_not_utf8(tmp_path):
    # os.environ keeps such bytes as lone surrogates (surrogateescape)
    env = {"AKSNET_KUBE_PAGE_SIZE": "5\udcff", "XDG_CONFIG_HOME": str(tmp_path)}
    with pytest.raises(config.ConfigError, match="environment: AKSNET_KUBE_PAGE_SIZE is not UTF-8 text"):
        config.load(env=env)


def test_a_bad_layer_fails_even_when_a_later_one_overrides_the_key(tmp_path):
    p = write(tmp_path, "[kube]\npage_size = 0\n")
    assert "kube.page_size" in _one_line_error(p, env={"AKSNET_KUBE_PAGE_SIZE": "100"})


_KEYS = [k for k, _, _ in config.describe()]
_toml_values = st.one_of(
    st.integers(),
    st.floats(),
    st.booleans(),
    st.text(max_size=30),
    st.lists(st.one_of(st.text(max_size=20), st.integers()), max_size=4),
    st.sampled_from(["inf", "nan", "-0", " 1 ", "yes", "2.5", "1e400", "[::1]:53", "a=b", "x:0", ""]),
)


def _toml_literal(v) -> str:  # type: ignore[no-untyped-def]
    import json
    import math

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_literal(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string (escapes included)
    return str(v)


def _only_config_errors(**kw) -> None:  # type: ignore[no-untyped-def]
    try:
        config.load(**kw)
    except config.ConfigError as e:
        assert len(str(e).splitlines()) == 1, str(e)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_fuzz_file_bytes(tmp_path, data):
    p = tmp_path / "config.toml"
    p.write_bytes(data)
    _only_config_errors(path=p, env={})


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet=string.printable + "[]=\"'.ü\u2028\x85", max_size=200))
def test_fuzz_file_text(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    _only_config_errors(path=p, env={})


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(_KEYS + ["kube.nope", "nope.x"]), _toml_values), min_size=1, max_size=4))
def test_fuzz_typed_values_in_every_key(tmp_path, pairs):
    by_section: dict[str, dict[str, object]] = {}
    for key, value in pairs:
        sec, name = key.split(".")
        by_section.setdefault(sec, {})[name] = value
    text = "".join(
        f"[{sec}]\n" + "".join(f"{k} = {_toml_literal(v)}\n" for k, v in kv.items()) for sec, kv in by_section.items()
    )
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    _only_config_errors(path=p, env={})
    _only_config_errors(path=p, env={}, flags=by_section)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["AKSNET_" + k.upper().replace(".", "_") for k in _KEYS] + ["AKSNET_X", "AKSNET_KUBE_"]),
        st.text(alphabet=string.printable + "\u00fc\x00\udcff\ud800", max_size=40),
        max_size=4,
    )
)
def test_fuzz_environment(env):
    _only_config_errors(env={"XDG_CONFIG_HOME": "/nonexistent", **env})
