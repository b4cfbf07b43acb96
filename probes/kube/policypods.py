"""The pods the egress policies select, read on demand (the NetworkPolicy evaluation's
representative pod set; the queries are `probes.kube.policyqueries`').

One thread, started with the reflectors. Once the NetworkPolicies and namespaces are
listed (and Calico's CRDs looked up), it lists, per query, up to PER_QUERY running
non-hostNetwork pods (`limit`, label and field selectors: one small page, never all pods)
and files them under the query; a new or changed policy is read within a TICK, every
query again after REFRESH s, at most PER_PASS queries a pass after the first. A query no
policy needs any more is dropped. A 403 is said in its status (`kubernetes/policy-pods`),
never fatal: F21 then has no pods to judge.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from probes.config import KubeConfig
from probes.engine.store import NAMESPACES, NETPOLS, POLICY_PODS, Store
from probes.kube import connect as kubeconnect
from probes.kube.connect import HttpError
from probes.kube.kinds import POLICY_PODS_SOURCE
from probes.kube.model import SourceState, SourceStatus
from probes.kube.policymodel import PodLabels
from probes.kube.policyparse import parse_pod_labels
from probes.kube.policyqueries import SEP, pod_queries
from probes.kube.reflector import CONNECT_TIMEOUT

TICK = 1.0  # s between looks at the policies
REFRESH = 60.0  # s before a query is read again (pods come and go; their labels rarely change)
PER_QUERY = 20  # pods per query: a representative set, one page
PER_PASS = 50  # queries per pass after the first (a cluster with thousands of policies is read over time)
FIRST_PASS_MAX = 2000  # the first pass reads every query up to this
FIELDS = "status.phase=Running,spec.hostNetwork=false"


class PolicyPods:
    def __init__(
        self,
        api: Any,
        store: Store,
        stop: threading.Event,
        cfg: KubeConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api, self.store, self.stop, self.cfg, self.clock = api, store, stop, cfg, clock
        self._read: dict[str, float] = {}  # query key -> when it was last read
        self.synced = False
        self.requests = 0  # pod lists made (tests, benchmarks)
        self.thread = threading.Thread(target=self.run, name="kube-policy-pods", daemon=True)

    def run(self) -> None:
        while not self.stop.wait(TICK):
            try:
                self.step()
            except Exception as e:  # noqa: BLE001 - said in the status; the next tick tries again
                self._status(SourceState.ERROR, f"reading the pods the NetworkPolicies select: {type(e).__name__}: {e}")

    def _status(self, state: SourceState, message: str, detail: str = "") -> None:
        self.store.set_status(SourceStatus(POLICY_PODS_SOURCE, state, message, detail))

    def step(self) -> None:
        """One pass: the queries the policies need now, read where due."""
        snap = self.store.snapshot()
        inputs = snap.policies
        if not {NETPOLS, NAMESPACES} <= snap.synced or inputs.calico == "unknown":
            return
        calico = inputs.calico_policies if inputs.calico == "present" else ()
        wanted = pod_queries(inputs.kube_policies, calico, inputs.namespaces)
        for key in [k for k in self._read if k not in wanted]:
            del self._read[key]
            self.store.delete(POLICY_PODS, key)
        now = self.clock()
        due = sorted(
            (k for k in wanted if now - self._read.get(k, float("-inf")) >= REFRESH),
            key=lambda k: self._read.get(k, float("-inf")),
        )
        first = not self.synced
        found: dict[str, tuple[PodLabels, ...]] = {}
        for key in due[: FIRST_PASS_MAX if first else PER_PASS]:
            if self.stop.is_set():
                return
            ns, _, selector = key.partition(SEP)
            try:
                pods = self._list(ns, selector)
            except HttpError as e:
                if e.status != 403:
                    raise
                self._status(
                    SourceState.FORBIDDEN,
                    f"forbidden: cannot list pods in namespace {ns}",
                    f"{e.message} — grant list on pods (at the cluster scope) to evaluate NetworkPolicies (F21); "
                    f"check with `kubectl auth can-i list pods -n {ns}`",
                )
                break
            self._read[key] = self.clock()
            if first:
                found[key] = pods
            else:
                self.store.upsert(POLICY_PODS, key, pods)
        else:
            self._status(SourceState.LIVE, f"read the pods of {len(wanted)} egress policy selections")
        if first:
            self.store.replace(POLICY_PODS, found)
            self.synced = True

    def _list(self, ns: str, selector: str) -> tuple[PodLabels, ...]:
        query = [("limit", str(PER_QUERY)), ("fieldSelector", FIELDS)]
        if selector:
            query.append(("labelSelector", selector))
        self.requests += 1
        resp = kubeconnect.get(
            self.api, f"/api/v1/namespaces/{ns}/pods", query, timeout=(CONNECT_TIMEOUT, self.cfg.request_timeout)
        )
        try:
            doc = orjson.loads(resp.data)
        finally:
            resp.release_conn()
        items = doc.get("items") if isinstance(doc, dict) else None
        return tuple(
            sorted(
                (parse_pod_labels(o) for o in items or () if isinstance(o, dict)),
                key=lambda p: p.name,
            )
        )
