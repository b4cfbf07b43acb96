"""The raw bodies behind a finding: the recording keeps the Kubernetes objects and ARM
resources a finding names (read when it starts, redacted), and the bundle puts them under
evidence/<n>-<rule>/, pseudonymised like every other file with --redact-ids."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import orjson

from probes.diagnose.model import Finding, Severity
from probes.kube.model import PodState
from probes.record import bundle, redact
from probes.record.evidence import EvidenceFetcher, kube_path, wanted
from probes.record.reader import Recording

REAL = Path("/work/shared/real/arm")
SUB = "4b6c1f2e-8d3a-4e5f-9a7b-1c2d3e4f5a6b"


def _critical(rec: Recording) -> Any:
    return next(f for f in rec.findings if f.rule == "nodelocal-down")


def test_the_recording_keeps_the_objects_behind_a_finding(recorded):
    rec = Recording(recorded[0])
    f = _critical(rec)
    node = f.subject.split("/", 1)[1]
    objects = {(k, n): body for k, n, body in rec.evidence(f)}
    # the node as the API server returns it (its conditions, its providerID), not our record
    body = objects[("node", node)]
    assert body["kind"] == "Node" and body["metadata"]["name"] == node
    assert any(c["type"] == "Ready" for c in body["status"]["conditions"])
    assert body["spec"]["providerID"].startswith("azure:///subscriptions/")
    assert "images" not in body["status"] and "managedFields" not in body["metadata"]
    # and the NodeLocal DNS pod on that node, the one the finding is about
    pods = [b for (k, _n), b in objects.items() if k == "pod"]
    assert any(
        p["spec"]["nodeName"] == node and p["metadata"]["labels"].get("k8s-app") == "node-local-dns" for p in pods
    )
    # only the findings' objects: nothing for the nodes without a finding
    finding_ids = {x.id for x in rec.findings}
    rows = rec._db.execute("SELECT DISTINCT finding FROM evidence").fetchall()
    assert {r for (r,) in rows} <= finding_ids


def test_the_bundle_holds_the_raw_bodies_with_consistent_pseudonyms(recorded, tmp_path):
    rec = Recording(recorded[0])
    f = _critical(rec)
    node = f.subject.split("/", 1)[1]
    raw_node = next(b for k, n, b in rec.evidence(f) if k == "node")
    ip = next(a["address"] for a in raw_node["status"]["addresses"] if a["type"] == "InternalIP")
    rec.close()

    plain = tmp_path / "p.tar.gz"
    bundle.make([recorded[0]], plain, since=86400)
    findings = json.loads(tar_file(plain, "findings.json"))
    mine = next(x for x in findings if x["rule"] == "nodelocal-down")
    body = json.loads(tar_file(plain, f"/{mine['evidence_dir']}/node-{node}.json"))
    assert body["metadata"]["name"] == node and body["kind"] == "Node"

    red = tmp_path / "r.tar.gz"
    bundle.make([recorded[0]], red, since=86400, redact_ids=True)
    with tarfile.open(red) as tar:
        files = {n: tar.extractfile(n).read() for n in tar.getnames() if tar.getmember(n).isfile()}  # type: ignore[union-attr]
    everything = b"\n".join(files.values())
    for secret in (node, ip, SUB):
        assert secret.lower().encode() not in everything.lower(), secret
    findings = json.loads(next(v for k, v in files.items() if k.endswith("findings.json")))
    mine = next(x for x in findings if x["rule"] == "nodelocal-down")
    pseudo = mine["subject"].split("/", 1)[1]
    assert pseudo.startswith("node-")
    raw = {k: json.loads(v) for k, v in files.items() if "/evidence/" in k}
    nb = next(v for k, v in raw.items() if k.endswith(f"/{mine['evidence_dir']}/node-{pseudo}.json"))
    # one pseudonym per value in every file: the raw body's name, its hostname label, its address
    assert nb["metadata"]["name"] == pseudo
    assert nb["metadata"]["labels"]["kubernetes.io/hostname"] == pseudo
    topo = json.loads(next(v for k, v in files.items() if k.endswith("topology.json")))
    mine_topo = next(n for n in topo["nodes"] if n["name"] == pseudo)
    raw_ip = next(a["address"] for a in nb["status"]["addresses"] if a["type"] == "InternalIP")
    assert raw_ip == mine_topo["internal_ip"] and raw_ip.startswith(("192.0.2.", "198.18."))
    assert "/subscriptions/00000000-0000-0000-0000-" in nb["spec"]["providerID"]


def tar_file(archive: Path, suffix: str) -> bytes:
    with tarfile.open(archive) as tar:
        name = next(n for n in tar.getnames() if n.endswith(suffix))
        return tar.extractfile(name).read()  # type: ignore[union-attr]


def _arm(name: str) -> dict[str, Any]:
    doc = json.loads((REAL / name).read_text())
    return dict(doc["responses"]["200"]["body"])


def test_a_route_finding_carries_the_route_table_arm_returned():
    rt = _arm("network-2024-07-01-RouteTableGet.json")
    lb = _arm("network-2024-07-01-LoadBalancerGet.json")
    kept = {("routetables", "/subscriptions/subid/resourceGroups/rg1"): [rt], ("lb", "x"): lb}
    asked: list[str] = []

    def get(path: str) -> bytes:
        asked.append(path)
        return orjson.dumps({"kind": "Node", "metadata": {"name": "aks-a-1", "managedFields": [1]}, "status": {}})

    f = Finding("route-missing", "F1", Severity.CRITICAL, "node/aks-a-1", "no route", {"prefix": "10.244.1.0/24"})
    out = EvidenceFetcher(get, lambda: kept).fetch(f)
    assert asked == ["/api/v1/nodes/aks-a-1"]
    assert [(k, n) for k, n, _ in out] == [("node", "aks-a-1"), ("routetable", "testrt")]
    assert out[1][2]["properties"]["routes"][0]["properties"]["addressPrefix"] == "10.0.3.0/24"
    assert "managedFields" not in out[0][2]["metadata"]
    # a SNAT finding reads the load balancer instead, an NSG finding the NSG it names
    snat = Finding("snat-exhausted", "F10", Severity.CRITICAL, "cluster", "ports", {})
    assert [k for k, _n, _ in EvidenceFetcher(None, lambda: kept).fetch(snat)] == ["lb"]
    nsg = Finding("nsg-denies-egress", "F24", Severity.CRITICAL, "target/x:443", "deny", {"nsg": "my-nsg"})
    assert ("nsg", "my-nsg") in wanted(nsg)


def test_a_finding_on_a_resolver_names_its_pods_and_service():
    class Topo:
        nodelocal = {"n1": PodState("kube-system", "node-local-dns-abc", "n1", "10.1.0.1", "Running", True)}
        coredns = (PodState("kube-system", "coredns-1", "n2", "10.244.2.2", "Running", True),)

    f = Finding("coredns-down", "F5", Severity.CRITICAL, "resolver/kube-dns", "down", {})
    assert wanted(f, Topo()) == [("service", "kube-system/kube-dns"), ("pod", "kube-system/coredns-1")]
    g = Finding("nodelocal-down", "F4", Severity.CRITICAL, "node/n1", "down", {})
    assert wanted(g, Topo()) == [("node", "n1"), ("pod", "kube-system/node-local-dns-abc")]


def test_a_gateway_finding_names_its_static_gateway_configuration():
    f = Finding("sgc-not-provisioned", None, Severity.CRITICAL, "gateway/payments/sgc-p", "no prefix", {})
    assert wanted(f) == [("staticgatewayconfiguration", "payments/sgc-p")]
    assert kube_path("staticgatewayconfiguration", "payments/sgc-p") == (
        "/apis/egressgateway.kubernetes.azure.com/v1alpha1/namespaces/payments/staticgatewayconfigurations/sgc-p"
    )


def test_raw_bodies_lose_tokens_certificates_and_keys():
    cluster = _arm("containerservice-2024-09-01-ManagedClustersGet.json")
    pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"
    body = {
        "metadata": {"annotations": {"note": f"ca is {pem}", "url": "https://u:p@x.example/?sig=sig-5a1c"}},
        "data": {"token": "tok-7f3e9", "ca.crt": "x" * 300},
        "users": [{"user": {"client-key-data": "S2V5", "client-certificate-data": "Q2VydA==", "name": "ok"}}],
        "auth": "Bearer eyJhbGciOi.eyJzdWIiOi.sig",
        "cluster": cluster,
    }
    out = redact.raw(body)
    text = json.dumps(out)
    for secret in (
        "MIIBszCCAVmgAwIBAgIU",
        "tok-7f3e9",
        "sig-5a1c",
        "S2V5",
        "Q2VydA==",
        "u:p@",
        "eyJhbGciOi",
        "keydata",
        "x" * 300,
    ):
        assert secret not in text, secret
    assert out["users"][0]["user"]["name"] == "ok"
    assert out["cluster"]["properties"]["kubernetesVersion"] == cluster["properties"]["kubernetesVersion"]
