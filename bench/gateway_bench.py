"""Static egress gateway benchmark: what reading the annotated pods costs at cluster scale.

    .venv/bin/python bench/gateway_bench.py [--nodes 5000] [--repeat 3]

Pods cannot be selected by annotation, so where the StaticGatewayConfiguration CRD is served
the Kubernetes source lists and watches every pod and keeps only the annotated ones
(probes.kube.kinds GATEWAY_KINDS). Two figures:

1. pure CPU: filing N pod objects as the reflector does (object check + route) from one page
   of JSON, where none is annotated (the common case: the cost of looking), and where 5 % are;
   microseconds per pod, median of --repeat.
2. against the lab (`egress-gateway` scaled to --nodes, its daemon pods on every node): a fresh
   KubeSource running only the gateway kinds, from start to the annotated pods' first list
   (discovery, the configurations, every pod listed in pages), the pods the lab holds and the
   records kept. (No RSS figure: the lab serves from this same process.)

Loopback only. Prints every figure as key=value on the last line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import orjson

from probes.config import KubeConfig
from probes.engine.nudge import moves
from probes.engine.store import Store
from probes.kube.gatewaymodel import ANNOTATION
from probes.kube.kinds import GATEWAY_KINDS, object_problem
from probes.kube.source import KubeSource
from probes.lab.apiserver import LabApiServer

PODS_KIND = next(k for k in GATEWAY_KINDS if k.name == "gateway-pods")


def pod(i: int, annotated: bool) -> dict:
    meta: dict = {
        "name": f"app-{i}",
        "namespace": f"ns-{i % 50}",
        "uid": f"uid-{i}",
        "labels": {"app": "web", "pod-template-hash": "5d9c8b7f6"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-01T00:00:00Z"},
    }
    if annotated:
        meta["annotations"][ANNOTATION] = "sgc-a"
    return {
        "metadata": meta,
        "spec": {"nodeName": f"aks-userpool-1-vmss{i % 5000:06d}", "containers": [{"name": "app", "image": "x"}]},
        "status": {"phase": "Running", "podIP": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"},
    }


def route_cost(n: int, share: float, repeat: int) -> tuple[float, int]:
    body = orjson.dumps({"items": [pod(i, (i % 100) < share * 100) for i in range(n)]})
    times, kept = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        doc = orjson.loads(body)
        kept = 0
        for obj in doc["items"]:
            if not object_problem(obj):
                kept += sum(1 for _c, _k, rec in PODS_KIND.route(obj) if rec is not None)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / n * 1e6, kept


def lab_run(nodes: int) -> dict[str, float]:
    srv = LabApiServer("egress-gateway", nodes=nodes).start()
    try:
        with tempfile.TemporaryDirectory() as d:
            kc = srv.write_kubeconfig(f"{d}/kc")
            held = len(srv.state.store.sorted_keys("pods"))
            store = Store()
            src = KubeSource(store, KubeConfig(kubeconfig=kc), ingress=False)
            src.kinds = GATEWAY_KINDS  # only what this feature adds
            t0 = time.perf_counter()
            src.start()
            deadline = time.monotonic() + 300
            with moves(store) as moved:
                while time.monotonic() < deadline and not store.snapshot().gateways.pods_read:
                    moved.wait(0.05)
                    moved.clear()
            took = time.perf_counter() - t0
            g = store.snapshot().gateways
            src.stop()
            return {
                "lab_pods": held,
                "first_list_s": round(took, 2),
                "kept": len(g.pods),
            }
    finally:
        srv.stop()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=20000, help="pods in the pure-CPU page")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    none_us, _ = route_cost(a.pods, 0.0, a.repeat)
    some_us, kept = route_cost(a.pods, 0.05, a.repeat)
    print(f"route, no pod annotated: {none_us:.2f} µs/pod (orjson decode included)")
    print(f"route, 5 % annotated:    {some_us:.2f} µs/pod, kept {kept} of {a.pods}")
    lab = lab_run(a.nodes)
    print(f"lab {a.nodes} nodes: {lab}")
    figures = {"route_none_us": round(none_us, 2), "route_5pct_us": round(some_us, 2), **lab}
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
