"""The built-in demo scenarios, one line each: `--help`, the README and `check --help`
list them from here (a test keeps it in step with probes/lab/scenarios/)."""

from __future__ import annotations

BUILTIN: dict[str, str] = {
    "healthy": "kubenet, two pools (3 + 2 nodes), NodeLocal DNS, one public LoadBalancer: nothing wrong",
    "f1": "F1 kubenet route missing for userpool/1 (NetworkUnavailable, no route in the table)",
    "f2": "F2 the route of nodepool1/2 points at a wrong next hop",
    "f3": "F3 an orphaned route of a deleted node",
    "f4": "F4 NodeLocal DNS on nodepool1/1 drops every query (= dns-nodelocal-down)",
    "f5": "F5 CoreDNS down: kube-dns times out from everywhere",
    "f6": "F6 CoreDNS's upstream blocked: external names time out, cluster names resolve",
    "f7": "F7 external answers truncated (TC) and the TCP retry fails",
    "f8": "F8 egress to mcr.microsoft.com:443 dropped from every node (= egress-nsg-443)",
    "f9": "F9 a user route blackholes 13.107.0.0/16 (next hop None)",
    "f10": "F10 SNAT ports exhausted on nodepool1/1 (= snat-exhaustion)",
    "f11": "F11 50 nodes: one surge node halves every node's SNAT ports (= snat-tier-drop)",
    "f12": "F12 LoadBalancer service default/web stays <pending> with a cloud-provider error",
    "f13": "F13 flat Azure CNI /24 subnet with too few free addresses for an upgrade surge",
    "f14": "F14 NodeLocal DNS on userpool/0 answers in ~200 ms, elsewhere in under 1 ms",
    "f15": "F15 one of the two CoreDNS replicas drops every query",
    "f16": "F16 a CoreDNS replica NotReady in the API but still answering",
    "f17": "F17 external names get no answer from userpool/1 only; cluster names resolve",
    "f17-servfail": "F17 external names get SERVFAIL from userpool/1 only",
    "f17-nxdomain": "F17 external names are NXDOMAIN from userpool/1 only",
    "f18": "F18 nodepool1/1 at ~94 % of its SNAT ports and rising, no failures yet",
    "f19": "F19 30 % of UDP queries to the kube-dns ClusterIP lost (the 5 s delay race)",
    "f20": "F20 AKS LocalDNS silent on nodepool1/2 while kube-dns answers",
    "f21": "F21 shop's default-deny egress allows DNS only to the kube-dns pods while NodeLocal is in use",
    "f21-calico": "F21 with Calico: a GlobalNetworkPolicy denies UDP 53 to NodeLocal before the allow",
    "f22": "F22 www.contoso.com resolves to an old IP, shop.contoso.com not at all (ingress-nginx)",
    "f23": "F23 cert-manager: a certificate expiring, one expired, one stuck on its DNS-01 challenge",
    "f24": "F24 an NSG rule on the node NICs denies TCP 443 to mcr.microsoft.com",
    "f24-probe": "F24 ingress-nginx's LB probed HTTP GET / (nginx answers 404); an ETP Local service with no ready endpoint",
    "f25": "F25 the VNet's custom DNS servers do not answer",
    "f26": "F26 the hub peering is Disconnected and the DNS servers are in the hub",
    "f27": "F27 behind a hub firewall (userDefinedRouting) that drops all egress",
    "f27-proxy": "F27 behind an HTTP proxy (httpProxyConfig) that answers 403 to every CONNECT",
    "dns-nodelocal-down": "NodeLocal DNS down on nodepool1/1, its pod NotReady (F4)",
    "egress-nsg-443": "SYNs to mcr.microsoft.com:443 dropped from every node, port 80 open (F8)",
    "egress-one-node": "every internet egress check from userpool/0 times out, other nodes fine",
    "snat-exhaustion": "nodepool1/1 ramps to all 1,024 SNAT ports and fails connections (F10)",
    "snat-tier-drop": "50 nodes at the top of the 1,024-port tier; a surge halves it (F11)",
    "overlay": "Azure CNI overlay with the Cilium dataplane, three pools, managed LocalDNS",
    "azure-cni": "flat Azure CNI: pods take VNet IPs, one pending internal LoadBalancer",
    "ingress": "healthy ingress path: ingress-nginx and app routing, cert-manager, an internal LB with PLS",
    "udr-firewall": "healthy behind a hub firewall, custom VNet DNS over a Connected peering",
    "http-proxy": "healthy: egress through an HTTP proxy that tunnels, noProxy names go direct",
    "upgrade": "healthy, mid node-image upgrade: a surge node joins, an old one drains and leaves",
    "mixed-os": "overlay, a Linux system pool and a Windows user pool: Windows nodes run no agent, not failing",
    "vmas": "legacy availability-set cluster: standalone VMs, no scale set (SNAT joined by IP)",
    "egress-gateway": "healthy: a static egress gateway pool, two gateway configurations, annotated pods",
    "sgc-unprovisioned": "a static gateway configuration never provisioned; pods annotated for one their namespace lacks",
}


def help_text(columns: int = 78) -> str:
    """The scenario list for `--help`, in `columns` (argparse keeps the lines with
    RawDescriptionHelpFormatter)."""
    # lazy: textwrap only for --help
    import textwrap

    width = max(len(n) for n in BUILTIN)
    indent = " " * (width + 4)
    return "\n".join(
        textwrap.fill(f"  {name:<{width}}  {what}", columns, subsequent_indent=indent, break_on_hyphens=False)
        for name, what in BUILTIN.items()
    )
