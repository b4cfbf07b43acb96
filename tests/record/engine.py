"""Run the engine headless on a demo scenario (as the app does, without a screen) with a
recorder on its frames: the recordings the record tests read."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from probes import config as configmod
from probes import demo as demomod
from probes.engine import services as servicesmod
from probes.engine.publisher import Publisher
from probes.engine.store import Store
from probes.kube.source import KubeSource
from probes.record.evidence import for_run
from probes.record.writer import Recorder

# NodeLocal DNS on nodepool1/1 drops queries from 6 s to 14 s after the lab starts (F4, a
# critical finding that starts and clears); its pod goes NotReady and Ready with it
FLAPPING = """
description: NodeLocal DNS on nodepool1/1 drops from 6s to 14s
cluster:
  name: aks-lab
  subscriptionId: 4b6c1f2e-8d3a-4e5f-9a7b-1c2d3e4f5a6b
  resourceGroup: rg-aks-lab
  location: westeurope
  kubernetesVersion: 1.30.6
  networkPlugin: kubenet
  vnetCidr: 10.224.0.0/12
  subnetCidr: 10.224.0.0/16
  podCidr: 10.244.0.0/16
  serviceCidr: 10.0.0.0/16
  dnsServiceIP: 10.0.0.10
  nodeLocalDNS: true
  age: 45d
pools:
  - {name: nodepool1, mode: System, count: 3, vmSize: Standard_DS2_v2, zones: [1, 2, 3]}
coredns:
  replicas: 2
timeline:
  - {at: 6s, action: pod-notready, pod: node-local-dns, node: nodepool1/1}
  - {at: 14s, action: pod-ready, pod: node-local-dns, node: nodepool1/1}
dns:
  nodes:
    nodepool1/1:
      nodelocal:
        behaviour: answer
        changes:
          - {at: 6s, behaviour: drop}
          - {at: 14s, behaviour: answer}
"""


def config(**record: object) -> configmod.Config:
    cfg = configmod.Config()
    return dataclasses.replace(
        cfg,
        dns=dataclasses.replace(cfg.dns, interval=1.0, timeout=0.5),
        egress=dataclasses.replace(cfg.egress, interval=2.0, timeout=0.5),
        agents=dataclasses.replace(cfg.agents, budget=20.0),
    )


def record_demo(scenario: str, path: Path, seconds: float, *, stats_every: float = 30.0) -> dict[str, object]:
    """Run `scenario` for `seconds` with a recorder writing `path`; returns the demo's
    plain data (kubeconfig text, ARM token) for the tests' secret checks."""
    cfg = config()
    running = demomod.launch(scenario, dns=cfg.dns, egress=cfg.egress).ready(agents=True)
    store = Store()
    kube = dataclasses.replace(cfg.kube, kubeconfig=running.kubeconfig, context="")
    secrets = {"kubeconfig": Path(running.kubeconfig).read_text(), "endpoints": running.endpoints}
    source = KubeSource(store, kube)
    source.start()
    services = servicesmod.build(cfg, store, running.endpoints, kube)
    rec = Recorder(path, command="test", stats_every=stats_every, keyframe_every=5.0)
    rec.evidence = for_run(source, services.snat)  # as the app and check do
    pub = Publisher(
        store,
        dns=services.dns,
        egress=services.egress,
        snat=services.snat,
        agents=services.agents,
        findings_min=0.2,
        findings_every=1.0,
    )
    try:
        for s in services.sources:
            s.start()
        pub.start(rec.offer)
        time.sleep(seconds)
    finally:
        pub.stop(2.0)
        rec.close()
        services.stop(2.0)
        source.stop(2.0)
        running.stop()
    secrets["dropped"] = rec.dropped
    return secrets
