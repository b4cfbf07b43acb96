"""Fixtures of the fault suite: the misbehaving API server and a running KubeSource."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from probes.config import KubeConfig
from probes.engine.store import Store
from probes.kube.kinds import KINDS
from probes.kube.model import SourceState, SourceStatus
from probes.kube.source import KubeSource
from tests.support.faultapi import FaultApi

# Calico's kinds find no CRDs on the fault server: they are absent (live, empty, idle) there
KIND_NAMES = [k.name for k in KINDS if not k.group_version]


def kind_status(store: Store, kind: str) -> SourceStatus | None:
    return store.snapshot().status(f"kubernetes/{kind}")


def all_live(store: Store) -> bool:
    snap = store.snapshot()
    return all((s := snap.status(f"kubernetes/{k}")) is not None and s.state is SourceState.LIVE for k in KIND_NAMES)


@pytest.fixture
def api() -> Iterator[FaultApi]:
    srv = FaultApi(nodes=5, bookmark_interval=0.5)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def start(api: FaultApi, tmp_path: Path) -> Iterator[Callable[..., tuple[KubeSource, Store]]]:
    """start(**KubeConfig fields) -> a running KubeSource on `api`, stopped after the test."""
    kc = api.write_kubeconfig(tmp_path / "kubeconfig")
    started: list[KubeSource] = []

    def go(**kw: Any) -> tuple[KubeSource, Store]:
        store = Store()
        src = KubeSource(store, KubeConfig(kubeconfig=kc, **kw))
        src.start()
        started.append(src)
        return src, store

    yield go
    for s in started:
        s.stop(2.0)
