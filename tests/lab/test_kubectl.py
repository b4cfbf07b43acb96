"""kubectl (a client nobody here wrote) against the lab."""

from __future__ import annotations

import json

from probes.lab.serve import writable


def test_get_nodes_wide(make_lab, kubectl):
    srv, kc = make_lab("healthy")
    out = kubectl(kc, "get", "nodes", "-o", "wide").stdout.splitlines()
    header = out[0].split()
    assert header[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] and "INTERNAL-IP" in header
    rows = [line.split() for line in out[1:]]
    assert len(rows) == 5
    ip_col = header.index("INTERNAL-IP")
    assert [r[ip_col] for r in rows] == [f"10.224.0.{i}" for i in range(4, 9)]
    assert all(r[1] == "Ready" for r in rows)


def test_get_nodes_status_and_paging(make_lab, kubectl):
    srv, kc = make_lab("overlay", nodes=1200)
    n0 = srv.state.resolve_node(0)
    srv.state.cordon(n0, True)
    srv.state.set_node_ready(srv.state.resolve_node(1), False)
    out = kubectl(kc, "get", "nodes", "--no-headers").stdout.splitlines()
    assert len(out) == 1200  # kubectl pages with limit=500
    status = {line.split()[0]: line.split()[1] for line in out}
    assert status[n0] == "Ready,SchedulingDisabled"
    assert status[srv.state.resolve_node(1)] == "NotReady"
    assert srv.requests.count(path="^/api/v1/nodes$", verb="list") >= 3
    data = json.loads(kubectl(kc, "get", "nodes", "-o", "json").stdout)
    assert data["kind"] == "List" and len(data["items"]) == 1200


def test_get_pods_and_services_kube_system(make_lab, kubectl):
    srv, kc = make_lab("healthy")
    out = kubectl(kc, "get", "pods,svc", "-n", "kube-system", "-o", "wide").stdout
    assert "pod/coredns-" in out and "pod/node-local-dns-" in out
    svc = [line.split() for line in out.splitlines() if line.startswith("service/")]
    kd = next(s for s in svc if s[0] == "service/kube-dns")
    assert kd[1:5] == ["ClusterIP", "10.0.0.10", "<none>", "53/UDP,53/TCP"]
    pods = [line.split() for line in out.splitlines() if line.startswith("pod/")]
    assert all(p[1] == "1/1" and p[2] == "Running" for p in pods)
    out = kubectl(kc, "get", "svc", "-A").stdout
    web = next(line.split() for line in out.splitlines() if " web " in f" {line} ")
    assert web[2] == "LoadBalancer" and web[4] == "20.31.144.17"


def test_get_raw_version_and_events(make_lab, kubectl):
    srv, kc = make_lab("azure-cni")
    v = json.loads(kubectl(kc, "get", "--raw", "/version").stdout)
    assert v["gitVersion"] == "v1.30.6"
    out = kubectl(kc, "get", "events", "-n", "payments").stdout
    assert "SyncLoadBalancerFailed" in out and "service/api-internal" in out
    out = kubectl(kc, "get", "svc", "-n", "payments").stdout
    assert "<pending>" in out


def test_tls_token_and_client_cert(make_lab, kubectl, tmp_path):
    srv, kc = make_lab("healthy", tls=True, token="t0ken")
    assert len(json.loads(kubectl(kc, "get", "nodes", "-o", "json").stdout)["items"]) == 5
    bad = tmp_path / "bad.kubeconfig"
    bad.write_text(open(kc).read().replace("t0ken", "wrong"))
    p = kubectl(str(bad), "get", "nodes", check=False)
    assert p.returncode != 0 and "Unauthorized" in p.stderr
    srv2, kc2 = make_lab("healthy", client_cert_auth=True)
    assert len(json.loads(kubectl(kc2, "get", "nodes", "-o", "json").stdout)["items"]) == 5


def test_forbidden_message_reaches_kubectl(make_lab, kubectl):
    srv, kc = make_lab("healthy")
    srv.faults.forbid("list", "nodes")
    p = kubectl(kc, "get", "nodes", check=False)
    assert p.returncode != 0
    assert 'nodes is forbidden: User "system:serviceaccount:demo:aksnet-top" cannot list resource "nodes"' in p.stderr


def test_get_networkpolicies_and_calico_crds(make_lab, kubectl):
    srv, kc = make_lab("f21")
    out = kubectl(kc, "get", "networkpolicies", "-A").stdout.splitlines()
    assert out[0].split() == ["NAMESPACE", "NAME", "POD-SELECTOR", "AGE"]
    rows = sorted(line.split()[:3] for line in out[1:])
    assert rows == [["payments", "default-deny", "<none>"], ["shop", "default-deny", "<none>"]]
    doc = json.loads(kubectl(kc, "get", "netpol", "default-deny", "-n", "shop", "-o", "json").stdout)
    assert doc["apiVersion"] == "networking.k8s.io/v1" and doc["spec"]["policyTypes"] == ["Ingress", "Egress"]
    out = kubectl(kc, "get", "pods", "-n", "shop", "-l", "app=web", "--no-headers").stdout.splitlines()
    assert len(out) == 2 and all("Running" in line for line in out)
    # no Calico here: kubectl does not know the resource (discovery has no crd.projectcalico.org)
    r = kubectl(kc, "get", "globalnetworkpolicies.crd.projectcalico.org", check=False)
    assert r.returncode != 0 and "the server doesn't have a resource type" in r.stderr
    srv, kc = make_lab("f21-calico")
    out = kubectl(kc, "get", "globalnetworkpolicies.crd.projectcalico.org").stdout.splitlines()
    assert out[0].split() == ["NAME", "AGE"] and out[1].split()[0] == "deny-link-local-udp"
    doc = json.loads(kubectl(kc, "get", "networkpolicies.crd.projectcalico.org", "-A", "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in doc["items"]] == ["allow-dns"]
    assert doc["items"][0]["spec"]["order"] == 500


def test_networkpolicy_created_through_the_lab_is_listed_and_watched(make_lab, kubectl, tmp_path):
    srv, kc = make_lab("healthy")
    writable(srv)  # what `aksnet-top lab` and the demo serve: the write verbs
    pol = tmp_path / "np.json"
    pol.write_text(
        json.dumps(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "deny-egress", "namespace": "default"},
                "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
            }
        )
    )
    kubectl(kc, "create", "--validate=false", "-f", str(pol))  # the lab serves no OpenAPI
    out = kubectl(kc, "get", "networkpolicies", "-n", "default", "--no-headers").stdout.split()
    assert out[:2] == ["deny-egress", "<none>"]
    assert srv.state.store.get("networkpolicies", "default/deny-egress") is not None  # the store watches read
    kubectl(kc, "delete", "networkpolicy", "deny-egress", "-n", "default")
    assert srv.state.store.get("networkpolicies", "default/deny-egress") is None


def test_get_ingress_and_certificates(make_lab, kubectl):
    """The ingress path's groups: kubectl discovers them and prints the server's tables."""
    srv, kc = make_lab("f23")
    out = kubectl(kc, "get", "ingress,certificates", "-A").stdout
    ing = [line.split() for line in out.splitlines() if "ingress.networking.k8s.io/" in line]
    assert {r[1] for r in ing} == {
        f"ingress.networking.k8s.io/{n}" for n in ("api", "checkout", "portal", "shop", "www")
    }
    www = next(r for r in ing if r[1].endswith("/www"))
    assert www[2:6] == ["nginx", "www.contoso.com", "20.31.150.10", "80,"]
    certs = {line.split()[1]: line.split()[2] for line in out.splitlines() if "certificate.cert-manager.io/" in line}
    assert certs == {
        "certificate.cert-manager.io/api-tls": "True",
        "certificate.cert-manager.io/checkout-tls": "True",
        "certificate.cert-manager.io/portal-tls": "True",
        "certificate.cert-manager.io/shop-tls": "False",
        "certificate.cert-manager.io/www-tls": "False",
    }
    data = json.loads(kubectl(kc, "get", "challenges", "-n", "shop", "-o", "json").stdout)
    assert [c["spec"]["dnsName"] for c in data["items"]] == ["shop.contoso.com"]
    assert data["items"][0]["apiVersion"] == "acme.cert-manager.io/v1"


def test_without_cert_manager_its_kinds_do_not_exist(make_lab, kubectl):
    srv, kc = make_lab("healthy")
    assert "No resources found" in kubectl(kc, "get", "ingress", "-A").stderr
    p = kubectl(kc, "get", "certificates", "-A", check=False)
    assert p.returncode != 0 and 'the server doesn\'t have a resource type "certificates"' in p.stderr


def test_get_staticgatewayconfigurations(make_lab, kubectl):
    """The static egress gateway's CRD is served only where the scenario installs it; kubectl
    finds it by discovery, lists it across namespaces and by its short name."""
    srv, kc = make_lab("egress-gateway")
    out = kubectl(kc, "get", "staticgatewayconfigurations", "-A").stdout.splitlines()
    assert out[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert sorted(line.split()[:2] for line in out[1:]) == [["payments", "sgc-payments"], ["shop", "sgc-shop"]]
    doc = json.loads(kubectl(kc, "get", "sgc", "sgc-shop", "-n", "shop", "-o", "json").stdout)
    assert doc["apiVersion"] == "egressgateway.kubernetes.azure.com/v1alpha1"
    assert doc["kind"] == "StaticGatewayConfiguration"
    assert doc["spec"]["gatewayNodepoolName"] == "gwpool" and doc["status"]["egressIpPrefix"] == "20.65.41.84/30"
    pods = json.loads(kubectl(kc, "get", "pods", "-n", "shop", "-o", "json").stdout)["items"]
    notes = [
        p["metadata"].get("annotations", {}).get("kubernetes.azure.com/static-gateway-configuration") for p in pods
    ]
    assert notes == ["sgc-shop"] * 3
    nodes = json.loads(kubectl(kc, "get", "nodes", "-l", "kubernetes.azure.com/mode=gateway", "-o", "json").stdout)
    gw = nodes["items"]
    assert len(gw) == 2 and all(n["metadata"]["labels"]["kubernetes.azure.com/agentpool"] == "gwpool" for n in gw)
    assert all(
        {"key": "kubeegressgateway.azure.com/mode", "value": "true", "effect": "NoSchedule"} in n["spec"]["taints"]
        for n in gw
    )
    assert all(p["spec"]["nodeName"] not in {n["metadata"]["name"] for n in gw} for p in pods)
    srv, kc = make_lab("healthy")  # no egressGateway section: the CRD is not there
    r = kubectl(kc, "get", "staticgatewayconfigurations", "-A", check=False)
    assert r.returncode != 0 and "the server doesn't have a resource type" in r.stderr
