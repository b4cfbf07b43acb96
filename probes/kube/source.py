"""List, then watch, the few Kubernetes resources the topology needs.

`KubeSource` loads the kubeconfig, asks `/version` (a short timeout: a server that
accepts TCP and never answers is said within seconds), then runs one reflector per kind
(`probes.kube.reflector`, kinds in `probes.kube.kinds`). Bodies are parsed with orjson
into small records, page by page, never into client models.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson

from probes.config import KubeConfig
from probes.engine.nudge import moves
from probes.engine.store import Store
from probes.ingress.kinds import INGRESS_KINDS
from probes.kube import connect as kubeconnect
from probes.kube.connect import HttpError, KubeConnectError
from probes.kube.kinds import DNS_POD_SELECTOR, KINDS, OPTIONAL_SOURCES, WatchedKind
from probes.kube.model import SourceState, SourceStatus
from probes.kube.policypods import PolicyPods
from probes.kube.reflector import CONNECT_TIMEOUT, SOURCE, Backoff, Reflector, classify

__all__ = ["KubeSource", "KINDS", "Reflector", "WatchedKind", "SOURCE", "DNS_POD_SELECTOR", "VERSION_TIMEOUT"]

HEARTBEAT = 1.0  # s between the heartbeat's GET /version
SILENT_AFTER = 3.0  # s without an answer (and the ping timed out or failed) before the data is shown stale: within 4 s
FATAL_SETTLE = 0.5  # s the other kinds get to answer once one is refused (wait_live)
FIRST_LIST_WAIT = 5.0  # s the optional kinds wait for the topology's first lists at most
VERSION_TIMEOUT = 4.0  # seconds for /version's answer: the first sign of a server that never answers


class KubeSource:
    """Connects, then runs one reflector per kind until stop()."""

    def __init__(self, store: Store, cfg: KubeConfig | None = None, *, ingress: bool = True) -> None:
        self.store = store
        self.cfg = cfg or KubeConfig()
        # the topology's kinds, then the ingress path's (optional: probes.ingress.kinds)
        self.kinds: tuple[WatchedKind, ...] = KINDS + (INGRESS_KINDS if ingress else ())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-source", daemon=True)
        self.reflectors: list[Reflector] = []
        self.policy_pods: PolicyPods | None = None  # the pods the egress policies select (F21)
        self.api: Any = None

    def start(self) -> None:
        self._thread.start()

    def _status(
        self, state: SourceState, message: str, detail: str = "", retry_at: float | None = None, fatal: bool = False
    ) -> None:
        self.store.set_status(SourceStatus(SOURCE, state, message, detail, retry_at, fatal=fatal))

    def _run(self) -> None:
        self._status(SourceState.CONNECTING, "loading kubeconfig")
        try:
            self.api, target = kubeconnect.load(self.cfg.kubeconfig, self.cfg.context)
        except KubeConnectError as e:
            self._status(SourceState.ERROR, e.message, e.hint, fatal=True)
            return
        except Exception as e:  # an unexpected client failure must still end as a status line
            self._status(
                SourceState.ERROR, f"could not set up the Kubernetes client: {type(e).__name__}: {e}", fatal=True
            )
            return
        where = f"{target.context} @ {target.server}"
        self.store.set_meta(target=where)
        backoff = Backoff()
        timeout = (CONNECT_TIMEOUT, min(VERSION_TIMEOUT, self.cfg.request_timeout))
        while not self._stop.is_set():
            self._status(SourceState.CONNECTING, f"connecting to {target.server}")
            try:
                resp = kubeconnect.get(self.api, "/version", timeout=timeout)
                doc = orjson.loads(resp.data)
                resp.release_conn()
                self.store.set_meta(server_version=str(doc.get("gitVersion", "")) if isinstance(doc, dict) else "")
                break
            except HttpError as e:
                if e.status in (403, 404):  # /version hidden: carry on, the lists will tell
                    break
                state, message, detail, fatal = classify(e, KINDS[0], target.server, "get /version")
                delay = backoff.to_cap() if e.status == 401 else backoff.next()
                if e.status == 429 and e.retry_after is not None:
                    delay = min(max(e.retry_after, 1.0), 60.0)
            except orjson.JSONDecodeError:
                break  # /version is cosmetic; the lists will say if the server is broken
            except Exception as e:
                state, message, detail, fatal = classify(e, KINDS[0], target.server, "get /version")
                delay = backoff.next()
            self._status(state, message, detail, retry_at=time.monotonic() + delay, fatal=fatal)
            if self._stop.wait(delay):
                return
        self._status(SourceState.LIVE, f"connected to {target.server}")
        # the kinds `check` and the topology wait for (KINDS: nodes, DNS pods, services, and
        # the small policy and gateway lists, which go out while the server prepares the
        # first page of nodes) list first; the ingress path's start once those lists are
        # in, so a 5,000-node first list does not share the GIL with a dozen discovery calls
        # and lists nobody is waiting for yet
        first = [k for k in self.kinds if k in KINDS]
        for kind in (*first, *(k for k in self.kinds if k not in first)):
            r = Reflector(kind, self.api, self.store, self._stop, target.server, self.cfg)
            self.reflectors.append(r)
            r.thread.start()
            if len(self.reflectors) == len(first):
                deadline = time.monotonic() + FIRST_LIST_WAIT
                while not self._first_in() and time.monotonic() < deadline:
                    if self._stop.wait(0.02):
                        return
        self.policy_pods = PolicyPods(self.api, self.store, self._stop, self.cfg)
        self.policy_pods.thread.start()
        self._heartbeat(target.server)

    def _first_in(self) -> bool:
        """Every reflector started so far has listed, or has its answer (refused, an error)."""
        states = {st.source: st.state for st in self.store.statuses()}
        pending = (None, SourceState.CONNECTING, SourceState.SYNCING)
        return all(r.listed or states.get(r.source) not in pending for r in self.reflectors)

    def _heartbeat(self, server: str) -> None:
        """A GET /version every HEARTBEAT s: a watch only notices a frozen or blackholed API
        server at its deadline (watch timeout + grace, 12 s by default), the heartbeat within
        SILENT_AFTER s. Then every live kind shows its data stale and the status line says
        why, until the server answers again. One small request per HEARTBEAT s in all,
        whatever the number of kinds; a slow answer on a loaded machine is not silence."""
        last_ok = time.monotonic()
        silent = False
        timeout = (CONNECT_TIMEOUT, SILENT_AFTER)
        while not self._stop.wait(HEARTBEAT):
            err = ""
            try:
                resp = kubeconnect.get(self.api, "/version", timeout=timeout)
                resp.release_conn()
            except HttpError:
                pass  # an answer (403 or else): the server is there; the kinds say the rest
            except Exception as e:  # noqa: BLE001 - any failure to answer is what we watch for
                err = classify(e, KINDS[0], server, "get /version")[1]
            now = time.monotonic()
            if not err:
                last_ok = now
                if silent:
                    silent = False
                    self._status(SourceState.LIVE, f"connected to {server}")
                    for r in self.reflectors:
                        r.answered_again()
            elif now - last_ok >= SILENT_AFTER:
                msg = f"the API server has not answered for {now - last_ok:.0f} s: {err}"
                if not silent:
                    silent = True
                    for r in self.reflectors:
                        r.mark_silent(msg, retry_at=now + HEARTBEAT)
                self._status(SourceState.UNREACHABLE, msg, retry_at=now + HEARTBEAT)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for r in self.reflectors:
            r.interrupt()
        deadline = time.monotonic() + timeout
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for r in self.reflectors:
            r.thread.join(max(0.0, deadline - time.monotonic()))
        if self.policy_pods is not None:
            self.policy_pods.thread.join(max(0.0, deadline - time.monotonic()))
        if self.api is not None:
            try:
                self.api.close()
            except Exception:
                pass

    def wait_synced(self, timeout: float) -> bool:
        """Block until every kind has completed its first list (or timeout). For check and benchmarks."""
        deadline = time.monotonic() + timeout
        with moves(self.store) as moved:
            while time.monotonic() < deadline:
                # the store's statuses and synced set, not a snapshot: that would rebuild the
                # topology every 50 ms while the nodes' pages arrive, on the lists' own CPU
                refused = {s.source for s in self.store.statuses() if s.state is SourceState.FORBIDDEN}
                want = {
                    c
                    for k in KINDS
                    if (k.required and not k.optional) or f"{k.source}/{k.name}" not in refused
                    for c in k.collections
                }
                if want <= self.store.synced():
                    return True
                moved.wait(0.05)
                moved.clear()
        return False

    def wait_live(self, timeout: float) -> tuple[bool, SourceStatus | None]:
        """Block until every kind is LIVE (True, None), a fatal status comes up (False, it:
        refused, no such name, 401, 403, no kubeconfig), or `timeout` passes (False, None).
        A kind the topology does not need (the NetworkPolicy kinds) counts when it is refused
        (403): the run goes on without it, and says so."""
        deadline = time.monotonic() + timeout
        want = {f"{SOURCE}/{k.name}" for k in KINDS}
        with moves(self.store) as moved:
            while True:
                statuses = self.store.statuses()  # not a snapshot (see wait_synced)
                fatal = next((s for s in statuses if s.fatal and s.source.startswith(SOURCE)), None)
                if fatal is not None:
                    # the topology's kinds are asked at once: let the others' answers land (a
                    # 403 on pods can beat the one on nodes) so the verdict names the first in
                    # order, whichever came back first, not a race
                    settle = min(time.monotonic() + FATAL_SETTLE, deadline)
                    while time.monotonic() < settle and not self._first_in():
                        moved.wait(0.02)
                        moved.clear()
                    statuses = self.store.statuses()
                    return False, next(s for s in statuses if s.fatal and s.source.startswith(SOURCE))
                live = {
                    s.source
                    for s in statuses
                    if s.state is SourceState.LIVE
                    or (s.state is SourceState.FORBIDDEN and s.source in OPTIONAL_SOURCES)
                }
                if want <= live:
                    return True, None
                left = deadline - time.monotonic()
                if left <= 0:
                    return False, None
                moved.wait(min(0.05, left))
                moved.clear()
