"""The default agent: the stock MCR Python image runs the zipapp from a ConfigMap.

The objects validate (kubernetes_validate, strict), the ConfigMap is under 1 MiB, the pod
meets Pod Security "restricted" (connect mode, no capability), `--image` keeps the SYN
path, the scrape annotations and the PodMonitor come with their flags, and install
against the lab API server writes every object.
"""

from __future__ import annotations

import base64
import hashlib

import kubernetes_validate
import orjson
import pytest
import yaml

from probes.agent import cli, pyz
from probes.agent import manifest as M
from probes.lab.apiserver import LabApiServer
from probes.lab.writable import WritableObjects

VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
PYZ = pyz.build("0.1.0").data


def _kinds(objs):
    return [o["kind"] for o in objs]


def _ds(objs):
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet"]
    return ds


def test_stock_objects_validate_and_the_configmap_fits():
    objs = M.render(pyz=PYZ, kube_dns="10.0.0.10", nodelocal=True, nodelocal_ip="169.254.20.11", prometheus=True)
    assert _kinds(objs) == ["Namespace", "ServiceAccount", "Role", "NetworkPolicy", "ConfigMap", "DaemonSet"]
    for o in objs:
        for version in VERSIONS:
            kubernetes_validate.validate(o, version, strict=True)
    (cm,) = [o for o in objs if o["kind"] == "ConfigMap"]
    data = base64.b64decode(cm["binaryData"][pyz.PYZ_NAME], validate=True)
    assert data == PYZ
    size = sum(len(base64.b64decode(v)) for v in cm["binaryData"].values()) + sum(
        len(v.encode()) for v in (cm.get("data") or {}).values()
    )
    assert size < 1024 * 1024, f"ConfigMap holds {size} bytes"
    # and the whole YAML document stays under etcd's 1.5 MiB request limit
    assert len(yaml.safe_dump(cm)) < 1.5 * 1024 * 1024


def test_stock_pod_is_non_root_connect_mode_without_capabilities():
    objs = M.render(pyz=PYZ)
    ns = objs[0]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = _ds(objs)["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == M.STOCK_IMAGE and c["image"].startswith("mcr.microsoft.com/")
    assert c["command"] == ["python3", "-I", "/agent/aksnet-agent.pyz"]
    assert c["args"][:3] == ["--bind=$(POD_IP)", "--port=9102", "--mode=connect"]
    sc = c["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"]}, "no NET_RAW: no SYN mode"
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532 and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}, "no agent on Windows nodes"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["agent"]["configMap"]["name"] == M.AGENT_NAME
    assert {"name": "agent", "mountPath": "/agent", "readOnly": True} in c["volumeMounts"]
    ann = _ds(objs)["spec"]["template"]["metadata"]["annotations"]
    assert ann[M.PYZ_ANNOTATION] == hashlib.sha256(PYZ).hexdigest(), "new code rolls the pods"
    assert "prometheus.io/scrape" not in ann


def test_image_keeps_the_syn_path():
    objs = M.render("myacr.azurecr.io/aksnet-top:0.1.0")
    assert "ConfigMap" not in _kinds(objs)
    (c,) = _ds(objs)["spec"]["template"]["spec"]["containers"]
    assert "command" not in c and c["args"][:2] == ["agent", "run"] and "--mode=auto" in c["args"]
    assert c["securityContext"]["capabilities"]["add"] == ["NET_RAW"]


@pytest.mark.parametrize("mode", ["syn", "auto"])
def test_stock_refuses_raw_socket_modes(mode):
    with pytest.raises(ValueError, match="connect mode"):
        M.render(pyz=PYZ, mode=mode)


def test_stock_needs_the_zip_and_refuses_an_oversized_one():
    with pytest.raises(ValueError, match="zipapp"):
        M.render()
    with pytest.raises(ValueError, match="over the ConfigMap limit"):
        M.render(pyz=b"x" * (1024 * 1024 + 1))


def test_prometheus_annotations_and_podmonitor():
    objs = M.render(pyz=PYZ, podmonitor=True)
    assert _kinds(objs)[-1] == "PodMonitor"
    ann = _ds(objs)["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9102"
    assert ann["prometheus.io/path"] == "/metrics"
    pm = objs[-1]
    assert pm["apiVersion"] == "azmonitoring.coreos.com/v1"
    assert pm["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": M.AGENT_NAME}}
    assert pm["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    (np,) = [o for o in objs if o["kind"] == "NetworkPolicy"]
    assert M.AMA_METRICS in np["spec"]["ingress"][0]["from"], "Managed Prometheus's collector may scrape"
    for version in VERSIONS:
        kubernetes_validate.validate(np, version, strict=True)
    plain = M.render(pyz=PYZ)
    (np0,) = [o for o in plain if o["kind"] == "NetworkPolicy"]
    assert M.AMA_METRICS not in np0["spec"]["ingress"][0]["from"]


def test_install_against_the_lab_writes_every_object(tmp_path, capsys, monkeypatch):
    """The default install: facts read from the lab (kube-dns, NodeLocal and its -localip,
    the API server), then every object written; uninstall removes them again."""
    with LabApiServer("healthy", run_timeline=False) as lab:
        lab.writable = WritableObjects(lab_store=lab.state.store)
        kc = lab.write_kubeconfig(str(tmp_path / "kubeconfig"))
        assert cli.main(["install", "--kubeconfig", kc, "--yes", "--podmonitor"]) == 0
        out = capsys.readouterr().out
        assert "configmap/aksnet-top-agent created" in out and "daemonset.apps/aksnet-top-agent created" in out
        assert "podmonitor.azmonitoring.coreos.com/aksnet-top-agent created" in out
        cm = lab.writable.get("configmaps", "aksnet-top", "aksnet-top-agent")
        assert base64.b64decode(cm["binaryData"][pyz.PYZ_NAME])[:2] == b"#!"
        ds = lab.writable.get("daemonsets", "aksnet-top", "aksnet-top-agent")
        args = ds["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--kube-dns=10.0.0.10" in args and "--nodelocal" in args
        assert "--nodelocal-ip=169.254.20.10" in args, "from the node-local-dns pods' -localip"
        assert f"--apiserver=127.0.0.1:{lab.port}" in args
        # again: nothing changed
        assert cli.main(["install", "--kubeconfig", kc, "--yes", "--podmonitor"]) == 0
        assert all(line.endswith("unchanged") for line in capsys.readouterr().out.splitlines())
        assert cli.main(["uninstall", "--kubeconfig", kc, "--yes"]) == 0
        out = capsys.readouterr().out
        assert "configmap/aksnet-top-agent deleted" in out and "podmonitor.azmonitoring.coreos.com" in out
        assert lab.writable.get("configmaps", "aksnet-top", "aksnet-top-agent") is None


def test_the_lab_refuses_a_configmap_over_1mib(tmp_path):
    w = WritableObjects()
    big = base64.b64encode(b"\0" * (1024 * 1024 + 1)).decode()
    for body in (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "x"},
            "binaryData": {"k": big},
        },
    ):
        path = "/api/v1/namespaces" if body["kind"] == "Namespace" else "/api/v1/namespaces/x/configmaps"
        code, raw = w.handle("POST", path, {}, orjson.dumps(body), "alice")
    st = orjson.loads(raw)
    assert code == 422 and "Too long: must have at most 1048576 bytes" in st["message"]
