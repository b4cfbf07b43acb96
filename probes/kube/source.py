"""List, then watch, the few Kubernetes resources the topology needs.

One reflector thread per resource kind (nodes; kube-system DNS pods by label; services),
each the client-go way: a paged list (limit/continue) for a resourceVersion, then a watch
from it with bookmarks; a 410 Gone relists, a dropped stream reconnects with backoff.
Bodies are parsed with orjson into small records, page by page, never into client models.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from probes.config import KubeConfig
from probes.engine.store import COREDNS, NODELOCAL, NODES, SERVICE_EVENTS, SERVICES, Store
from probes.kube import connect as kubeconnect
from probes.kube.connect import HttpError, KubeConnectError
from probes.kube.credentials import CredentialError
from probes.kube.model import SourceState, SourceStatus
from probes.kube.rawjson import loads_list, peek_continue
from probes.kube.topology import parse_node, parse_pod, parse_service

SOURCE = "kubernetes"
DNS_POD_SELECTOR = "k8s-app in (kube-dns,node-local-dns)"


class Expired(Exception):
    """410 Gone: the resourceVersion is too old; relist."""


class Malformed(Exception):
    """The server sent something that is not the JSON it promised."""


@dataclass(frozen=True, slots=True)
class WatchedKind:
    """One resource kind to reflect: where to list it and how to file its objects."""

    name: str  # status source suffix and log name: "nodes", "pods", "services"
    path: str
    selector: str
    route: Callable[[dict[str, Any]], list[tuple[str, str, Any]]]  # obj -> [(collection, key, record)]
    collections: tuple[str, ...]
    verb_scope: str  # for the forbidden message: "nodes at the cluster scope"


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def _route_node(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(NODES, _key(obj), parse_node(obj))]


def _route_pod(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    app = ((obj.get("metadata") or {}).get("labels") or {}).get("k8s-app")
    coll = COREDNS if app == "kube-dns" else NODELOCAL if app == "node-local-dns" else None
    return [(coll, _key(obj), parse_pod(obj))] if coll else []


def _route_service(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(SERVICES, _key(obj), parse_service(obj))]


KINDS = (
    WatchedKind("nodes", "/api/v1/nodes", "", _route_node, (NODES,), "nodes at the cluster scope"),
    WatchedKind(
        "pods",
        "/api/v1/namespaces/kube-system/pods",
        DNS_POD_SELECTOR,
        _route_pod,
        (COREDNS, NODELOCAL),
        "pods in namespace kube-system",
    ),
    WatchedKind("services", "/api/v1/services", "", _route_service, (SERVICES,), "services at the cluster scope"),
)


class _Prefetch:
    """One page fetched on its own thread while the current page is decoded.

    A bare thread rather than concurrent.futures: that package costs a few milliseconds
    to import before the first list, for one call at a time."""

    def __init__(self, fetch: Callable[[str], bytes], cont: str, name: str) -> None:
        self._fetch, self._cont = fetch, cont
        self._body: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._body = self._fetch(self._cont)
        except BaseException as e:  # noqa: BLE001 - handed to the caller in result()
            self._error = e

    def result(self) -> bytes:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._body is not None
        return self._body

    def cancel(self) -> None:
        """Not wanted after all: let the request finish (its connection goes back to the pool)."""
        self._thread.join()


class Backoff:
    """Exponential backoff with jitter, as client-go's reflector does (1 s … 30 s)."""

    def __init__(self, first: float = 1.0, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.first, self.cap, self._n = first, cap, 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.first * (2**self._n))
        self._n = min(self._n + 1, 10)
        return delay * self._rng.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._n = 0


def classify(exc: BaseException, kind: WatchedKind, target: str) -> tuple[SourceState, str, str]:
    """Exception -> (state, one-line message, next step) in the operator's words."""
    if isinstance(exc, HttpError):
        if exc.status == 401:
            return (
                SourceState.UNAUTHORIZED,
                f"401 Unauthorized from {target}: the credentials were rejected",
                "refresh them: `az aks get-credentials … --overwrite-existing`, or `kubelogin convert-kubeconfig -l azurecli`",
            )
        if exc.status == 403:
            return (
                SourceState.FORBIDDEN,
                f"forbidden: cannot list/watch {kind.verb_scope}",
                f"{exc.message} — grant get/list/watch on {kind.name}; check with `kubectl auth can-i watch {kind.name}`",
            )
        if exc.status == 429:
            return (
                SourceState.ERROR,
                f"429 Too Many Requests listing {kind.name}: the API server is throttling",
                "retrying after its Retry-After",
            )
        if exc.status >= 500:
            return SourceState.ERROR, f"{exc.status} {exc.reason} from the API server for {kind.name}", exc.message
        return SourceState.ERROR, f"{exc.status} {exc.reason} for {kind.name}", exc.message
    if isinstance(exc, CredentialError):  # the exec plugin failed on a refresh
        return SourceState.UNAUTHORIZED, f"the exec credential plugin failed: {exc}", kubeconnect.KUBELOGIN_HINT
    if isinstance(exc, Malformed):
        return (
            SourceState.ERROR,
            f"malformed answer for {kind.name}: {exc}",
            "the API server or a proxy in between sent broken JSON",
        )
    text = f"{type(exc).__name__}: {exc}"
    if "SSL" in text or "CERTIFICATE" in text.upper():
        return SourceState.UNREACHABLE, f"TLS to {target} failed", text[:300]
    return SourceState.UNREACHABLE, f"API server {target} unreachable", _short_net_error(exc)


def _short_net_error(exc: BaseException) -> str:
    cur: BaseException | None = exc
    while cur is not None:
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException) and reason is not cur:
            cur = reason
            continue
        break
    text = str(cur or exc)
    for needle, said in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "the name does not resolve"),
        ("timed out", "timed out"),
        ("No route to host", "no route to host"),
    ):
        if needle in text:
            return said
    return text[:300]


def _iter_lines(resp: Any, stop: threading.Event) -> Iterator[bytes]:
    """Complete lines of a chunked watch stream; a partial last line is dropped, not parsed."""
    buf = b""
    for chunk in resp.stream(64 * 1024, decode_content=True):
        if stop.is_set():
            return
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1 :]
            if line.strip():
                yield line
    if buf.strip():
        # A stream cut mid-event: the tail may still be a complete JSON object (no newline)
        try:
            orjson.loads(buf)
        except orjson.JSONDecodeError:
            raise ConnectionResetError("watch stream ended mid-event") from None
        yield buf


class Reflector:
    def __init__(
        self, kind: WatchedKind, api: Any, store: Store, stop: threading.Event, target: str, cfg: KubeConfig
    ) -> None:
        self.kind = kind
        self.api = api
        self.store = store
        self.stop = stop
        self.target = target
        self.cfg = cfg
        self.resp: Any = None
        self._events_read: dict[str, float] = {}
        self.lists = 0  # how many full lists this reflector made (tests and benchmarks read it)
        self.thread = threading.Thread(target=self.run, name=f"kube-{kind.name}", daemon=True)

    @property
    def source(self) -> str:
        return f"{SOURCE}/{self.kind.name}"

    def _status(self, state: SourceState, message: str = "", detail: str = "", retry_at: float | None = None) -> None:
        self.store.set_status(SourceStatus(self.source, state, message, detail, retry_at))

    def _query(self, **extra: str) -> list[tuple[str, str]]:
        q = [(k, v) for k, v in extra.items() if v]
        if self.kind.selector:
            q.append(("labelSelector", self.kind.selector))
        return q

    def _fetch(self, cont: str) -> bytes:
        resp = kubeconnect.get(
            self.api,
            self.kind.path,
            self._query(limit=str(self.cfg.page_size), **{"continue": cont}),
            timeout=self.cfg.request_timeout,
        )
        try:
            return resp.data
        finally:
            resp.release_conn()

    def list(self) -> str:
        """Full paged list; replaces the kind's collections. Returns the list resourceVersion.

        While one page is decoded the next is already being fetched (its continue token is
        read from the raw head of the body), so the network and the decoding overlap.
        """
        items: dict[str, dict[str, Any]] = {c: {} for c in self.kind.collections}
        rv = ""
        body = self._fetch("")
        for _ in range(100_000):  # bounded: 100k pages is far beyond any cluster
            early = peek_continue(body)
            ahead = _Prefetch(self._fetch, early, f"kube-{self.kind.name}-page") if early else None
            try:
                try:
                    doc = loads_list(body, trim_images=self.kind.name == "nodes")
                except orjson.JSONDecodeError as e:
                    raise Malformed(f"list {self.kind.path}: {e}") from None
                if not isinstance(doc, dict) or not isinstance(doc.get("items", []), list):
                    raise Malformed(f"list {self.kind.path}: not a List object")
                del body
                for obj in doc.get("items") or []:
                    if isinstance(obj, dict):
                        for coll, key, rec in self.kind.route(obj):
                            items[coll][key] = rec
                meta = doc.get("metadata") or {}
                rv = str(meta.get("resourceVersion") or rv)
                cont = str(meta.get("continue") or "")
                del doc
            except BaseException:
                if ahead is not None:
                    ahead.cancel()
                raise
            if not cont:
                if ahead is not None:
                    ahead.cancel()
                break
            if ahead is not None and early == cont:
                body = ahead.result()
            else:  # the head was misread: fetch the right page
                if ahead is not None:
                    ahead.cancel()
                body = self._fetch(cont)  # noqa: F841 - decoded at the top of the next round
        for coll, recs in items.items():
            self.store.replace(coll, recs)
        self.lists += 1
        return rv

    def watch(self, rv: str) -> str:
        """Watch from `rv` until the stream ends; returns the last resourceVersion seen."""
        timeout = int(self.cfg.watch_timeout * random.uniform(0.5, 1.0)) or 1
        query = self._query(watch="1", resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds=str(timeout))
        resp = kubeconnect.get(
            self.api, self.kind.path, query, timeout=(self.cfg.request_timeout, timeout + 30), stream=True
        )
        self.resp = resp
        try:
            if self.stop.is_set():  # stop() came while the request was in flight
                return rv
            for line in _iter_lines(resp, self.stop):
                try:
                    ev = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise Malformed(f"watch {self.kind.path}: an event that is not JSON") from None
                if not isinstance(ev, dict) or not isinstance(ev.get("object"), dict):
                    raise Malformed(f"watch {self.kind.path}: an event without an object")
                typ, obj = ev.get("type"), ev["object"]
                if typ == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired(str(obj.get("message") or "410 Gone"))
                    raise HttpError(
                        int(obj.get("code") or 500), str(obj.get("reason") or "Error"), str(obj.get("message") or "")
                    )
                new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                if new_rv:
                    rv = str(new_rv)
                if typ in ("ADDED", "MODIFIED"):
                    for coll, key, rec in self.kind.route(obj):
                        self.store.upsert(coll, key, rec)
                    self.read_pending_events()
                elif typ == "DELETED":
                    key = _key(obj)
                    for coll in self.kind.collections:
                        self.store.delete(coll, key)
        finally:
            self.resp = None
            resp.release_conn()
        return rv

    def run(self) -> None:
        backoff = Backoff()
        rv = ""
        while not self.stop.is_set():
            try:
                if not rv:
                    self._status(SourceState.SYNCING, f"listing {self.kind.name}")
                    rv = self.list()
                    self.read_pending_events()
                self._status(SourceState.LIVE, f"watching {self.kind.name}")
                rv = self.watch(rv)
                backoff.reset()
            except Expired:
                rv = ""  # relist at once, like client-go
            except KubeConnectError as e:
                self._status(SourceState.ERROR, e.message, e.hint)
                return
            except Exception as e:  # every other failure becomes a status line and a retry
                if self.stop.is_set():
                    return
                state, message, detail = classify(e, self.kind, self.target)
                delay = backoff.next()
                if isinstance(e, HttpError):
                    if e.retry_after is not None:
                        delay = min(max(e.retry_after, 1.0), 120.0)
                    elif e.status in (401, 403):
                        delay = max(delay, 10.0)  # permissions change slowly; don't hammer
                    if e.status == 410:
                        rv = ""
                        continue
                if isinstance(e, Malformed):
                    rv = ""  # we may have missed events; start from a clean list
                self._status(state, message, detail, retry_at=time.monotonic() + delay)
                self.stop.wait(delay)

    EVENTS_TTL = 60.0  # seconds before a pending service's events are read again
    EVENTS_PER_PASS = 20  # bounded: a cluster with hundreds of pending services is read over time

    def read_pending_events(self) -> None:
        """For LoadBalancer services without an external IP, read their events (the cloud
        provider's "Error syncing load balancer" says why). On demand, never a watch."""
        if self.kind.name != "services":
            return
        snap = self.store.snapshot()
        now = time.monotonic()
        pending = [s for s in snap.topology.services if s.pending]
        wanted = {f"{s.namespace}/{s.name}" for s in pending}
        for key in [k for k in snap.topology.service_events if k not in wanted]:
            self.store.delete(SERVICE_EVENTS, key)
        done = 0
        for s in pending:
            key = f"{s.namespace}/{s.name}"
            if now - self._events_read.get(key, -1e9) < self.EVENTS_TTL or done >= self.EVENTS_PER_PASS:
                continue
            self._events_read[key] = now
            done += 1
            query = [("fieldSelector", f"involvedObject.kind=Service,involvedObject.name={s.name}")]
            try:
                resp = kubeconnect.get(
                    self.api, f"/api/v1/namespaces/{s.namespace}/events", query, timeout=self.cfg.request_timeout
                )
                doc = orjson.loads(resp.data)
                resp.release_conn()
            except Exception:  # noqa: BLE001 - events are evidence, not the topology: skip quietly
                continue
            items = doc.get("items") if isinstance(doc, dict) else None
            msgs = []
            for ev in sorted(
                (e for e in items or [] if isinstance(e, dict)),
                key=lambda e: str(e.get("lastTimestamp") or ""),
                reverse=True,
            ):
                if ev.get("type") == "Warning" and ev.get("message"):
                    msgs.append(f"{ev.get('reason', '')}: {ev['message']}"[:400])
            self.store.upsert(SERVICE_EVENTS, key, tuple(msgs[:3]))

    def interrupt(self) -> None:
        """End the open watch stream, if any; the loop reconnects from its resourceVersion."""
        resp = self.resp
        if resp is not None:
            try:
                resp.shutdown()
            except Exception:
                pass


class KubeSource:
    """Connects, then runs one reflector per kind until stop()."""

    def __init__(self, store: Store, cfg: KubeConfig | None = None) -> None:
        self.store = store
        self.cfg = cfg or KubeConfig()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-source", daemon=True)
        self.reflectors: list[Reflector] = []
        self.api: Any = None

    def start(self) -> None:
        self._thread.start()

    def _status(self, state: SourceState, message: str, detail: str = "", retry_at: float | None = None) -> None:
        self.store.set_status(SourceStatus(SOURCE, state, message, detail, retry_at))

    def _run(self) -> None:
        self._status(SourceState.CONNECTING, "loading kubeconfig")
        try:
            self.api, target = kubeconnect.load(self.cfg.kubeconfig, self.cfg.context)
        except KubeConnectError as e:
            self._status(SourceState.ERROR, e.message, e.hint)
            return
        except Exception as e:  # an unexpected client failure must still end as a status line
            self._status(SourceState.ERROR, f"could not set up the Kubernetes client: {type(e).__name__}: {e}")
            return
        where = f"{target.context} @ {target.server}"
        self.store.set_meta(target=where)
        backoff = Backoff()
        while not self._stop.is_set():
            self._status(SourceState.CONNECTING, f"connecting to {target.server}")
            try:
                resp = kubeconnect.get(self.api, "/version", timeout=self.cfg.request_timeout)
                doc = orjson.loads(resp.data)
                resp.release_conn()
                self.store.set_meta(server_version=str(doc.get("gitVersion", "")) if isinstance(doc, dict) else "")
                break
            except HttpError as e:
                if e.status in (403, 404):  # /version hidden: carry on, the lists will tell
                    break
                state, message, detail = classify(e, KINDS[0], target.server)
            except orjson.JSONDecodeError:
                break  # /version is cosmetic; the lists will say if the server is broken
            except Exception as e:
                state, message, detail = classify(e, KINDS[0], target.server)
            delay = backoff.next()
            self._status(state, message, detail, retry_at=time.monotonic() + delay)
            if self._stop.wait(delay):
                return
        self._status(SourceState.LIVE, f"connected to {target.server}")
        for kind in KINDS:
            r = Reflector(kind, self.api, self.store, self._stop, target.server, self.cfg)
            self.reflectors.append(r)
            r.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for r in self.reflectors:
            r.interrupt()
        deadline = time.monotonic() + timeout
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for r in self.reflectors:
            r.thread.join(max(0.0, deadline - time.monotonic()))
        if self.api is not None:
            try:
                self.api.close()
            except Exception:
                pass

    def wait_synced(self, timeout: float) -> bool:
        """Block until every kind has completed its first list (or timeout). For check and benchmarks."""
        deadline = time.monotonic() + timeout
        want = {c for k in KINDS for c in k.collections}
        while time.monotonic() < deadline:
            if want <= self.store.synced():
                return True
            self.store.changed.wait(0.05)
            self.store.changed.clear()
        return False
