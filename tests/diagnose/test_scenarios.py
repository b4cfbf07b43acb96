"""Every FAULTS row has a built-in scenario `fN`: `check` names it, with its severity,
within 2 cycles; `healthy` names nothing above info. The checks run in a few threads
(each is a subprocess of ~3–6 s)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.diagnose.test_check import check

EXPECTED = {  # scenario -> (FAULTS id, severity)
    "f1": ("F1", "critical"),
    "f2": ("F2", "critical"),
    "f3": ("F3", "warning"),
    "f4": ("F4", "critical"),
    "f5": ("F5", "critical"),
    "f6": ("F6", "critical"),
    "f7": ("F7", "warning"),
    "f8": ("F8", "critical"),
    "f9": ("F9", "critical"),
    "f10": ("F10", "critical"),
    "f11": ("F11", "warning"),
    "f12": ("F12", "warning"),
    "f13": ("F13", "warning"),
    "f14": ("F14", "warning"),
    "f15": ("F15", "warning"),
    "f16": ("F16", "warning"),
    "f17": ("F17", "critical"),
    "f17-servfail": ("F17", "critical"),
    "f17-nxdomain": ("F17", "critical"),
    "f18": ("F18", "critical"),
    "f19": ("F19", "warning"),
    "f20": ("F20", "critical"),
    "f21": ("F21", "warning"),
    "f22": ("F22", "critical"),
    "f23": ("F23", "critical"),
    "f24": ("F24", "critical"),
    "f24-probe": ("F24", "critical"),
    "f25": ("F25", "critical"),
    "f26": ("F26", "critical"),
    "f27": ("F27", "critical"),
    "f27-proxy": ("F27", "critical"),
}


# every rule within 2 cycles: two cluster names per resolver (probes.dns.resolvers) give
# the slow/replica rules four samples per node in two cycles, and the agents probe each
# CoreDNS pod from the first read on (probes.agent.hint)
CYCLES: dict[str, int] = {}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    names = [
        "f11",
        *[n for n in EXPECTED if n != "f11"],
        "f21-calico",
        "healthy",
        "overlay",
        "udr-firewall",
        "http-proxy",
        "ingress",
        "egress-gateway",
        "sgc-unprovisioned",
    ]  # the 50-node one first

    def one(name: str) -> dict:
        # F14 is a statistical verdict: two cycles of two cluster names give four answers per
        # node; four slow of four is beyond a healthy 5 % at 10^-3 (probes/diagnose/stats.py)
        cycles = CYCLES.get(name, 2)
        out = check(
            ["--demo", "--scenario", name, "--interval", "1", "--cycles", str(cycles), "--output", "json"],
            Path(tmp_path_factory.mktemp(name)),
        )
        doc = json.loads(out.stdout)
        doc["_rc"] = out.returncode
        return doc

    tmp_path_factory.getbasetemp()  # made once here: the threads' first mktemp calls raced to create it
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="scenario-check") as pool:
        return dict(zip(names, pool.map(one, names)))


@pytest.mark.parametrize("scenario", sorted(EXPECTED, key=lambda s: (int(s[1:].split("-")[0]), s)))
def test_fault_scenario_names_its_finding(results, scenario):
    fault, severity = EXPECTED[scenario]
    doc = results[scenario]
    found = [(f["fault"], f["severity"]) for f in doc["findings"]]
    assert (fault, severity) in found, (scenario, found)
    assert (
        doc["_rc"]
        == {"critical": 2, "warning": 1}[max((s for _, s in found), key=["info", "warning", "critical"].index)]
    )


def test_healthy_names_nothing_above_info(results):
    doc = results["healthy"]
    assert doc["_rc"] == 0, doc["findings"]
    assert all(f["severity"] == "info" for f in doc["findings"])
    routes = doc["observations"]["routes"]
    assert routes["state"] == "ok" and routes["route_count"] == 5
    assert {n["state"] for n in routes["nodes"]} == {"present"} and len(routes["nodes"]) == 5
    assert routes["subnet"]["prefix"] == "10.224.0.0/16" and routes["subnet"]["ip_configurations"] == 5


def test_healthy_ingress_names_nothing_above_info(results):
    doc = results["ingress"]
    assert doc["_rc"] == 0, doc["findings"]
    assert all(f["severity"] == "info" for f in doc["findings"])
    assert not {"F22", "F23", "F24"} & {f["fault"] for f in results["healthy"]["findings"]}


def test_ingress_findings_name_what_is_wrong(results):
    f22 = {f["subject"]: f for f in results["f22"]["findings"] if f["fault"] == "F22"}
    assert set(f22) == {"host/shop.contoso.com", "host/www.contoso.com"}
    assert "20.31.99.7" in f22["host/www.contoso.com"]["evidence"]["answers"]
    f23 = {f["rule"] for f in results["f23"]["findings"] if f["fault"] == "F23"}
    assert f23 == {
        "certificate-expired",
        "certificate-expiring",
        "certificate-not-ready",
        "acme-challenge-stuck",
        "served-certificate-expired",  # checkout: its Certificate is Ready, the controller serves an expired one
    }
    f24 = {f["rule"]: f["subject"] for f in results["f24-probe"]["findings"] if f["fault"] == "F24"}
    assert f24 == {
        "lb-probe-path": "service/ingress-nginx/ingress-nginx-controller",
        "lb-probe-no-local-endpoint": "service/default/api",
    }
    # the ingress rules only where staged
    for name in ("healthy", "f12", "f24", "udr-firewall"):
        assert not {"F22", "F23"} & {f["fault"] for f in results[name]["findings"]}, name
        assert not {f["rule"] for f in results[name]["findings"]} & {"lb-probe-path", "lb-probe-no-local-endpoint"}


def _https(doc: dict, host: str) -> list[dict]:
    return next(h["https"] for h in doc["observations"]["ingress"]["hosts"] if h["host"] == host)


def test_the_https_probe_joins_the_ingress_findings(results):
    """What the hosts' endpoints served, from the HTTPS probe against the lab's TLS
    listeners: in observations.ingress and in F22/F23/F24's words and evidence."""
    ok = results["ingress"]["observations"]["ingress"]
    assert len(ok["hosts"]) == 4 and ok["https"]["enabled"] and ok["https"]["probed"] == 4
    for h in ok["hosts"]:
        assert [x["outcome"] for x in h["https"]] == ["valid"], h
        assert h["https"][0]["issuer"] == "aksnet-top lab issuing CA" and h["https"][0]["days_left"] > 40
    f23 = {f["subject"]: f for f in results["f23"]["findings"] if f["fault"] == "F23"}
    served = f23["host/checkout.contoso.com"]
    assert served["severity"] == "critical" and "checkout/checkout-tls is Ready until" in served["cause"]
    assert "expired 2 d ago" in served["evidence"]["served"]
    # where cert-manager says the same, its finding carries what is served
    assert "expired 2 d ago" in f23["certificate/www/www-tls"]["evidence"]["served"]
    assert "expiring in 5.0 d" in f23["certificate/api/api-tls"]["evidence"]["served"]
    assert "Fake Certificate" in f23["certificate/shop/shop-tls"]["evidence"]["served"]
    assert [x["outcome"] for x in _https(results["f23"], "portal.contoso.com")] == ["valid"]
    # F22: the address clients get times out, the controller's own serves the host
    www = next(f for f in results["f22"]["findings"] if f["subject"] == "host/www.contoso.com")
    assert www["evidence"]["https_from_here"].startswith("20.31.99.7:443: timeout; 20.31.150.10:443: valid")
    assert [x["address"] for x in _https(results["f22"], "www.contoso.com")] == ["20.31.99.7", "20.31.150.10"]
    # F24: the controller's load balancer forwards nothing: the handshakes time out
    path = next(f for f in results["f24-probe"]["findings"] if f["rule"] == "lb-probe-path")
    assert "shop.contoso.com @ 20.31.150.10:443: timeout" in path["evidence"]["https_from_here"]


def test_healthy_udr_firewall_names_nothing_above_info(results):
    doc = results["udr-firewall"]
    assert doc["_rc"] == 0, doc["findings"]
    assert all(f["severity"] == "info" for f in doc["findings"])
    assert {f["rule"] for f in doc["findings"]} <= {"udr-default-route"}


def test_healthy_http_proxy_names_nothing_above_info(results):
    doc = results["http-proxy"]
    assert doc["_rc"] == 0, doc["findings"]
    assert all(f["severity"] == "info" for f in doc["findings"])
    rows = [r for r in doc["observations"]["egress"] if r["vantage"].startswith("node/")]
    via = {r["target"] for r in rows if r.get("proxy") == "proxy.hub.example:3128"}
    direct = {r["target"] for r in rows if not r.get("proxy")}
    assert "mcr.microsoft.com:443" in via and "login.microsoftonline.com:443" in direct  # noProxy
    assert all(r["last_outcome"] == "open" for r in rows if r["target"] in via)


def test_f27_proxy_names_the_proxy_and_its_status(results):
    doc = results["f27-proxy"]
    f27 = [f for f in doc["findings"] if f["fault"] == "F27"]
    assert [f["subject"] for f in f27] == ["proxy/proxy.hub.example:3128"]
    ev = f27[0]["evidence"]
    assert (ev["outcome"], ev["status"]) == ("proxy-refused", 403)
    assert "answers 403 to CONNECT" in f27[0]["cause"]
    assert ev["http_proxy_config"].startswith("http://proxy.hub.example:3128")
    # the proxy's refusals are not F8's (an NSG or firewall), nor the firewall half's
    assert not [f for f in doc["findings"] if f["fault"] == "F8" or f["rule"] == "firewall-drops-egress"]


def test_f8_joins_the_nsg_evaluation(results):
    """F24's NSG rule is named in the F8 finding; without an NSG rule, F8 says it is not an NSG."""
    f8 = next(f for f in results["f24"]["findings"] if f["fault"] == "F8")
    assert "rule deny-mcr-443 (priority 200, nic level) denies TCP 443" in f8["evidence"]["nsg"]
    f24 = next(f for f in results["f24"]["findings"] if f["fault"] == "F24")
    assert (f24["evidence"]["rule"], f24["evidence"]["priority"], f24["evidence"]["level"]) == (
        "deny-mcr-443",
        200,
        "nic",
    )
    assert f24["evidence"]["nsg"].startswith("aks-agentpool-") and f24["subject"] == "target/mcr.microsoft.com:443"
    f8 = next(f for f in results["f8"]["findings"] if f["fault"] == "F8")
    assert f8["evidence"]["nsg"].startswith("not an NSG") and "F24" not in {
        f["fault"] for f in results["f8"]["findings"]
    }
    f8 = [f for f in results["f27"]["findings"] if f["fault"] == "F8"]
    assert f8 and all("firewall/appliance 10.50.1.4" in f["evidence"]["nsg"] for f in f8)


def test_path_findings_name_what_depends_on_it(results):
    f26 = next(f for f in results["f26"]["findings"] if f["fault"] == "F26")
    assert f26["subject"] == "peering/to-hub" and "DNS server 10.50.0.4" in f26["evidence"]["used_by"]
    f25 = next(f for f in results["f25"]["findings"] if f["fault"] == "F25")
    assert f25["evidence"]["dns_servers"] == "10.224.10.4, 10.224.10.5"
    f27 = next(f for f in results["f27"]["findings"] if f["fault"] == "F27")
    assert f27["subject"] == "firewall/10.50.1.4"
    # F24-F27 only where staged
    for name in ("healthy", "udr-firewall", "http-proxy", "f6", "f8", "f9"):
        assert not {"F24", "F25", "F26", "F27"} & {f["fault"] for f in results[name]["findings"]}, name


def test_route_observations_in_the_json(results):
    r = results["f2"]["observations"]["routes"]
    stale = [n for n in r["nodes"] if n["state"] == "stale"]
    assert (
        len(stale) == 1
        and stale[0]["route_next_hop"] == "10.224.0.99"
        and stale[0]["expected_next_hop"] != "10.224.0.99"
    )
    r = results["f3"]["observations"]["routes"]
    assert [x["kind"] for x in r["routes"] if x["name"].endswith("vmss000009")] == ["orphan"]
    crit = [f for f in results["f1"]["findings"] if f["fault"] == "F1"]
    assert crit[0]["evidence"]["prefix"] == "10.244.4.0/24" and crit[0]["evidence"]["expected_next_hop"] == "10.224.0.8"
    assert "NoRouteCreated" in crit[0]["evidence"]["condition"]
    # and from the node itself (its agent), kube-dns — CoreDNS on the other nodes — is lost
    assert crit[0]["evidence"]["kube_dns_from_node"].startswith("100% lost")
    node = crit[0]["subject"].removeprefix("node/")
    rows = [r for r in results["f1"]["observations"]["dns"] if r["resolver"] == "kube-dns"]
    assert {r["vantage"] for r in rows if r["loss_pct"] == 100} == {f"node/{node}"}


def test_overlay_names_nothing_above_info(results):
    doc = results["overlay"]
    assert doc["_rc"] == 0 and all(f["severity"] == "info" for f in doc["findings"]), doc["findings"]


@pytest.mark.parametrize("scenario", ["f14", "f15", "f16", "f17", "f17-servfail", "f17-nxdomain", "f18", "f20"])
def test_partial_faults_name_their_place(results, scenario):
    """F14–F20 name a node or a pod, never only "the cluster"."""
    fault = EXPECTED[scenario][0]
    subjects = [f["subject"] for f in results[scenario]["findings"] if f["fault"] == fault]
    assert subjects and all(s.startswith(("node/", "pod/kube-system/coredns-")) for s in subjects), subjects
    assert all(f["next_step"] for f in results[scenario]["findings"] if f["fault"] == fault)


@pytest.mark.parametrize(
    "scenario, kind, words",
    [
        ("f17", "no answer (timeout)", "no answer (timeout)"),
        ("f17-servfail", "SERVFAIL", "SERVFAIL"),
        ("f17-nxdomain", "NXDOMAIN", "NXDOMAIN"),
    ],
)
def test_f17_names_the_kind_of_dns_failure(results, scenario, kind, words):
    """userpool/1's upstream (and the name resolution of its egress checks) fails with a
    different kind in each scenario: F17 names userpool/1 and the kind the probes read, and
    the egress rows from that node carry it; nothing else is raised above info."""
    doc = results[scenario]
    (f,) = [f for f in doc["findings"] if f["fault"] == "F17"]
    assert f["subject"].startswith("node/aks-userpool-") and f["subject"].endswith("vmss000001")
    assert f["evidence"]["failure"] == kind and words in f["cause"], f
    assert [x["fault"] for x in doc["findings"] if x["severity"] != "info"] == ["F17"]
    want = {"no answer (timeout)": "dns-timeout", "SERVFAIL": "dns-servfail", "NXDOMAIN": "dns-nxdomain"}[kind]
    bad = f["subject"]  # node/<name>, as the egress rows' vantage
    outcomes = {r["last_outcome"] for r in doc["observations"]["egress"] if r["vantage"] == bad}
    assert want in outcomes and not {o for o in outcomes if o.startswith("dns-")} - {want}, outcomes
    elsewhere = {r["last_outcome"] for r in doc["observations"]["egress"] if r["vantage"] != bad}
    assert not {o for o in elsewhere if o.startswith("dns-")}, elsewhere


def test_f21_names_namespace_policy_protocols_and_target(results):
    """The default-deny of shop allows only the kube-dns pods while NodeLocal is in use;
    payments' policy allows the node-level addresses too: only shop is named."""
    (f,) = [f for f in results["f21"]["findings"] if f["fault"] == "F21"]
    assert f["subject"] == "networkpolicy/shop/default-deny" and f["severity"] == "warning"
    assert "UDP 53 and TCP 53" in f["cause"] and "NodeLocal DNS 169.254.20.10" in f["cause"]
    assert '"cidr":"169.254.20.10/32"' in f["next_step"] and "kubectl -n shop patch networkpolicy" in f["next_step"]
    (g,) = [f for f in results["f21-calico"]["findings"] if f["fault"] == "F21"]
    assert g["subject"] == "globalnetworkpolicy/deny-link-local-udp@shop" and "(UDP 53)" in g["cause"]
    assert "before egress rule #1" in g["next_step"]
    assert results["f21-calico"]["_rc"] == 1
    for name in ("healthy", "overlay", "udr-firewall", "f4", "f20"):
        assert "F21" not in {f["fault"] for f in results[name]["findings"]}, name


GATEWAY_RULES = {"sgc-missing", "sgc-not-provisioned", "sgc-pool-not-ready"}


def test_static_egress_gateway_findings(results):
    """The unprovisioned configuration and the pods annotated for one their namespace lacks,
    within 2 cycles, each naming the place and the next step; the healthy gateway raises
    nothing above info, and no scenario without the CRD raises a gateway rule."""
    doc = results["sgc-unprovisioned"]
    got = {f["rule"]: f for f in doc["findings"] if f["rule"] in GATEWAY_RULES}
    assert set(got) == {"sgc-missing", "sgc-not-provisioned"}, doc["findings"]
    unprov = got["sgc-not-provisioned"]
    assert (unprov["subject"], unprov["severity"]) == ("gateway/payments/sgc-payments", "critical")
    assert unprov["evidence"]["gateway_nodepool"] == "gwpool" and "gwpool" in unprov["cause"]
    assert "`kubectl describe staticgatewayconfiguration -n payments sgc-payments`" in unprov["next_step"]
    missing = got["sgc-missing"]
    assert missing["subject"] == "gateway/batch/sgc-shop" and missing["evidence"]["found_in"] == "shop"
    assert (
        missing["cause"].startswith("2 pods in batch")
        and "kubectl get staticgatewayconfigurations -A" in (missing["next_step"])
    )
    assert doc["_rc"] == 2
    healthy = results["egress-gateway"]
    assert healthy["_rc"] == 0, healthy["findings"]
    assert all(f["severity"] == "info" for f in healthy["findings"])
    for name in ("healthy", "overlay", "ingress", "f21", "egress-gateway"):
        assert not GATEWAY_RULES & {f["rule"] for f in results[name]["findings"]}, name
