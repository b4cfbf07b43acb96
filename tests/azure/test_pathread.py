"""The network path read through the real azure-mgmt-network client from the lab ARM
endpoint: NSGs with their NIC association, the VNet's DNS servers and peerings, the
subnet NSG and route table, httpProxyConfig; a refused read is a note, never a stop."""

from __future__ import annotations

import time

import pytest

from probes.azure.nsg import Flow
from probes.azure.path import verdict
from probes.lab.arm import LabArmServer
from probes.lab.scenario import load_scenario
from tests.snat.snat_helpers import T0, lab_store, service, start_lab
from tests.support.leaks import guard_threads


@pytest.fixture(autouse=True)
def _no_leaks():
    yield from guard_threads()


def read_path(arm, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    svc = service(arm, lab_store(arm.scenario))
    svc.start()
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            p = svc.path()
            if p is not None and svc.report().state.value not in ("waiting", "connecting"):
                return p, svc.report()
            time.sleep(0.02)
        raise AssertionError(f"no path; report: {svc.report()}")
    finally:
        svc.stop(3.0)


def test_udr_firewall_path_in_real_shapes():
    with start_lab("udr-firewall") as arm:
        p, _ = read_path(arm)
    assert p.error == "" and p.notes == ()
    assert p.dns_servers == ("10.50.0.4", "10.50.0.5")
    assert [(x.name, x.state, x.remote_prefixes) for x in p.peerings] == [("to-hub", "Connected", ("10.50.0.0/16",))]
    assert p.vnet_prefixes == ("10.224.0.0/12",) and p.subnet_prefix == "10.224.0.0/16"
    assert p.subnet_nsg is not None and p.subnet_nsg.name == "aks-lab-subnet-nsg"
    assert {name for name, _ in p.nic_nsgs} == {
        n.vmss.lower() for n in lab_store(load_scenario("udr-firewall")).snapshot().topology.nodes
    }
    fw = next(r for r in p.routes if r.prefix == "0.0.0.0/0")
    assert (fw.next_hop_type, fw.next_hop_ip) == ("VirtualAppliance", "10.50.1.4")
    assert p.outbound_type == "userDefinedRouting"
    nic = p.nic_nsgs[0][1]
    assert any(r.name == "allow-dns-hub" and r.priority == 100 for r in nic.rules)
    assert sum(1 for r in nic.rules if r.default) == 6  # Azure's defaults, from the body


def test_f24_nsg_rule_denies_what_the_lab_answers_for_the_name():
    with start_lab("f24") as arm:
        p, _ = read_path(arm)
        mcr = arm.address_of("mcr.microsoft.com")
    node = lab_store(load_scenario("f24")).snapshot().topology.nodes[0]
    v = verdict(p, node.internal_ip, node.provider_id, Flow("Outbound", node.internal_ip, mcr, 443))
    assert v.deciding is not None and (v.deciding.rule, v.deciding.priority, v.deciding.level) == (
        "deny-mcr-443",
        200,
        "nic",
    )
    assert verdict(p, node.internal_ip, node.provider_id, Flow("Outbound", node.internal_ip, mcr, 80)).access == "Allow"


def test_refused_nsg_read_is_a_note_and_snat_goes_on():
    with start_lab("healthy") as arm:
        arm.faults.add(r"/networkSecurityGroups$", status=403)
        p, report = read_path(arm)
    assert any(n.startswith("nsgs:") and "Microsoft.Network/networkSecurityGroups/read" in n for n in p.notes)
    assert p.nic_nsgs == () and p.vnet_id  # the VNet was still read
    assert report.state.value == "live"


def test_proxy_config_from_the_managed_cluster():
    sc = load_scenario("healthy")
    from probes.lab.networkspec import NetworkLabSpec

    sc.extra["network"] = NetworkLabSpec(http_proxy="http://10.50.2.4:3128", no_proxy=("10.0.0.0/8",))
    with LabArmServer(sc, clock=lambda: T0).start() as arm:
        p, _ = read_path(arm)
    assert p.http_proxy == "http://10.50.2.4:3128" and p.no_proxy == ("10.0.0.0/8",) and p.proxy
