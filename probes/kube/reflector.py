"""One reflector per resource kind, the client-go way, telling the truth about its data.

A paged list (limit/continue) replaces the kind's collections; a watch from the list's
resourceVersion, with bookmarks and a short `timeoutSeconds`, keeps them current. The
kind is LIVE only while its watch is up and has delivered an event, a bookmark or its
clean end within the watch deadline (`timeoutSeconds` + WATCH_GRACE: a healthy server
writes or closes well within it); a watch that stays silent past it makes the kind
STALE, with the time its data was last known current (`stale_since`), as does every
failure after the first list.

Failures wait a jittered exponential backoff of the kind's own (0.8 s doubling to 30 s;
it starts over after a minute without failure), never urllib3's hidden retries: a 410,
a too-large resourceVersion and a malformed ERROR event relist, a 429 waits its
Retry-After (bounded), a 401/403 waits the cap. The status says when the next try is.
A malformed object is skipped and counted in the status, never fatal to its list.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from probes.config import KubeConfig
from probes.engine.store import APIS, SERVICE_EVENTS, Store
from probes.ingress.model import ABSENT
from probes.kube import connect as kubeconnect
from probes.kube.connect import HttpError, KubeConnectError, set_read_timeout
from probes.kube.credentials import CredentialError
from probes.kube.kinds import WatchedKind, object_key, object_problem
from probes.kube.model import SourceState, SourceStatus
from probes.kube.paging import PageStream
from probes.kube.rawjson import loads_list

SOURCE = "kubernetes"
CONNECT_TIMEOUT = 3.0  # seconds to open a TCP (and TLS) connection to the API server
WATCH_GRACE = 2.0  # seconds past a watch's timeoutSeconds before its silence makes the data stale
HEADERS_MIN = 5.0  # the least wait for a watch's headers (a too-large RV is answered after ~3 s)
QUICK_WATCH = 1.0  # a watch that ends sooner, having delivered nothing, counts as a failure
RETRY_AFTER_MAX = 60.0  # the longest Retry-After honoured
IGNORED_EXAMPLES = 3  # malformed objects named in the status
ABSENT_RECHECK = 300.0  # s between discoveries of an API group that is not served (CRDs installed later)


class Expired(Exception):
    """410 Gone, or a resourceVersion the server does not have: relist."""


class Malformed(Exception):
    """The server sent something that is not the JSON it promised: relist."""


class Silent(Exception):
    """The watch wrote nothing, not even a bookmark or its end, within its deadline."""


class QuickClose(Exception):
    """The watch ended at once without an event."""


class Backoff:
    """Exponential backoff with jitter, as client-go's reflector does (0.8 s … 30 s); it
    starts over after `reset_after` seconds without a failure."""

    def __init__(
        self,
        first: float = 0.8,
        cap: float = 30.0,
        reset_after: float = 60.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first, self.cap, self.reset_after = first, cap, reset_after
        self._n = 0
        self._last: float | None = None
        self._rng = rng or random.Random()
        self._clock = clock

    def next(self) -> float:
        now = self._clock()
        if self._last is not None and now - self._last > self.reset_after:
            self._n = 0
        self._last = now
        delay = min(self.cap, self.first * (2**self._n))
        self._n = min(self._n + 1, 16)
        return delay * self._rng.uniform(0.8, 1.2)

    def to_cap(self) -> float:
        """Straight to the longest wait (what retrying soon cannot fix)."""
        self._n = 16
        return self.next()

    def reset(self) -> None:
        self._n, self._last = 0, None


def too_large(e: HttpError) -> bool:
    """504/500 "Too large resource version": the server does not have that RV (restored etcd, another server)."""
    return e.reason == "ResourceVersionTooLarge" or "too large resource version" in e.message.lower()


def needs_relist(e: BaseException) -> bool:
    if isinstance(e, (Expired, Malformed)):
        return True
    return isinstance(e, HttpError) and (e.status == 410 or too_large(e))


def timed_out(e: BaseException) -> bool:
    cur: BaseException | None = e
    for _ in range(8):  # bounded walk of the cause chain
        if cur is None:
            return False
        if isinstance(cur, TimeoutError) or "timed out" in str(cur).lower():
            return True
        nxt = getattr(cur, "reason", None)
        cur = nxt if isinstance(nxt, BaseException) and nxt is not cur else cur.__context__
    return False


def classify(
    exc: BaseException, kind: WatchedKind, target: str, verb: str = "list"
) -> tuple[SourceState, str, str, bool]:
    """Exception -> (state, one-line message, next step, fatal) in the operator's words."""
    if isinstance(exc, HttpError):
        if exc.status == 401:
            return (
                SourceState.UNAUTHORIZED,
                f"401 Unauthorized from {target}: the credentials were rejected",
                "refresh them: `az aks get-credentials … --overwrite-existing`, or `kubelogin convert-kubeconfig -l azurecli`",
                True,
            )
        if exc.status == 403:
            return (
                SourceState.FORBIDDEN,
                f"forbidden: cannot {verb} {kind.verb_scope}",
                f"{exc.message} — grant get/list/watch on {kind.rbac}; check with `kubectl auth can-i {verb} {kind.rbac}`"
                + (
                    ""
                    if kind.required
                    else f" ({kind.without or 'without it, NetworkPolicies are not evaluated: F21'})"
                ),
                kind.required,
            )
        if exc.status == 429:
            return (
                SourceState.ERROR,
                "throttled by the API server",
                f"429 Too Many Requests on {verb} {kind.name}",
                False,
            )
        if too_large(exc):
            return (
                SourceState.ERROR,
                f"the API server does not have the resourceVersion of {kind.name} ({exc.status})",
                f"{exc.message} — its state was restored or replaced: listing again",
                False,
            )
        if exc.status >= 500:
            return (
                SourceState.ERROR,
                f"{exc.status} {exc.reason} from the API server on {verb} {kind.name}",
                exc.message,
                False,
            )
        return SourceState.ERROR, f"{exc.status} {exc.reason} on {verb} {kind.name}", exc.message, False
    if isinstance(exc, Expired):
        return SourceState.ERROR, f"the watch of {kind.name} expired (410 Gone)", "listing again", False
    if isinstance(exc, CredentialError):  # the exec plugin failed on a refresh
        return SourceState.UNAUTHORIZED, f"the exec credential plugin failed: {exc}", kubeconnect.KUBELOGIN_HINT, True
    if isinstance(exc, Malformed):
        return (
            SourceState.ERROR,
            f"malformed answer for {kind.name}: {exc}",
            "the API server or a proxy in between sent broken JSON",
            False,
        )
    if isinstance(exc, QuickClose):
        return (
            SourceState.ERROR,
            f"the watch of {kind.name} ended at once",
            "the API server or a proxy closes it",
            False,
        )
    text = f"{type(exc).__name__}: {exc}"
    if "SSL" in text or "CERTIFICATE" in text.upper():
        return SourceState.UNREACHABLE, f"TLS to {target} failed", text[:300], False
    if timed_out(exc):
        return SourceState.UNREACHABLE, f"API server {target} not answering", f"{verb} {kind.name} timed out", False
    said = short_net_error(exc)
    return (
        SourceState.UNREACHABLE,
        f"API server {target} unreachable",
        said,
        said in ("connection refused", "the name does not resolve"),
    )


def short_net_error(exc: BaseException) -> str:
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
        ("Temporary failure in name resolution", "the name does not resolve"),
        ("nodename nor servname", "the name does not resolve"),
        ("Failed to resolve", "the name does not resolve"),
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


def _watch_error(obj: Any, path: str) -> Exception:
    """The exception an ERROR watch event stands for; one without a Status is malformed."""
    if isinstance(obj, dict) and isinstance(obj.get("code"), int) and not isinstance(obj.get("code"), bool):
        code, message = obj["code"], str(obj.get("message") or "")
        if code == 410:
            return Expired(message or "410 Gone")
        return HttpError(code, str(obj.get("reason") or "Error"), message)
    brief = orjson.dumps(obj)[:80].decode("utf-8", "replace")
    return Malformed(f"watch {path}: an ERROR event without a Status: {brief}")


class NotServed(Exception):
    """An optional kind the API server does not serve (404, or its CRD not in discovery)."""


ABSENT_RETRY = 60.0  # s between discovery checks of a kind that is not served


class Reflector:
    def __init__(
        self,
        kind: WatchedKind,
        api: Any,
        store: Store,
        stop: threading.Event,
        target: str,
        cfg: KubeConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.api = api
        self.store = store
        self.stop = stop
        self.target = target
        self.cfg = cfg
        self.clock = clock
        self.resp: Any = None
        self._events_read: dict[str, float] = {}
        self._rng = random.Random()
        self.backoff = Backoff()
        self.lists = 0  # how many full lists this reflector made (tests and benchmarks read it)
        self.listed = False  # a list completed: the store holds this kind's data
        self.fresh = 0.0  # monotonic: when the data was last known current (list, event, bookmark, clean end)
        self.live = False
        self.deadline = float(cfg.watch_timeout) + WATCH_GRACE  # the open watch's silence limit
        self.suspect = False  # the heartbeat marked this live kind stale: the server stopped answering
        self.ignored = 0  # malformed objects skipped since the last list
        self._ignored_examples: list[str] = []
        self.thread = threading.Thread(target=self.run, name=f"kube-{kind.name}", daemon=True)

    @property
    def source(self) -> str:
        return f"{self.kind.source}/{self.kind.name}"

    def _status(
        self,
        state: SourceState,
        message: str = "",
        detail: str = "",
        retry_at: float | None = None,
        fatal: bool = False,
    ) -> None:
        self.suspect = False  # the reflector's own word replaces the heartbeat's
        stale = None if state is SourceState.LIVE or not self.listed else self.fresh
        self.store.set_status(
            SourceStatus(self.source, state, message, detail, retry_at, stale_since=stale, fatal=fatal)
        )

    def ignored_note(self) -> str:
        if not self.ignored:
            return ""
        n = self.ignored
        return f"{n} object{'s' if n != 1 else ''} ignored: " + "; ".join(self._ignored_examples)

    def _ignore(self, where: str) -> None:
        self.ignored += 1
        if len(self._ignored_examples) < IGNORED_EXAMPLES:
            self._ignored_examples.append(where)
        if self.live:
            self._set_live()

    def mark_silent(self, message: str, retry_at: float | None = None) -> None:
        """The heartbeat: the API server stopped answering. A live kind shows its data stale
        from now on (its watch may sit in a read for up to its deadline before it notices)."""
        if self.live and not self.suspect:
            stale = self.fresh if self.listed else None
            self.store.set_status(
                SourceStatus(self.source, SourceState.STALE, message, "", retry_at, stale_since=stale)
            )
            self.suspect = True

    def answered_again(self) -> None:
        """The heartbeat: the server answers again. A kind it marked, whose watch is still
        open, is live again (its own loop reconnects the others)."""
        if self.suspect and self.live:
            self._set_live()

    def _set_live(self) -> None:
        self.live = True
        self._status(SourceState.LIVE, f"watching {self.kind.name}", self.ignored_note())

    def _query(self, **extra: str) -> list[tuple[str, str]]:
        q = [(k, v) for k, v in extra.items() if v]
        if self.kind.selector:
            q.append(("labelSelector", self.kind.selector))
        return q

    def _fetch(self, cont: str) -> tuple[bytes, str]:
        """One page as sent: (raw body, content coding); probes.kube.paging inflates it."""
        resp = kubeconnect.get(
            self.api,
            self.kind.path,
            self._query(limit=str(self.cfg.page_size), **{"continue": cont}),
            timeout=(CONNECT_TIMEOUT, self.cfg.request_timeout),
            stream=True,
        )
        try:
            return kubeconnect.read_raw(resp)
        finally:
            resp.release_conn()

    def _file(self, obj: Any, where: str) -> list[tuple[str, str, Any]] | None:
        """The routed records of `obj`, or None (counted as ignored) when it is malformed."""
        problem = object_problem(obj)
        if not problem:
            try:
                return self.kind.route(obj)
            except Exception as e:  # noqa: BLE001 - one bad object never ends its list
                problem = f"could not be read ({type(e).__name__})"
        self._ignore(f"{where}: {problem}")
        return None

    def list(self) -> str:
        """Full paged list; replaces the kind's collections (deletions included). Returns
        the list resourceVersion.

        While one page is inflated and decoded here, the next ones are already being
        fetched (probes.kube.paging), so the network and the decoding overlap.
        """
        items: dict[str, dict[str, Any]] = {c: {} for c in self.kind.collections}
        self.ignored, self._ignored_examples = 0, []
        rv = ""
        seen = 0
        pages = PageStream(self._fetch, f"kube-{self.kind.name}-page")
        try:
            cont = ""
            for _ in range(100_000):  # bounded: 100k pages is far beyond any cluster
                try:
                    body = pages.get(cont)
                except kubeconnect.BadBody as e:
                    raise Malformed(f"list {self.kind.path}: {e}") from None
                page = self.kind.decode_page(body) if self.kind.decode_page is not None else None
                if page is not None:  # the kind's typed decoder read the page whole
                    del body
                    for coll, key, rec in page.records:
                        items[coll][key] = rec
                    seen += page.objects
                    rv, cont = page.resource_version or rv, page.cont
                    del page
                else:  # object by object: a malformed one is counted and named
                    try:
                        doc = loads_list(body, trim_images=self.kind.name == "nodes")
                    except orjson.JSONDecodeError as e:
                        raise Malformed(f"list {self.kind.path}: {e}") from None
                    if not isinstance(doc, dict) or not isinstance(doc.get("items") or [], list):
                        raise Malformed(f"list {self.kind.path}: not a List object")
                    del body
                    for obj in doc.get("items") or []:
                        routed = self._file(obj, f"{self.kind.singular}[{seen}]")
                        seen += 1
                        for coll, key, rec in routed or ():
                            items[coll][key] = rec
                    meta = doc.get("metadata")
                    meta = meta if isinstance(meta, dict) else {}
                    rv = str(meta.get("resourceVersion") or rv)
                    cont = str(meta.get("continue") or "")
                    del doc
                if not cont:
                    break
        finally:
            pages.close()
        for coll, recs in items.items():
            self.store.replace(coll, recs)
        self.lists += 1
        self.listed = True
        self.fresh = self.clock()
        return rv

    def watch(self, rv: str) -> str:
        """Watch from `rv` until the stream ends; returns the last resourceVersion seen.

        Raises Silent when the stream writes nothing within its deadline, QuickClose when it
        ends at once having delivered nothing, and what the ERROR events stand for."""
        secs = max(1, int(self.cfg.watch_timeout * self._rng.uniform(0.8, 1.0)))
        self.deadline = deadline = secs + WATCH_GRACE
        query = self._query(watch="1", resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds=str(secs))
        t0 = self.clock()
        headers = max(HEADERS_MIN, min(deadline, self.fresh + deadline - t0))
        resp = kubeconnect.get(self.api, self.kind.path, query, timeout=(CONNECT_TIMEOUT, headers), stream=True)
        set_read_timeout(resp, deadline)
        self.resp = resp
        delivered = False
        try:
            if self.stop.is_set():  # stop() came while the request was in flight
                return rv
            if self.clock() - self.fresh < deadline:  # the list or the last event is recent: live now
                self._set_live()
            try:
                for line in _iter_lines(resp, self.stop):
                    rv = self._event(line, rv)
                    delivered = True
            except Exception as e:
                if timed_out(e) and not self.stop.is_set():
                    raise Silent(f"no event or bookmark from the API server for {deadline:.0f} s") from None
                raise
        finally:
            self.resp = None
            resp.release_conn()
        now = self.clock()
        if not delivered and now - t0 < QUICK_WATCH and not self.stop.is_set():
            raise QuickClose()
        self.fresh = now  # a clean end at timeoutSeconds: the server is alive and we are current
        return rv

    def _event(self, line: bytes, rv: str) -> str:
        """File one watch event; the resourceVersion after it."""
        try:
            ev = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise Malformed(f"watch {self.kind.path}: an event that is not JSON") from None
        if not isinstance(ev, dict):
            raise Malformed(f"watch {self.kind.path}: an event that is not an object")
        typ, obj = ev.get("type"), ev.get("object")
        if typ == "ERROR":
            raise _watch_error(obj, self.kind.path)
        self.fresh = self.clock()
        if not self.live:
            self._set_live()
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        new_rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if isinstance(new_rv, str) and new_rv:
            rv = new_rv
        if typ == "BOOKMARK":
            return rv
        if typ in ("ADDED", "MODIFIED"):
            routed = self._file(obj, f"{self.kind.singular} {str(typ).lower()} event")
            for coll, key, rec in routed or ():
                self.store.upsert(coll, key, rec)
            if routed is not None:
                self.read_pending_events()
        elif typ == "DELETED":
            if self._file(obj, f"{self.kind.singular} deleted event") is not None:
                key = object_key(obj)  # type: ignore[arg-type]
                for coll in self.kind.collections:
                    self.store.delete(coll, key)
        else:
            self._ignore(f"{self.kind.singular} event: unknown type {str(typ)[:20]!r}")
        return rv

    def _wait_for(self, e: Exception) -> float:
        """How long to wait before the next try after `e`: our backoff, the server's Retry-After."""
        if isinstance(e, HttpError):
            if e.status == 429 and e.retry_after is not None:
                return min(max(e.retry_after, 1.0), RETRY_AFTER_MAX)  # the server paces; ours stays where it was
            if e.status in (401, 403):
                return self.backoff.to_cap()  # permissions change slowly: no storm of refusals
        return self.backoff.next()

    def _served(self) -> None:
        """An optional kind whose API group is discovered: raise NotServed when discovery
        does not list its resource (a CRD not installed)."""
        kind = self.kind
        if not kind.discovery:
            return
        try:
            resp = kubeconnect.get(self.api, kind.discovery, timeout=(CONNECT_TIMEOUT, self.cfg.request_timeout))
            doc = orjson.loads(resp.data)
            resp.release_conn()
        except HttpError as e:
            if e.status == 404:
                raise NotServed(f"{kind.discovery} is not served: the CRDs are not installed") from None
            raise
        except orjson.JSONDecodeError:
            raise Malformed(f"discovery {kind.discovery}: not JSON") from None
        names = (
            {r.get("name") for r in (doc.get("resources") or []) if isinstance(r, dict)}
            if isinstance(doc, dict)
            else set()
        )
        if kind.resource not in names:
            raise NotServed(f"{kind.discovery} does not list {kind.resource}: its CRD is not installed")

    def _absent(self, why: str) -> None:
        """Not served: the kind's collections are empty and say so; the status is live (it is
        a fact about the cluster, not a failure: no detail, so the status line never ranks
        it before the others) and names it."""
        for coll in self.kind.collections:
            self.store.replace(coll, {})
        self.store.upsert(ABSENT, self.kind.name, why)
        self.listed = True
        self.fresh = self.clock()
        self.live = False
        self._status(SourceState.LIVE, f"{self.kind.name}: not served ({why})")

    def run(self) -> None:
        rv = ""
        verb = "list"
        fresh_rv = False  # rv comes from the list just made (a relist error now is a storm, not a recovery)
        while not self.stop.is_set():
            try:
                if not rv and self.kind.group_version and not self.discover():
                    self.stop.wait(ABSENT_RECHECK)
                    continue
                if not rv and self.kind.optional:
                    verb = "discover"
                    try:
                        self._served()
                    except NotServed as e:
                        self._absent(str(e))
                        self.stop.wait(ABSENT_RETRY)
                        continue
                if not rv:
                    verb = "list"
                    self._status(SourceState.SYNCING, f"listing {self.kind.name}" + (" again" if self.listed else ""))
                    try:
                        rv = self.list()
                    except HttpError as e:
                        if not (self.kind.optional and e.status == 404):
                            raise
                        self._absent(f"{self.kind.path} is not served (404)")
                        self.stop.wait(ABSENT_RETRY)
                        continue
                    if self.kind.optional:
                        self.store.delete(ABSENT, self.kind.name)
                    fresh_rv = True
                    self.read_pending_events()
                verb = "watch"
                rv = self.watch(rv)
                fresh_rv = False
            except KubeConnectError as e:
                self.live = False
                self._status(SourceState.ERROR, e.message, e.hint)
                return
            except Exception as e:  # every other failure becomes a status line and a paced retry
                self.live = False
                if self.stop.is_set():
                    return
                if not self.kind.required and isinstance(e, HttpError) and e.status == 404:
                    self.absent(f"{self.kind.name} not served (404 from the API server)")
                    rv = ""
                    self.stop.wait(ABSENT_RECHECK)
                    continue
                if needs_relist(e):
                    if not fresh_rv and rv:
                        # an RV from before an outage expired: relisting is the recovery, at the first step
                        self.backoff.reset()
                    rv = ""
                else:
                    fresh_rv = False  # another failure came between: an expired RV next is a recovery
                delay = self._wait_for(e)
                if isinstance(e, Silent):
                    state, message, detail, fatal = (
                        SourceState.STALE,
                        str(e),
                        f"the watch of {self.kind.name} went quiet",
                        False,
                    )
                else:
                    state, message, detail, fatal = classify(e, self.kind, self.target, verb)
                    fatal = fatal and not self.kind.optional  # the topology does not depend on it
                note = self.ignored_note() if isinstance(e, Malformed) else ""
                self._status(state, message, detail + (f" · {note}" if note else ""), self.clock() + delay, fatal)
                self.stop.wait(delay)

    def discover(self) -> bool:
        """Whether the kind's API group serves it (GET /apis/<group>/<version>): a group that
        is not there (no CRDs) is a state, said in the status with empty data, not an error."""
        gv = self.kind.group_version
        plural = self.kind.served_by or self.kind.path.rsplit("/", 1)[-1]
        try:
            resp = kubeconnect.get(self.api, f"/apis/{gv}", timeout=(CONNECT_TIMEOUT, self.cfg.request_timeout))
            doc = orjson.loads(resp.data)
            resp.release_conn()
        except HttpError as e:
            if e.status != 404:
                raise
            doc = {}
        except orjson.JSONDecodeError:
            raise Malformed(f"discovery /apis/{gv}: not JSON") from None
        resources = doc.get("resources") if isinstance(doc, dict) else None
        served = any(isinstance(r, dict) and r.get("name") == plural for r in resources or ())
        self.store.upsert(APIS, gv, served)
        if not served:
            if self.kind.served_by:
                self.absent(f"{self.kind.name} not read: no {plural} in {gv} (CRDs not installed)")
            else:
                self.absent(f"{plural} not served: no {gv} API (CRDs not installed)")
        return served

    def absent(self, message: str) -> None:
        """The kind is not served here: empty data, said in a live status (nothing to wait for)."""
        for coll in self.kind.collections:
            self.store.replace(coll, {})
        self.listed = True
        self.fresh = self.clock()
        self._status(SourceState.LIVE, message)

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
                    self.api,
                    f"/api/v1/namespaces/{s.namespace}/events",
                    query,
                    timeout=(CONNECT_TIMEOUT, self.cfg.request_timeout),
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
