"""Config layering: defaults < file < environment < flags, with clear errors naming the key."""

from pathlib import Path

import pytest

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
