"""NodeLocal DNS's address comes from the node-local-dns pods' ``-localip`` argument.

A real pod shape (tests/fixtures/real/pods/node-local-dns.json, with a non-default
169.254.20.11) through parse_pod and the topology; the installer's discovery; and the
lab (nodeLocalDNSIP: 169.254.20.11) through the kube source into the DNS service's plan,
whose nodelocal rows target that address and answer.
"""

from __future__ import annotations

import copy

import pytest

from probes.agent.install import discover
from probes.agent.manifest import agent_args
from probes.config import KubeConfig
from probes.dns.probe import DnsOutcome
from probes.dns.resolvers import NODELOCAL_IP, ResolverOptions, resolvers_for
from probes.dns.service import DnsService, DnsSettings, wait_for
from probes.engine.store import Store
from probes.kube.connect import load
from probes.kube.model import node_vantage
from probes.kube.source import KubeSource
from probes.kube.topology import build_topology, local_ip, parse_pod
from probes.lab.dnsdemo import DnsDemo
from probes.lab.serve import start_embedded
from tests.support.fixture_arm import fixture

POD = fixture("pods/node-local-dns.json")


def _with_args(args: list[str]) -> dict:
    p = copy.deepcopy(POD)
    p["spec"]["containers"][0]["args"] = args
    return p


def test_the_pods_localip_argument_is_read():
    assert parse_pod(POD).local_ip == "169.254.20.11"
    assert parse_pod(_with_args(["-localip=169.254.25.10", "-conf", "/etc/Corefile"])).local_ip == "169.254.25.10"
    assert parse_pod(_with_args(["--localip", "169.254.20.12"])).local_ip == "169.254.20.12"
    assert parse_pod(_with_args(["-conf", "/etc/Corefile"])).local_ip == ""  # none given
    assert parse_pod(_with_args(["-localip", "__PILLAR__LOCAL__DNS__,10.0.0.10"])).local_ip == "10.0.0.10"
    assert parse_pod(_with_args(["-localip"])).local_ip == ""  # a flag without its value
    assert local_ip({"containers": "not a list"}) == ""


def test_resolvers_target_the_pods_address_per_node():
    a = parse_pod(POD)
    b = parse_pod(_with_args(["-localip", "169.254.20.10"]))
    b = type(b)(**{**{f: getattr(b, f) for f in b.__slots__}, "node": "other", "name": "node-local-dns-b"})
    topo = build_topology({}, cluster="c", nodelocal=[a], dns_service_ip="10.0.0.10")
    (nl,) = [r for r in resolvers_for(topo) if r.key == "nodelocal"]
    assert nl.address == "169.254.20.11" and nl.dest == ("169.254.20.11", 53)
    # two pods that disagree: each node's vantage gets its own pod's address
    topo2 = build_topology({}, cluster="c", nodelocal=[a, b], dns_service_ip="10.0.0.10")
    mine = resolvers_for(topo2, ResolverOptions(node="aks-nodepool1-31415926-vmss000002"))
    theirs = resolvers_for(topo2, ResolverOptions(node="other"))
    assert mine[0].address == "169.254.20.11" and theirs[0].address == "169.254.20.10"
    # pods that say nothing: the upstream default
    c = parse_pod(_with_args(["-conf", "/etc/Corefile"]))
    topo3 = build_topology({}, cluster="c", nodelocal=[c], dns_service_ip="10.0.0.10")
    assert resolvers_for(topo3)[0].address == NODELOCAL_IP


SCENARIO = """
description: NodeLocal DNS on a non-default local address
cluster:
  name: aks-lab
  subscriptionId: 4b6c1f2e-8d3a-4e5f-9a7b-1c2d3e4f5a6b
  resourceGroup: rg-aks-lab
  location: westeurope
  kubernetesVersion: 1.30.6
  networkPlugin: kubenet
  podCidr: 10.244.0.0/16
  nodeLocalDNS: true
  nodeLocalDNSIP: 169.254.20.11
pools:
  - name: nodepool1
    mode: System
    count: 2
"""


@pytest.fixture
def lab_file(tmp_path):
    p = tmp_path / "nodelocal-ip.yaml"
    p.write_text(SCENARIO)
    return str(p)


def test_lab_pods_carry_the_address_and_the_probes_target_it(lab_file):
    lab, kubeconfig = start_embedded(lab_file)
    store = Store()
    source = KubeSource(store, KubeConfig(kubeconfig=kubeconfig))
    demo = DnsDemo(lab.scenario)
    svc = DnsService(store, DnsSettings(interval=0.25, timeout=0.5, jitter=0.05), vantage_map=demo, poll=0.1)
    try:
        source.start()
        demo.start()
        svc.start()

        def nodelocal_answered() -> bool:
            keys = [k for k in svc.history.keys() if k[1] == "nodelocal"]
            stats = [svc.history.stats(k) for k in keys]
            return len(keys) >= 2 * 2 and all(s is not None and s.successes >= 1 for s in stats)

        assert wait_for(nodelocal_answered, 30), "the nodelocal rows did not answer"
        topo = store.snapshot().topology
        assert {p.local_ip for p in topo.nodelocal.values()} == {"169.254.20.11"}, "the lab's pods say -localip"
        plan = svc.plan()
        for vp in plan.vantages:
            if vp.vantage.name.startswith("node/"):
                (nl,) = [r for r in vp.resolvers if r.key == "nodelocal"]
                assert nl.address == "169.254.20.11", vp.vantage.name
        node = sorted(n.name for n in topo.nodes)[0]
        key = next(k for k in svc.history.keys() if k[0] == node_vantage(node) and k[1] == "nodelocal")
        st = svc.history.stats(key)
        assert st is not None and st.last.address == "169.254.20.11" and st.last.outcome is DnsOutcome.OK
    finally:
        svc.stop(3.0)
        demo.stop()
        source.stop(3.0)
        lab.stop()


def test_install_reads_the_address_from_the_cluster(lab_file):
    """`agent install` (and `manifest --from-cluster`) give the agent --nodelocal-ip from the pods."""
    lab, kubeconfig = start_embedded(lab_file)
    api, target = load(kubeconfig, "")
    try:
        facts, warnings = discover(api, target.server)
    finally:
        api.close()
        lab.stop()
    assert facts["nodelocal"] is True and facts["nodelocal_ip"] == "169.254.20.11", warnings
    assert facts["localdns"] is False, "no node carries the LocalDNS label"
    assert "--nodelocal-ip=169.254.20.11" in agent_args(nodelocal=True, nodelocal_ip=facts["nodelocal_ip"])
