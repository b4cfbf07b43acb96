"""Which subscription and node resource group the Azure source asks for, from node objects
shaped like real AKS nodes (trimmed from published node dumps; ids and names changed)."""

from __future__ import annotations

import pytest

from probes.azure.service import AzureSettings, identify, scope_of
from probes.kube.topology import parse_node

SUB = "5d1c0f3e-9a8b-4c7d-8e6f-0a1b2c3d4e5f"
LONG_RG = "MC_rg-development-westeurope_aks-development-westeurope_westeurope"  # 66 characters


def aks_label(value: str) -> str:
    """What AKS writes into kubernetes.azure.com/cluster: 63 characters at most, and a cut
    that ends in '_' ends in 'z' (a label value must end in an alphanumeric)."""
    cut = value[:63]
    return cut[:-1] + "z" if cut.endswith("_") else cut


def node(label: str, provider_id: str) -> dict:
    return {
        "metadata": {
            "name": "aks-default-11112222-vmss000000",
            "labels": {
                "kubernetes.azure.com/cluster": label,
                "kubernetes.azure.com/agentpool": "default",
                "kubernetes.azure.com/podnetwork-type": "overlay",
            },
        },
        "spec": {"providerID": provider_id},  # overlay: no podCIDR
        "status": {"addresses": [{"type": "InternalIP", "address": "10.224.0.4"}]},
    }


def vmss_id(sub: str, rg: str) -> str:
    sub_part = f"subscriptions/{sub}/" if sub else "subscriptions/"
    return (
        f"azure:///{sub_part}resourceGroups/{rg}/providers/Microsoft.Compute/"
        "virtualMachineScaleSets/aks-default-11112222-vmss/virtualMachines/0"
    )


def test_a_cut_cluster_label_still_names_the_whole_resource_group():
    label = aks_label(LONG_RG)
    assert len(label) == 63 and label.endswith("_westeur")
    n = parse_node(node(label, vmss_id(SUB, LONG_RG.lower())))
    assert identify([n], AzureSettings()) == (SUB, LONG_RG.lower())


def test_the_z_rule_of_a_cut_ending_in_underscore():
    rg = "MC_" + "r" * 59 + "_x_westeurope"  # the 63rd character is '_'
    label = aks_label(rg)
    assert label.endswith("z") and len(label) == 63
    n = parse_node(node(label, vmss_id(SUB, rg)))
    assert identify([n], AzureSettings())[1] == rg


def test_label_spelling_kept_when_it_is_whole():
    # Windows node dump: label MC_…, providerID mc_… (ARM names are case-insensitive)
    n = parse_node(node("MC_rg-aks-japaneast", vmss_id(SUB, "mc_rg-aks-japaneast")))
    assert identify([n], AzureSettings()) == (SUB, "MC_rg-aks-japaneast")


def test_a_provider_id_without_subscription_gives_the_group_and_no_subscription():
    label = aks_label(LONG_RG)
    n = parse_node(node(label, vmss_id("", LONG_RG.lower())))
    assert identify([n], AzureSettings()) == ("", LONG_RG.lower())


def test_settings_win_and_the_label_alone_is_never_a_resource_group():
    n = parse_node(node("MC_rg_c_weu", ""))
    assert identify([n], AzureSettings()) == ("", "")  # no providerID: the source waits, asks for settings
    assert identify([n], AzureSettings(subscription="s", node_resource_group="g")) == ("s", "g")


@pytest.mark.parametrize(
    "pid,expected",
    [
        (vmss_id(SUB, "mc_a_b_c"), (SUB, "mc_a_b_c")),
        ("AZURE:///SUBSCRIPTIONS/" + SUB.upper() + "/RESOURCEGROUPS/MC_X/providers/x", (SUB.upper(), "MC_X")),
        ("", ("", "")),
        ("garbage", ("", "")),
    ],
)
def test_scope_of(pid, expected):
    assert scope_of(pid) == expected
