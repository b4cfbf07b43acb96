"""Connecting like kubectl without the kubernetes package: kubeconfig merging, credentials
(exec plugins, token files, client certificate files), TLS options, proxies, in-cluster.

Against the lab API server over real HTTP(S); exec plugins are small scripts (conftest).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from probes.kube import connect
from probes.kube.client import KubeClient, env_proxy
from probes.kube.connect import HttpError, KubeConnectError, load
from probes.kube.credentials import Credentials
from probes.kube.kubeconfig import in_cluster_endpoint, merge, resolve
from probes.lab.apiserver import LabApiServer

V1, V1BETA1 = "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"


@pytest.fixture
def tls_lab() -> Iterator[LabApiServer]:
    with LabApiServer("healthy", tls=True, token="t0", run_timeline=False) as srv:
        yield srv


def write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def nodes(api: Any) -> int:
    resp = connect.get(api, "/api/v1/nodes")
    try:
        return len(json.loads(resp.data)["items"])
    finally:
        resp.release_conn()


def with_user(srv: LabApiServer, user: dict[str, Any]) -> dict[str, Any]:
    doc = srv.kubeconfig()
    doc["users"][0]["user"] = user
    return doc


# --- exec credential plugins -------------------------------------------------------------
@pytest.mark.parametrize("api_version", [V1, V1BETA1])
def test_exec_plugin_authenticates(tmp_path, tls_lab, plugin, api_version):
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": plugin.exec_spec(api_version)}))
    api, target = load(kc, "", env={})
    try:
        assert target.context == "lab" and nodes(api) == 5
        assert nodes(api) == 5  # the credential is kept: no second run
        runs = [json.loads(r) for r in plugin.runs()]
        assert len(runs) == 1
        assert runs[0]["info"] == {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
        assert runs[0]["args"] == ["get-token", "--login", "azurecli"] and runs[0]["env"] == "from-kubeconfig"
    finally:
        api.close()


def test_exec_plugin_gets_cluster_info_when_asked(tmp_path, tls_lab, plugin):
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": plugin.exec_spec(provideClusterInfo=True)}))
    api, _ = load(kc, "", env={})
    api.close()
    cluster = json.loads(plugin.runs()[0])["info"]["spec"]["cluster"]
    assert (
        cluster["server"] == tls_lab.url
        and base64.b64decode(cluster["certificate-authority-data"]) == tls_lab.pki.ca_pem
    )


def test_expired_exec_credential_runs_the_plugin_again(tmp_path, tls_lab, plugin):
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": plugin.exec_spec(ttl=3600)}))
    ep = resolve(merge([Path(kc)]), "")
    now = [time.time()]
    creds = Credentials(ep, env={}, clock=lambda: now[0])
    assert creds.header() == "Bearer t0" and creds.exec_runs == 1
    now[0] += 1800
    assert creds.header() == "Bearer t0" and creds.exec_runs == 1  # still valid
    plugin.token("t1")
    now[0] += 1800 - 30  # within a minute of the expiry: refreshed early
    assert creds.header() == "Bearer t1" and creds.exec_runs == 2
    assert len(plugin.runs()) == 2


def test_short_lived_exec_credential_is_refreshed_per_request(tmp_path, tls_lab, plugin):
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": plugin.exec_spec(ttl=10)}))  # inside the refresh skew
    api, _ = load(kc, "", env={})
    try:
        plugin.token("t1")
        tls_lab.token = "t1"
        assert nodes(api) == 5
        assert len(plugin.runs()) == 2
    finally:
        api.close()


def test_401_runs_the_plugin_again_once(tmp_path, tls_lab, plugin):
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": plugin.exec_spec()}))
    api, _ = load(kc, "", env={})
    try:
        tls_lab.token = "t1"  # the server rotated; the cached t0 is refused
        plugin.token("t1")
        assert nodes(api) == 5 and len(plugin.runs()) == 2
        tls_lab.token = "t2"  # the plugin has nothing better: one retry, then the 401 stands
        with pytest.raises(HttpError) as e:
            nodes(api)
        assert e.value.status == 401 and len(plugin.runs()) == 3
    finally:
        api.close()


def test_exec_plugin_failure_says_what_the_plugin_said(tmp_path, tls_lab, plugin):
    plugin.fail()
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": plugin.exec_spec()}))
    with pytest.raises(KubeConnectError) as e:
        load(kc, "", env={})
    assert "exec credential plugin failed" in e.value.message and "AADSTS70043" in e.value.message
    assert "kubelogin convert-kubeconfig" in e.value.hint


def test_exec_plugin_unknown_api_version(tmp_path, tls_lab, plugin):
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": plugin.exec_spec("client.authentication.k8s.io/v1alpha1")}))
    with pytest.raises(KubeConnectError, match="v1alpha1.*not supported"):
        load(kc, "", env={})


def test_exec_command_relative_to_the_kubeconfig(tmp_path, tls_lab, plugin):
    spec = plugin.exec_spec()
    spec["command"] = "./plugin/fake-kubelogin"
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": spec}))
    api, _ = load(kc, "", env={})
    try:
        assert nodes(api) == 5
    finally:
        api.close()


# --- tokens, certificates, TLS -----------------------------------------------------------
def test_token_file_is_read_and_reread_when_it_rotates(tmp_path, tls_lab):
    (tmp_path / "sa-token").write_text("t0\n")
    kc = write(tmp_path / "kc", with_user(tls_lab, {"tokenFile": "sa-token"}))  # relative to the kubeconfig
    api, _ = load(kc, "", env={})
    try:
        assert nodes(api) == 5
        tls_lab.token = "rotated-token"
        (tmp_path / "sa-token").write_text("rotated-token\n")
        assert nodes(api) == 5
    finally:
        api.close()


def test_client_certificate_and_ca_from_files(tmp_path):
    with LabApiServer("healthy", client_cert_auth=True, run_timeline=False) as srv:
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(srv.pki.ca_pem)
        (certs / "client.crt").write_bytes(srv.pki.client_cert_pem)
        (certs / "client.key").write_bytes(srv.pki.client_key_pem)
        doc = with_user(srv, {"client-certificate": "certs/client.crt", "client-key": "certs/client.key"})
        doc["clusters"][0]["cluster"] = {"server": srv.url, "certificate-authority": "certs/ca.crt"}
        api, _ = load(write(tmp_path / "kc", doc), "", env={})
        try:
            assert nodes(api) == 5
        finally:
            api.close()


def test_insecure_skip_tls_verify(tmp_path, tls_lab):
    doc = tls_lab.kubeconfig()
    doc["clusters"][0]["cluster"] = {"server": tls_lab.url, "insecure-skip-tls-verify": True}
    api, _ = load(write(tmp_path / "kc", doc), "", env={})
    try:
        assert nodes(api) == 5
    finally:
        api.close()


def test_unknown_ca_is_a_tls_error(tmp_path, tls_lab):
    doc = tls_lab.kubeconfig()
    doc["clusters"][0]["cluster"] = {"server": tls_lab.url}  # the system CAs do not know the lab's
    api, _ = load(write(tmp_path / "kc", doc), "", env={})
    try:
        with pytest.raises(Exception, match="(?i)certificate"):
            nodes(api)
    finally:
        api.close()


# --- merged $KUBECONFIG --------------------------------------------------------------------
def test_merged_kubeconfig_first_file_wins(tmp_path, tls_lab):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    (a_dir / "ca.crt").write_bytes(tls_lab.pki.ca_pem)
    a = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "prod",
        "clusters": [{"name": "lab", "cluster": {"server": tls_lab.url, "certificate-authority": "ca.crt"}}],
        "users": [{"name": "me", "user": {"token": "t0"}}],
    }
    b = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ignored",
        "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:1"}}],  # a later file loses
        "users": [{"name": "me", "user": {"token": "wrong"}}],
        "contexts": [
            {"name": "prod", "context": {"cluster": "lab", "user": "me"}},
            {"name": "other", "context": {"cluster": "lab", "user": "me"}},
        ],
    }
    env = {"KUBECONFIG": f"{write(a_dir / 'config', a)}:{tmp_path / 'missing'}:{write(b_dir / 'config', b)}"}
    api, target = load("", "", env=env)
    try:
        assert (target.context, target.server) == ("prod", tls_lab.url)
        assert target.source == f"{a_dir / 'config'}:{b_dir / 'config'}"
        assert nodes(api) == 5
    finally:
        api.close()
    with pytest.raises(KubeConnectError, match=r"'nope' not found .*known: prod, other"):
        load("", "nope", env=env)


def test_context_without_current_context(tmp_path, tls_lab):
    doc = tls_lab.kubeconfig()
    del doc["current-context"]
    with pytest.raises(KubeConnectError, match="no current context"):
        load(write(tmp_path / "kc", doc), "", env={})
    api, target = load(str(tmp_path / "kc"), "lab", env={})
    assert target.context == "lab"
    api.close()


def test_json_kubeconfig(tmp_path, tls_lab):
    p = tmp_path / "kc.json"
    p.write_text(json.dumps(tls_lab.kubeconfig()))
    api, target = load(str(p), "", env={})
    try:
        assert target.server == tls_lab.url and nodes(api) == 5
    finally:
        api.close()


def test_no_kubernetes_package_on_the_topology_path(tmp_path, tls_lab):
    kc = write(tmp_path / "kc", tls_lab.kubeconfig())
    code = (
        "import sys\nfrom probes.kube import connect\nfrom probes.kube.source import KubeSource\n"
        f"api, _ = connect.load({kc!r}, '')\nconnect.get(api, '/version').release_conn()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'oauthlib', 'requests', 'websocket', 'pydantic'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- in-cluster ------------------------------------------------------------------------------
def test_in_cluster_service_account(tmp_path, tls_lab):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("t0")
    (sa / "ca.crt").write_bytes(tls_lab.pki.ca_pem)
    port = tls_lab.url.rsplit(":", 1)[1]
    ep = in_cluster_endpoint({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port}, sa)
    assert ep.server == tls_lab.url and ep.context == "in-cluster"
    api = KubeClient(ep, env={})
    try:
        assert nodes(api) == 5
    finally:
        api.close()
    with pytest.raises(Exception, match="KUBERNETES_SERVICE_HOST"):
        in_cluster_endpoint({}, sa)


# --- proxies ---------------------------------------------------------------------------------
class _Proxy(BaseHTTPRequestHandler):
    """A forward HTTP proxy that relays absolute-URI GETs and records them."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        import urllib.request

        type(self).seen.append(self.path)
        req = urllib.request.Request(
            self.path, headers={k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
        )
        with urllib.request.urlopen(req, timeout=10) as up:
            body = up.read()
            self.send_response(up.status)
            self.send_header("Content-Type", up.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_proxy_url_is_used(tmp_path):
    with LabApiServer("healthy", run_timeline=False) as srv:
        proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
        t = threading.Thread(target=proxy.serve_forever, daemon=True)
        t.start()
        try:
            _Proxy.seen = []
            doc = srv.kubeconfig()
            doc["clusters"][0]["cluster"]["proxy-url"] = f"http://127.0.0.1:{proxy.server_address[1]}"
            api, _ = load(write(tmp_path / "kc", doc), "", env={})
            try:
                assert nodes(api) == 5
            finally:
                api.close()
            assert _Proxy.seen and _Proxy.seen[0].startswith(srv.url + "/api/v1/nodes")
        finally:
            proxy.shutdown()
            proxy.server_close()
            t.join(5)


def test_env_proxy_rules():
    env = {"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": ".internal,10.0.0.0/8,api.example.com"}
    assert env_proxy("https://myaks.hcp.westeurope.azmk8s.io:443", env) == "http://proxy.corp:3128"
    assert env_proxy("https://x.internal", env) == ""
    assert env_proxy("https://10.1.2.3:443", env) == ""
    assert env_proxy("https://api.example.com", env) == ""
    assert env_proxy("https://sub.api.example.com", env) == ""
    assert env_proxy("https://127.0.0.1:6443", env) == ""  # loopback is never proxied
    assert (
        env_proxy("https://a.b", {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1"}) == "http://lower:1"
    )
    assert env_proxy("https://a.b", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}) == ""
    assert env_proxy("http://a.b", {"HTTPS_PROXY": "http://p:1"}) == ""


def test_second_load_reuses_the_plugin_answer(tmp_path, tls_lab, plugin):
    """The app checks the kubeconfig before the screen opens, the source loads it again:
    kubelogin runs once for both."""
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": plugin.exec_spec(ttl=3600)}))
    first, _ = load(kc, "", env={})
    second, _ = load(kc, "", env={})
    try:
        assert nodes(second) == 5 and len(plugin.runs()) == 1
    finally:
        first.close()
        second.close()


def test_tls_server_name(tmp_path, tls_lab):
    """tls-server-name: the name checked in the server's certificate (and sent as SNI)."""
    doc = tls_lab.kubeconfig()
    doc["clusters"][0]["cluster"]["tls-server-name"] = "localhost"  # in the lab certificate
    api, _ = load(write(tmp_path / "kc", doc), "", env={})
    try:
        assert nodes(api) == 5
    finally:
        api.close()
    doc["clusters"][0]["cluster"]["tls-server-name"] = "apiserver.example.com"
    api, _ = load(write(tmp_path / "kc2", doc), "", env={})
    try:
        with pytest.raises(Exception, match="(?i)hostname|certificate|match"):
            nodes(api)
    finally:
        api.close()


def test_exec_plugin_that_needs_a_terminal(tmp_path, tls_lab, plugin):
    kc = write(tmp_path / "kc", with_user(tls_lab, {"exec": plugin.exec_spec(interactiveMode="Always")}))
    with pytest.raises(KubeConnectError, match="needs a terminal"):
        load(kc, "", env={})  # pytest's stdout is not a terminal
    assert plugin.runs() == []


def test_exec_plugin_client_certificate(tmp_path):
    """An exec plugin may answer a client certificate and key instead of a token."""
    with LabApiServer("healthy", client_cert_auth=True, run_timeline=False) as srv:
        d = tmp_path / "certplugin"
        d.mkdir()
        status = {
            "clientCertificateData": srv.pki.client_cert_pem.decode(),
            "clientKeyData": srv.pki.client_key_pem.decode(),
        }
        script = d / "plugin"
        script.write_text(
            f"#!{sys.executable}\nimport json, os\n"
            "v = json.loads(os.environ['KUBERNETES_EXEC_INFO'])['apiVersion']\n"
            f"print(json.dumps({{'apiVersion': v, 'kind': 'ExecCredential', 'status': {status!r}}}))\n"
        )
        script.chmod(0o700)
        doc = with_user(srv, {"exec": {"apiVersion": V1BETA1, "command": str(script), "interactiveMode": "Never"}})
        api, _ = load(write(tmp_path / "kc", doc), "", env={})
        try:
            assert nodes(api) == 5
        finally:
            api.close()
