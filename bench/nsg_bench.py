"""Benchmark: NSG evaluation at scale, and the ARM calls the network path adds.

    .venv/bin/python bench/nsg_bench.py [--nodes 1000] [--targets 50] [--rules 200] [--repeat 5] [--no-arm]

1. Every (node, target) egress flow — 1,000 nodes × 50 targets by default — through both
   NSGs (NIC NSG, then the subnet's; 200 user rules each plus Azure's defaults), the way
   the rules ask for it (probes.azure.path.verdict). "cold": the first pass after a new
   rule-set version (compiling both NSGs included); "warm": the same flows again, cached
   per rule-set version (what every diagnosis after the first costs); "new etag": one NSG
   changed (a new etag), evaluated anew. Median of --repeat. A sample of flows is checked
   against a plain reading of the rules (sort by priority, first match), so the cache
   cannot buy speed with wrong answers.
2. The Azure source against the lab ARM endpoint for 60 simulated minutes (frozen clock,
   loopback): ARM calls per minute in steady state, all and the network path's alone.

The last line prints every figure as key=value. Target: ≤ 200 ms for the cold pass at
1,000 × 50 × 200; ≤ 2 path calls a minute.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.azure.nsg import DEFAULT_RULES, Flow, Nsg, SecurityRule, TagSpace, evaluate  # noqa: E402
from probes.azure.path import PathData, verdict  # noqa: E402

PORTS = (443, 80, 8443, 9000, 5671, 22, 53, 123)


def make_nsg(name: str, rules: int, etag: str, rnd: random.Random) -> Nsg:
    """`rules` user rules: deny/allow by destination prefix (single, lists, /8–/32), port
    ranges, source /24s of the node subnet, VirtualNetwork/Internet tags and a few tags that
    cannot be resolved offline (AzureCloud, Storage) at high priority numbers."""
    out = []
    for i in range(rules):
        prio = 100 + i * 10
        kind = i % 10
        access = "Deny" if rnd.random() < 0.4 else "Allow"
        src: tuple[str, ...] = ("*",)
        if kind == 0:
            dst: tuple[str, ...] = (f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.0/24",)
        elif kind == 1:
            dst = tuple(f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.0.0/16" for _ in range(3))
        elif kind == 2:
            dst = (f"{rnd.randint(1, 223)}.0.0.0/8",)
        elif kind == 3:
            dst = ("Internet",)
        elif kind == 4:
            dst = ("VirtualNetwork",)
        elif kind == 5:
            src, dst = (f"10.224.{rnd.randint(0, 15)}.0/24",), ("*",)
        elif kind == 6 and i > rules * 0.8:
            dst = (rnd.choice(["AzureCloud", "Storage"]),)
        else:
            dst = (str(ipaddress.IPv4Address(rnd.randint(0x14000000, 0x14FFFFFF))),)
        port = rnd.choice(PORTS)
        ports = (f"{port}-{port + rnd.randint(0, 50)}",) if kind % 3 == 0 else (str(port),)
        out.append(
            SecurityRule(f"r{i}", prio, "Outbound", access, rnd.choice(["*", "Tcp", "Udp"]), src, ("*",), dst, ports)
        )
    return Nsg(f"/x/{name}", name, etag, tuple(out) + DEFAULT_RULES)


def flows(nodes: int, targets: int, rnd: random.Random) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
    ns = [(f"aks-pool{i % 5}-1234-vmss{i:06d}", f"10.224.{i // 250}.{4 + i % 250}") for i in range(nodes)]
    ts = [(str(ipaddress.IPv4Address(rnd.randint(0x14000000, 0x14FFFFFF))), rnd.choice(PORTS)) for _ in range(targets)]
    return ns, ts


def one_pass(path: PathData, ns: list[tuple[str, str]], ts: list[tuple[str, int]]) -> tuple[float, float, int]:
    """(wall ms, CPU ms, flows denied): every node's flow to every target, as the rules ask."""
    pids = [
        (
            f"azure:///subscriptions/s/resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/"
            f"{name[:-6]}/virtualMachines/0",
            ip,
        )
        for name, ip in ns
    ]
    denied = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for pid, ip in pids:
        for addr, port in ts:
            if verdict(path, ip, pid, Flow("Outbound", ip, addr, port)).access == "Deny":
                denied += 1
    return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000, denied


def reference(nsg: Nsg, flow: Flow, tags: TagSpace) -> str:
    """The plain reading for rules without unresolvable tags: first match by priority."""
    ip, src = ipaddress.ip_address(flow.destination), ipaddress.ip_address(flow.source)
    vnet = [ipaddress.ip_network(p) for p in tags.virtual_network]
    private = [ipaddress.ip_network(p) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]

    def hit(a: ipaddress.IPv4Address | ipaddress.IPv6Address, specs: tuple[str, ...]) -> bool | None:
        for s in specs:
            k = s.lower()
            if k in ("*", "any"):
                return True
            if k == "virtualnetwork":
                if any(a in n for n in vnet):
                    return True
            elif k == "internet":
                if not any(a in n for n in vnet + private):
                    return True
            elif k in ("azurecloud", "storage"):
                return None
            elif a in ipaddress.ip_network(s, strict=False):
                return True
        return False

    for r in sorted((r for r in nsg.rules if r.direction == "Outbound"), key=lambda r: r.priority):
        if r.protocol not in ("*", flow.protocol):
            continue
        lo, _, hi = r.destination_ports[0].partition("-")
        if r.destination_ports[0] != "*" and not int(lo) <= flow.port <= int(hi or lo):
            continue
        s, d = hit(src, r.sources), hit(ip, r.destinations)
        if s is None or d is None:
            return "Unknown"
        if s and d:
            return r.access
    return "Deny"


def arm_calls(minutes: int = 60) -> tuple[float, float, int]:
    """(all calls a minute, path calls a minute, the first read's calls) over `minutes`
    simulated minutes against the lab (healthy scenario)."""
    from probes.lab.arm import LabArmServer, LabCredential
    from probes.lab.scenario import load_scenario
    from tests.snat.snat_helpers import T0, lab_store, service

    now = [T0]
    arm = LabArmServer(load_scenario("healthy"), clock=lambda: now[0]).start()
    svc = service(arm, lab_store(arm.scenario), clock=lambda: now[0], credential=LabCredential)
    svc.start()

    def wait(cond) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + 20
        while time.monotonic() < end and not cond(svc.report()):
            time.sleep(0.01)

    try:
        wait(lambda r: r.table is not None)
        first = len(arm.requests)
        path_kinds = ("nsgs", "nsg", "vnet", "vnets", "routetable", "publicips", "prefixes", "publicip", "firewall")
        path_first = sum(1 for r in arm.requests.records() if r.resource in path_kinds)
        for m in range(1, minutes + 1):
            now[0] = T0 + 60 * m
            wait(lambda r, m=m: r.updated == T0 + 60 * m)
        steady = len(arm.requests) - first
        path_steady = sum(1 for r in arm.requests.records() if r.resource in path_kinds) - path_first
        return steady / minutes, path_steady / minutes, path_first
    finally:
        svc.stop(3.0)
        arm.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-arm", action="store_true")
    a = ap.parse_args()
    rnd = random.Random(7)
    ns, ts = flows(a.nodes, a.targets, rnd)
    vmss = sorted({name[:-6].lower() for name, _ in ns})
    cold, warm, again, cold_cpu = [], [], [], []
    denied = 0
    for rep in range(a.repeat):
        nic = make_nsg("aks-agentpool-nsg", a.rules, f"nic-{rep}", random.Random(1))
        sub = make_nsg("subnet-nsg", a.rules, f"sub-{rep}", random.Random(2))
        path = PathData(
            vnet_id="/x/vnet", vnet_prefixes=("10.224.0.0/12",), nic_nsgs=tuple((v, nic) for v in vmss), subnet_nsg=sub
        )
        ms, cpu, denied = one_pass(path, ns, ts)
        cold.append(ms)
        cold_cpu.append(cpu)
        warm.append(one_pass(path, ns, ts)[0])
        sub2 = make_nsg("subnet-nsg", a.rules, f"sub-{rep}-changed", random.Random(3))
        path2 = PathData(vnet_id="/x/vnet", vnet_prefixes=("10.224.0.0/12",), nic_nsgs=path.nic_nsgs, subnet_nsg=sub2)
        again.append(one_pass(path2, ns, ts)[0])
    # correctness on a sample: the cached evaluator against the plain reading
    tags = TagSpace(vnet=("10.224.0.0/12",))
    nic = make_nsg("aks-agentpool-nsg", a.rules, "check", random.Random(1))
    wrong = checked = 0
    for _name, ip in rnd.sample(ns, min(50, len(ns))):
        for addr, port in ts:
            f = Flow("Outbound", ip, addr, port)
            want = reference(nic, f, tags)
            got = evaluate(nic, f, tags).access
            checked += 1
            if want != got and not (want == "Unknown" and got in ("Unknown", "Allow", "Deny")):
                wrong += 1
    flows_n = a.nodes * a.targets
    print(
        f"{flows_n} flows ({a.nodes} nodes × {a.targets} targets), NSGs of {a.rules} rules (+6 default) at both levels: "
        f"cold {statistics.median(cold):.0f} ms (CPU {statistics.median(cold_cpu):.0f} ms), warm {statistics.median(warm):.0f} ms, "
        f"after a new etag {statistics.median(again):.0f} ms; {denied} denied; {wrong}/{checked} sample verdicts differ "
        "from the plain reading"
    )
    figures = {
        "flows": flows_n,
        "cold_ms": round(statistics.median(cold), 1),
        "cold_cpu_ms": round(statistics.median(cold_cpu), 1),
        "warm_ms": round(statistics.median(warm), 1),
        "new_etag_ms": round(statistics.median(again), 1),
        "sample_wrong": wrong,
    }
    if not a.no_arm:
        per_min, path_per_min, path_first = arm_calls()
        print(
            f"ARM, 60 simulated minutes (healthy lab): {per_min:.2f} calls/min in steady state, of which the network "
            f"path {path_per_min:.2f}/min; the first read {path_first} path calls"
        )
        figures.update(
            arm_calls_per_min=round(per_min, 2), path_calls_per_min=round(path_per_min, 2), path_first=path_first
        )
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
