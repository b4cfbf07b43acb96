"""azure.cloud / azure.arm_endpoint: the endpoint, authority and token scope each cloud gets;
a plain-HTTP endpoint only on loopback (placeholder token, no credential chain)."""

from __future__ import annotations

import pytest

from probes.azure.cloud import LOOPBACK_TOKEN, check_endpoint, resolve
from probes.azure.service import AzureSettings, AzureSnatService
from probes.config import ConfigError, load
from probes.engine.store import Store


@pytest.mark.parametrize(
    "cloud,url,authority",
    [
        ("AzureCloud", "https://management.azure.com", "login.microsoftonline.com"),
        ("azurechinacloud", "https://management.chinacloudapi.cn", "login.chinacloudapi.cn"),
        ("AzureUSGovernment", "https://management.usgovcloudapi.net", "login.microsoftonline.us"),
    ],
)
def test_each_cloud_has_its_endpoint_authority_and_scope(cloud, url, authority):
    e = resolve(cloud)
    assert (e.url, e.authority, e.scope, e.loopback) == (url, authority, url + "/.default", False)


def test_an_endpoint_overrides_the_cloud_but_keeps_its_authority():
    e = resolve("AzureChinaCloud", "https://management.local.azurestack.external/")
    assert e.url == "https://management.local.azurestack.external"
    assert e.scope == "https://management.local.azurestack.external/.default"
    assert e.authority == "login.chinacloudapi.cn"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8443", "http://[::1]:80", "http://localhost:9"])
def test_plain_http_on_loopback_is_accepted(url):
    assert resolve("AzureCloud", url).loopback


@pytest.mark.parametrize(
    "url,words",
    [
        ("http://10.0.0.5:8080", "plain HTTP is refused for 10.0.0.5"),
        ("http://management.azure.com", "plain HTTP is refused"),
        ("ftp://x", "not an https:// URL"),
        ("https://h:99999", "not a URL"),
        ("management.azure.com", "not an https:// URL"),
    ],
)
def test_bad_endpoints_are_refused_in_one_line(url, words):
    with pytest.raises(ValueError) as e:
        check_endpoint(url)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_config_reads_cloud_and_endpoint_from_the_environment(tmp_path):
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),  # no config file there
        "AKSNET_AZURE_ARM_ENDPOINT": "https://management.usgovcloudapi.net/",
        "AKSNET_AZURE_CLOUD": "azureusgovernment",
    }
    cfg = load(env=env)
    assert cfg.azure.cloud == "AzureUSGovernment"
    assert cfg.azure.arm_endpoint == "https://management.usgovcloudapi.net"
    s = AzureSettings.from_config(cfg.azure)
    assert (s.cloud, s.arm_endpoint) == ("AzureUSGovernment", "https://management.usgovcloudapi.net")


@pytest.mark.parametrize(
    "key,value,words",
    [
        ("AKSNET_AZURE_CLOUD", "AzureGermanCloud", "azure.cloud: unknown cloud 'AzureGermanCloud'"),
        ("AKSNET_AZURE_ARM_ENDPOINT", "http://192.0.2.7", "azure.arm_endpoint: plain HTTP is refused for 192.0.2.7"),
    ],
)
def test_config_refuses_bad_values_in_one_line(key, value, words, tmp_path):
    with pytest.raises(ConfigError) as e:
        load(env={key: value, "XDG_CONFIG_HOME": str(tmp_path)})
    assert words in str(e.value) and "\n" not in str(e.value)


def _base_url(client) -> str:  # type: ignore[no-untyped-def]
    # newer azure-mgmt clients keep it in their configuration, older ones in the pipeline client
    return getattr(client._config, "base_url", None) or client._client._base_url


def _clients(settings: AzureSettings) -> AzureSnatService:
    svc = AzureSnatService(Store(), settings)
    svc._ensure_clients("00000000-0000-0000-0000-000000000001")  # builds clients: no network call
    return svc


def test_clients_use_the_clouds_endpoint_and_token_scope():
    svc = _clients(AzureSettings(cloud="AzureChinaCloud", credential=lambda: object()))
    try:
        for key in ("cs", "net", "mon"):
            c = svc._clients[key]
            assert _base_url(c) == "https://management.chinacloudapi.cn"
            assert c._config.credential_scopes == ["https://management.chinacloudapi.cn/.default"]
    finally:
        svc.stop()


def test_a_loopback_endpoint_gets_the_placeholder_token_and_no_credential_chain():
    svc = _clients(AzureSettings(arm_endpoint="http://127.0.0.1:1"))
    try:
        cred = svc._credential
        assert type(cred).__name__ == "PlaceholderCredential"
        assert cred.get_token("http://127.0.0.1:1/.default").token == LOOPBACK_TOKEN
        assert svc._opts() == {"enforce_https": False}
    finally:
        svc.stop()


def test_the_public_cloud_uses_the_credential_chain_with_its_authority():
    svc = _clients(AzureSettings(cloud="AzureUSGovernment"))
    try:
        cred = svc._credential
        assert type(cred).__name__ == "DefaultAzureCredential" and svc._opts() == {}
        assert _base_url(svc._clients["net"]) == "https://management.usgovcloudapi.net"
    finally:
        svc.stop()
