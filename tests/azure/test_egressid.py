"""Egress identity: which public IP(s) the nodes leave with, from ARM's answers — pure on
real REST shapes (azure-rest-api-specs examples), and read from the lab ARM endpoint
through the real azure-mgmt-network client."""

from __future__ import annotations

import dataclasses
import time

import pytest

from probes.azure.egressid import (
    Firewall,
    PublicIp,
    identity,
    nat_ip_ids,
    outbound_ip_ids,
    parse_firewall,
    parse_public_ip,
)
from probes.azure.path import PathData
from probes.azure.routes import Route
from tests.snat.snat_helpers import lab_store, service, start_lab
from tests.support.leaks import guard_threads


@pytest.fixture(autouse=True)
def _no_leaks():
    yield from guard_threads()


def read_identity(arm, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    """The path after the cycle that follows the first read (the public IPs step's)."""
    svc = service(arm, lab_store(arm.scenario))
    svc.start()
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            p = svc.path()
            if p is not None and p.public_ips_read:
                return p
            if p is not None:
                assert p.egress_identity().detail.endswith("public IP not read yet") or p.egress_identity().known
                svc.refresh_now()
            time.sleep(0.02)
        raise AssertionError(f"no public IPs; report: {svc.report()}")
    finally:
        svc.stop(3.0)


SUB = "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network"
PIP1, PIP2 = f"{SUB}/publicIPAddresses/ip01", f"{SUB}/publicIPAddresses/ip02"
IPS = (PublicIp(PIP1, "ip01", "40.85.154.247"), PublicIp(PIP2, "ip02", "40.85.154.248"))

# PublicIpAddressListAll.json (2024-07-01), one entry
PIP_BODY = {
    "name": "ip01",
    "id": PIP1,
    "properties": {
        "ipAddress": "40.85.154.247",
        "ipConfiguration": {"id": f"{SUB}/loadBalancers/testLb/frontendIPConfigurations/LoadBalancerFrontEnd"},
    },
}
# AzureFirewallGet.json (2024-07-01), trimmed to the ipConfigurations
FW_BODY = {
    "name": "azurefirewall",
    "id": f"{SUB}/azureFirewalls/azurefirewall",
    "properties": {
        "ipConfigurations": [
            {
                "name": "azureFirewallIpConfiguration",
                "properties": {
                    "privateIPAddress": "10.0.0.0",
                    "subnet": {"id": f"{SUB}/virtualNetworks/vnet2/subnets/AzureFirewallSubnet"},
                    "publicIPAddress": {"id": f"{SUB}/publicIPAddresses/pipName"},
                },
            }
        ]
    },
}


def test_parsers_on_the_real_shapes():
    p = parse_public_ip(PIP_BODY)
    assert (p.name, p.ip) == ("ip01", "40.85.154.247") and p.attached_to.endswith("LoadBalancerFrontEnd")
    fw = parse_firewall(FW_BODY)
    assert fw.private_ips == ("10.0.0.0",) and fw.public_ip_ids == (f"{SUB}/publicIPAddresses/pipName",)
    natgw = {
        "properties": {"publicIpAddresses": [{"id": PIP1}], "publicIpPrefixes": [{"id": f"{SUB}/publicIPPrefixes/p1"}]}
    }
    assert nat_ip_ids(natgw) == (PIP1, f"{SUB}/publicIPPrefixes/p1")
    lb = {
        "properties": {
            "frontendIPConfigurations": [
                {"id": "/lb/fe/a", "properties": {"publicIPAddress": {"id": PIP1}}},
                {"id": "/lb/fe/b", "properties": {"publicIPPrefix": {"id": f"{SUB}/publicIPPrefixes/p1"}}},
                {"id": "/lb/fe/inbound", "properties": {"publicIPAddress": {"id": PIP2}}},
            ]
        }
    }
    rule = {"properties": {"frontendIPConfigurations": [{"id": "/LB/fe/a"}, {"id": "/lb/fe/b"}]}}
    assert outbound_ip_ids(lb, rule) == (PIP1, f"{SUB}/publicIPPrefixes/p1")  # not the inbound frontend
    assert outbound_ip_ids(lb, None) == ()


def test_identity_follows_the_outbound_type_and_the_default_route():
    lb = identity(("Internet", ""), "loadBalancer", (PIP1, PIP2), (), IPS, None)
    assert (lb.via, lb.ips, lb.known) == ("LB", ("40.85.154.247", "40.85.154.248"), True)
    assert lb.short() == "leaves via LB 40.85.154.247 (+1)"
    nat = identity(("Internet", ""), "managedNATGateway", (PIP1,), (PIP2,), IPS, None)
    assert nat.short() == "leaves via NAT gateway 40.85.154.248"
    fw = Firewall("/fw", "hub-fw", ("10.50.1.4",), (PIP1,))
    udr = identity(("VirtualAppliance", "10.50.1.4"), "userDefinedRouting", (), (), IPS, fw)
    assert udr.short() == "leaves via firewall 40.85.154.247" and "hub-fw" in udr.detail
    other = identity(("VirtualAppliance", "10.50.9.9"), "userDefinedRouting", (), (), IPS, fw)
    assert not other.known and other.short() == "leaves via firewall 10.50.9.9, public IP unknown"
    none = identity(("None", ""), "loadBalancer", (PIP1,), (), IPS, None)
    assert none.via == "none" and none.short().startswith("no way out")
    unread = identity(("Internet", ""), "loadBalancer", (PIP1,), (), (), None)
    assert not unread.known and unread.short() == "leaves via LB, public IP unknown"


def test_path_identity_uses_the_user_default_route():
    p = PathData(
        vnet_id="/v",
        outbound_type="loadBalancer",
        lb_ip_ids=(PIP1,),
        public_ips=IPS,
        routes=(Route("to-fw", "0.0.0.0/0", "VirtualAppliance", "10.50.1.4"),),
    )
    assert p.egress_identity().short() == "leaves via firewall 10.50.1.4, public IP unknown"
    assert PathData(vnet_id="/v", lb_ip_ids=(PIP1,), public_ips=IPS).egress_identity().ips == ("40.85.154.247",)
    # before the public IPs were read: said so, not "unknown"
    early = PathData(vnet_id="/v", lb_ip_ids=(PIP1,)).egress_identity()
    assert not early.known and early.detail.endswith("public IP not read yet")
    late = PathData(vnet_id="/v", lb_ip_ids=(PIP1,), public_ips_read=True).egress_identity()
    assert late.detail.endswith("public IP unknown")


def test_lab_lb_outbound_ips_read_with_one_list():
    with start_lab("healthy") as arm:
        p = read_identity(arm)
        lists = [r for r in arm.requests.records() if r.resource == "publicips"]
    ident = p.egress_identity()
    assert ident.via == "LB" and ident.known and len(ident.ips) == 1, ident
    assert ident.ips[0].startswith("20.") and p.public_ips[0].attached_to.endswith(p.lb_ip_ids[0].rsplit("/", 1)[1])
    assert len(lists) == 1


def test_lab_nat_gateway_ips():
    with start_lab("healthy") as arm:
        arm.spec = dataclasses.replace(arm.spec, outbound_type="managedNATGateway", outbound_ips=2)
        p = read_identity(arm)
    ident = p.egress_identity()
    assert ident.via == "NAT gateway" and len(ident.ips) == 2 and ident.short().endswith("(+1)"), ident
