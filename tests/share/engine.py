"""An owner engine in the test's process, on a lab in the test's process (so the tests can
count the lab's requests), shared through a `probes.share.host.Host`: what `aksnet-top`
runs when it owns a context, without a screen."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from probes import config as configmod
from probes.demo import LocalDnsMap, LocalEgressMap, _Local
from probes.engine import services as servicesmod
from probes.engine.frame import Frame
from probes.engine.publisher import Publisher
from probes.engine.store import Store
from probes.kube.source import KubeSource
from probes.lab.arm import LabArmServer
from probes.lab.serve import start_embedded
from probes.share.asks import Asks
from probes.share.host import Host
from probes.share.place import Place, try_own


def config() -> configmod.Config:
    cfg = configmod.Config()
    return dataclasses.replace(
        cfg,
        dns=dataclasses.replace(cfg.dns, interval=1.0, timeout=0.5),
        egress=dataclasses.replace(cfg.egress, interval=2.0, timeout=0.5),
        agents=dataclasses.replace(cfg.agents, enabled=False),
    )


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


class Owner:
    """The lab (API server + ARM), one engine on it (kube source, DNS/egress/SNAT services,
    publisher) and its host on `place`. The `local` vantage probes nothing (no responder):
    no packet leaves loopback."""

    def __init__(self, scenario: str, place: Place | None) -> None:
        self.srv, self.kubeconfig = start_embedded(scenario)
        self.arm = LabArmServer.for_cluster(self.srv.state, self.srv.scenario).start()
        cfg = config()
        local = _Local()
        endpoints = servicesmod.Endpoints(
            arm_url=self.arm.url, arm_discover=True, dns_map=LocalDnsMap(local), egress_map=LocalEgressMap(local)
        )
        self.store = Store()
        self.kube_cfg = dataclasses.replace(cfg.kube, kubeconfig=self.kubeconfig, context="")
        self.source = KubeSource(self.store, self.kube_cfg)
        self.services = servicesmod.build(cfg, self.store, endpoints, self.kube_cfg)
        self.pub = Publisher(
            self.store,
            dns=self.services.dns,
            egress=self.services.egress,
            snat=self.services.snat,
            findings_min=0.2,
            findings_every=1.0,
        )
        self.asks = Asks(self.pub)  # the owner's keys and its viewers' go through one gate, as in the app
        self.host: Host | None = None
        if place is not None:
            owned = try_own(place)
            assert owned is not None, "the place is owned already"
            self.host = Host(owned, banner=f"test: {scenario}", target=self.kubeconfig)
            self.host.asks_through(self.asks)
        self.frames: list[Frame] = []

    def start(self) -> Owner:
        self.source.start()
        for s in self.services.sources:
            s.start()

        def on_frame(f: Frame) -> None:
            if self.host is not None:
                self.host.offer(f)

        self.pub.start(on_frame)
        return self

    @property
    def latest(self) -> Frame | None:
        return self.pub.latest

    def stop(self) -> None:
        self.pub.stop(2.0)
        if self.host is not None:
            self.host.close()
        self.services.stop(2.0)
        self.source.stop(2.0)
        self.arm.stop()
        self.srv.stop()
        d = os.path.dirname(self.kubeconfig)
        if d and Path(d).name.startswith("aksnet-lab-"):
            shutil.rmtree(d, ignore_errors=True)


def finding_keys(frame: Frame | None) -> set[tuple[str, str, str]]:
    return {(f.rule, f.subject, str(f.severity)) for f in (frame.findings or ())} if frame is not None else set()
