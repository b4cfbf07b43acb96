"""The Azure source: ARM discovery and Azure Monitor SNAT metrics for the cluster in the store.

A Source (``start()``/``stop(timeout)``) like :class:`probes.dns.service.DnsService`: one
thread follows the store's topology; views read :meth:`AzureSnatService.report`, an
immutable :class:`SnatReport`, and never call Azure themselves.

- Which cluster: subscription and node resource group from the nodes' providerID
  (``[azure]`` settings override both); the load balancer ``kubernetes`` there names the
  managed cluster in its tags (probes.azure.discover: least-privilege order of calls).
- Discovery (load balancer ``kubernetes``, managed cluster, NAT gateway) is cached and
  refreshed one resource per cycle every ``REDISCOVER`` s; steady state costs only the
  metrics: two calls per refresh for the load balancer (ports; connections by state).
- The azure SDKs are imported in the worker thread, never at app start. Their own retry
  is off (``retry_total=0``): a 429 waits its Retry-After here, visibly, in the pane.
- The endpoint, sign-in authority and token scope come from ``azure.cloud`` /
  ``azure.arm_endpoint`` (probes.azure.cloud). ``enforce_https=False`` goes with each call
  only for a plain-HTTP loopback endpoint, as azure-core's tests do with
  ``BearerTokenCredentialPolicy``; it gets a placeholder token, never the credential chain.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import orjson

from probes.azure.cloud import PlaceholderCredential, resolve
from probes.azure.credchain import summarize
from probes.azure.discover import NAT_TYPES, hints_of, read_cluster, read_load_balancer, read_nat_gateway
from probes.azure.path import PathData
from probes.azure.pathread import STEPS, PathReader
from probes.azure.rawread import list_raw, send
from probes.azure.routes import RouteData, parse_route_table, parse_subnet, split_subnet_id
from probes.azure.snat import (
    Allocation,
    ClusterMetric,
    MetricsError,
    SnatFinding,
    SnatTable,
    allocation,
    cluster_metrics,
    join,
    merge_series,
    node_findings,
    parse_metrics,
)
from probes.azure.target import LB_NAME, AzureCallError, AzureTarget, grant, need
from probes.azure.warm import import_sdk
from probes.engine.nudge import LOOK_GAP, listen_all

log = logging.getLogger(__name__)

REDISCOVER = 1800.0  # seconds between re-reads of the managed cluster and the load balancer
ROUTES_REFRESH = 300.0  # route tables and the subnet change rarely: re-read every 5 min
PATH_REFRESH = 600.0  # NSGs, VNet (DNS servers, peerings), the subnet's route table: one call per cycle, every 10 min
# path steps the first, whole read leaves until the metrics are published (the egress
# identity's public IPs: the verdict of `check` does not need them)
DEFERRED = ("publicips",)
ROUTES_NODES_CHANGED = 30.0  # ... or this long after nodes came or went (cloud-provider-azure writes routes then)
MAX_RETRY_AFTER = 600.0
FULL_EVERY = 3600.0  # seconds between whole-window metrics reads; refreshes between read the last minutes
REVISE_MINUTES = 3  # Azure Monitor revises its newest 2-3 minutes for a while: each refresh reads them again
# a refresh's own share of a core stays under this: at 5,000 nodes a refresh (25,000 series
# merged and joined) costs ~0.7 s of CPU, so it comes every ~2.3 min instead of every
# minute; below ~2,000 nodes refresh_seconds decides. Never longer apart than PACED_MAX.
REFRESH_SHARE = 0.005
PACED_MAX = 300.0
# ARM reads whose last answer is kept for the evidence bundle (not the metrics: large, and no evidence)
RAW_KEPT = frozenset({"lb", "cluster", "subnet", "nsgs", "nsg", "vnets", "vnet", "routetables", "routetable"})
_PROVIDER_SUB = re.compile(r"/subscriptions/([^/]+)/resourceGroups/", re.I)
_PROVIDER_RG = re.compile(r"/resourceGroups/([^/]+)/", re.I)


class AzureState(str, Enum):
    DISABLED = "disabled"
    WAITING = "waiting"  # for the cluster's nodes (subscription, node resource group)
    CONNECTING = "connecting"
    LIVE = "live"
    CLUSTER_LEVEL = "cluster-level"  # outbound type without per-node metrics
    NO_CREDENTIAL = "no-credential"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    THROTTLED = "throttled"
    NOT_FOUND = "not-found"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class AzureSettings:
    enabled: bool = True
    subscription: str = ""  # "" = from the nodes' providerID
    node_resource_group: str = ""  # "" = from the nodes' providerID
    window_minutes: int = 30
    refresh_seconds: float = 60.0
    firewall_id: str = ""  # Azure Firewall resource ID (userDefinedRouting): SNATPortUtilization
    cloud: str = "AzureCloud"  # probes.azure.cloud.CLOUDS: ARM endpoint, sign-in authority, token scope
    arm_endpoint: str = ""  # "" = the cloud's; the demo points it at the lab (plain HTTP on loopback)
    credential: Callable[[], Any] | None = None  # factory; None = DefaultAzureCredential (placeholder on loopback)

    @staticmethod
    def from_config(az: Any, **kw: Any) -> AzureSettings:
        """From a validated probes.config.AzureConfig."""
        fields = {
            "enabled": az.enabled,
            "subscription": az.subscription,
            "node_resource_group": az.node_resource_group,
            "window_minutes": az.window_minutes,
            "refresh_seconds": az.refresh_seconds,
            "firewall_id": az.firewall_id,
            "cloud": az.cloud,
            "arm_endpoint": az.arm_endpoint,
        }
        return AzureSettings(**{**fields, **kw})


@dataclass(frozen=True, slots=True)
class SnatReport:
    """Everything the SNAT pane shows, at one moment."""

    version: int = 0
    state: AzureState = AzureState.WAITING
    message: str = ""
    detail: str = ""  # what to run or grant
    retry_at: float | None = None  # wall time of the next attempt after an error
    target: AzureTarget | None = None
    allocation: Allocation | None = None
    table: SnatTable | None = None
    findings: tuple[SnatFinding, ...] = ()
    cluster: tuple[ClusterMetric, ...] = ()
    updated: float = 0.0  # wall time of the last good metrics answer
    window_minutes: int = 30
    paced: float = 0.0  # seconds between refreshes when their cost spaces them beyond refresh_seconds, else 0
    calls: int = 0  # ARM calls made so far


def scope_of(provider_id: str) -> tuple[str, str]:
    """(subscription, resource group) named in a node's providerID, "" for what it lacks.

    The providerID carries the node resource group whole (often lower-cased: ARM names are
    case-insensitive); some published node dumps drop the subscription segment.
    """
    sub = _PROVIDER_SUB.search(provider_id)
    rg = _PROVIDER_RG.search(provider_id)
    return (sub.group(1) if sub else "", rg.group(1) if rg else "")


def identify(nodes: Any, settings: AzureSettings) -> tuple[str, str]:
    """(subscription, node resource group) from settings, else the nodes' providerID.

    The ``kubernetes.azure.com/cluster`` label is never the source of a resource group
    name: AKS cuts label values to 63 characters (``MC_…_westeurope`` becomes
    ``MC_…_westeur``; a cut that ends in ``_`` ends in ``z``), so a long node resource group
    is only whole in the providerID. Where both agree apart from case, the label's spelling
    is kept (it is what the portal shows).
    """
    sub, rg = settings.subscription, settings.node_resource_group
    for n in nodes:
        if sub and rg:
            break
        psub, prg = scope_of(getattr(n, "provider_id", "") or "")
        label = getattr(n, "resource_group", "") or ""
        if not sub and psub:
            sub = psub
        if not rg and prg:
            rg = label if label.lower() == prg.lower() else prg
    return sub, rg


def _retry_after(headers: Any) -> float | None:
    try:
        v = headers.get("Retry-After") if headers is not None else None
        return min(max(float(v), 1.0), MAX_RETRY_AFTER) if v is not None else None
    except (TypeError, ValueError):
        return None


def _error_body(text: str) -> tuple[str, str]:
    try:
        err = orjson.loads(text).get("error") or {}
        return str(err.get("code", "")), str(err.get("message", ""))
    except Exception:  # noqa: BLE001 - any body
        return "", text[:200]


def _classify(e: BaseException, scope: str) -> AzureCallError:
    """Any SDK or transport exception -> AzureCallError with a kind the pane knows."""
    if isinstance(e, AzureCallError):
        return e
    # lazy: the Azure SDK (~0.4 s) loads in the source's thread, never at start
    from azure.core.exceptions import ClientAuthenticationError, DecodeError, HttpResponseError, ServiceRequestError

    unavailable: tuple[type[BaseException], ...] = ()
    try:
        # lazy: the Azure SDK (~0.4 s) loads in the source's thread, never at start
        from azure.identity import CredentialUnavailableError

        unavailable = (CredentialUnavailableError,)
    except Exception:  # noqa: BLE001
        pass
    resp = getattr(e, "response", None)
    if isinstance(e, unavailable) or (isinstance(e, ClientAuthenticationError) and resp is None):
        return AzureCallError("no-credential", summarize(str(e)) or "no credential")
    if isinstance(e, DecodeError):  # a 200 whose body is not JSON
        return AzureCallError("malformed", "the body is not valid JSON", getattr(resp, "status_code", 0), scope=scope)
    if isinstance(e, HttpResponseError) and resp is not None:
        status = resp.status_code
        code, msg = _error_body(resp.text() if callable(getattr(resp, "text", None)) else "")
        code = code or getattr(getattr(e, "error", None), "code", "") or ""
        msg = msg or str(getattr(e, "message", e))
        kind = {401: "unauthorized", 403: "forbidden", 404: "not-found", 429: "throttled"}.get(
            status, "server" if status >= 500 else "http"
        )
        return AzureCallError(kind, msg, status, code, _retry_after(resp.headers), scope)
    if isinstance(e, ServiceRequestError):
        return AzureCallError("network", f"cannot reach Azure Resource Manager: {e}"[:300], scope=scope)
    return AzureCallError("error", f"{type(e).__name__}: {e}"[:300], scope=scope)


class AzureSnatService:
    """Source for the app: start() returns at once; stop(timeout) joins the worker thread."""

    name = "azure"

    def __init__(
        self,
        store: Any,
        settings: AzureSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        poll: float = 0.5,
    ) -> None:
        self.store = store
        self.settings = settings or AzureSettings()
        self.clock = clock
        self.poll = min(max(poll, 0.01), 1.0)
        self._lock = threading.Lock()
        self._report = SnatReport(
            state=AzureState.DISABLED if not self.settings.enabled else AzureState.WAITING,
            message="" if self.settings.enabled else "Azure is disabled ([azure] enabled = false)",
            window_minutes=self.settings.window_minutes,
        )
        self._stop = threading.Event()
        self._wake = threading.Event()  # `r`: fetch now
        self._nudged = threading.Event()  # the store moved, or `r`, or stop: the loop looks now
        self._thread: threading.Thread | None = None
        self._clients: dict[str, Any] = {}
        self._credential: Any = None
        self._target: AzureTarget | None = None
        self._stale: list[str] = []
        self._next_discovery = 0.0
        self._series: list[Any] = []
        self._full_at, self._full_nodes, self._full_lb = 0.0, -1, ""  # the last whole-window read
        self._read_at = 0.0  # when the last metrics read (whole or not) that succeeded was asked
        self._refresh_cpu = 0.0  # thread CPU seconds of the last refresh that read the last minutes
        self._cluster_series: list[Any] = []
        self._failures = 0
        self.calls = 0
        self._raw: dict[tuple[str, str], Any] = {}  # (call, scope) -> the last answer (RAW_KEPT)
        self._routes: Any = None  # probes.azure.routes.RouteData, once read
        self._next_routes = 0.0
        self._routes_step: tuple[Any, ...] = ()  # (RouteData base, subnet id) between the two calls of a refresh
        self._path: PathData | None = None
        self._path_reader = PathReader()
        self._path_todo: list[str] = []
        self._next_path = 0.0

    # --- reads (views) -------------------------------------------------------------------
    def report(self) -> SnatReport:
        with self._lock:
            return self._report

    def routes(self) -> Any:
        """probes.azure.routes.RouteData from the last route-table read, or None before the first."""
        with self._lock:
            return self._routes

    def path(self) -> PathData | None:
        """probes.azure.path.PathData from the last network-path read, or None before the first."""
        with self._lock:
            return self._path

    def _publish(self, **kw: Any) -> None:
        with self._lock:
            self._report = replace(self._report, version=self._report.version + 1, calls=self.calls, **kw)

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None or not self.settings.enabled:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="azure-snat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        t, self._thread = self._thread, None
        self._stop.set()
        self._nudged.set()
        if t is not None:
            t.join(timeout)
            if t.is_alive():  # still inside an SDK call: it ends on its own; do not pull its clients away
                return
        for c in self._clients.values():
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing must never raise
                pass
        self._clients.clear()
        cred, self._credential = self._credential, None
        if cred is not None and hasattr(cred, "close"):
            try:
                cred.close()
            except Exception:  # noqa: BLE001
                pass

    def refresh_now(self) -> None:
        """Fetch now instead of waiting for the refresh interval (a key in the pane)."""
        self._wake.set()
        self._nudged.set()

    # --- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        unlisten = listen_all((self.store,), self._nudged.set)
        try:
            self._follow()
        finally:
            for u in unlisten:
                u()

    def _follow(self) -> None:
        next_fetch = 0.0
        seen_nodes: tuple[Any, ...] = ()
        seen_topo: Any = None
        gap = min(LOOK_GAP, self.poll)
        import_sdk()  # while the nodes are being listed: the first cycle then starts with its calls
        while not self._stop.is_set():
            self._nudged.clear()  # before the store is read: a change after this ends the wait below
            looked = time.monotonic()
            fetching = False  # the nodes name a scope: next_fetch is when the loop must look
            try:
                topo = self.store.snapshot().topology
                nodes = topo.nodes
                sub, rg = identify(nodes, self.settings)
                fetching = bool(sub and rg)
                if not sub or not rg:
                    self._publish(
                        state=AzureState.WAITING,
                        message="waiting for the cluster's nodes (their providerID names the node resource group)"
                        if not nodes
                        else "the nodes carry no Azure providerID or node resource group",
                        detail="" if not nodes else "set [azure] subscription and node_resource_group",
                    )
                elif self._wake.is_set() or self.clock() >= next_fetch:
                    self._wake.clear()
                    next_fetch = self.clock() + self._cycle(sub, rg, nodes)
                    seen_nodes, seen_topo = tuple((n.name, n.internal_ip) for n in nodes), topo
                elif topo is not seen_topo:  # the same topology object: nothing to compare (5,000 tuples a poll)
                    seen_topo = topo
                    now_nodes = tuple((n.name, n.internal_ip) for n in nodes)
                    if now_nodes != seen_nodes and self._target is not None:
                        seen_nodes = now_nodes
                        self._rejoin(nodes)  # nodes came or went: re-join cached series, no ARM call
                        self._next_routes = min(self._next_routes, self.clock() + ROUTES_NODES_CHANGED)
            except Exception as e:  # noqa: BLE001 - shown in the pane, the loop goes on
                if self._stop.is_set():  # stop() came mid-cycle: nothing to report
                    break
                log.debug("azure source: cycle failed", exc_info=True)  # the pane shows the error
                self._publish(state=AzureState.ERROR, message=f"SNAT source failed: {type(e).__name__}: {e}"[:300])
                next_fetch = self.clock() + self.settings.refresh_seconds
            # asleep until the store moves, `r` or stop, the next fetch, or `poll` at most
            due = min(self.poll, next_fetch - self.clock()) if fetching else self.poll
            if self._nudged.wait(max(0.0, due)):
                # a burst of store writes (a relist, a rollout) looks at most once per gap
                rest = gap - (time.monotonic() - looked)
                if rest > 0 and not self._wake.is_set():
                    self._stop.wait(rest)
            if self._stop.is_set():
                break

    def _cycle(self, sub: str, rg: str, nodes: Any) -> float:
        """One refresh: discovery when due, then metrics. Returns seconds until the next one."""
        if self._report.state in (AzureState.WAITING, AzureState.NO_CREDENTIAL) and self._report.table is None:
            self._publish(
                state=AzureState.CONNECTING, message="reading the cluster's outbound setup from Azure…", detail=""
            )
        try:
            self._ensure_clients(sub)
            before = self.calls
            self._discover(sub, rg, nodes)
            # the first read is whole (check needs it at once); later refreshes take one call,
            # and only in a cycle without discovery: steady state stays at <= 3 calls a minute
            if self._routes is None or (
                self.calls == before and (self._routes_step or self.clock() >= self._next_routes)
            ):
                self._fetch_routes(whole=self._routes is None)
            # the path likewise: whole at first, then one call in a cycle that made no other
            first_path = self._path is None
            if first_path or (self.calls == before and (self._path_todo or self.clock() >= self._next_path)):
                self._fetch_path(nodes, whole=first_path)
            self._fetch(nodes)
            if first_path and self._path_todo:  # after the metrics are published: check need not wait
                self._fetch_path(nodes, whole=False)
        except AzureCallError as e:
            return self._failed(e)
        self._failures = 0
        return self._spacing()

    def _spacing(self) -> float:
        """Seconds to the next refresh: refresh_seconds, or longer when the last refresh's
        CPU would take more than REFRESH_SHARE of a core (at most PACED_MAX)."""
        return max(self.settings.refresh_seconds, min(PACED_MAX, self._refresh_cpu / REFRESH_SHARE))

    def _failed(self, e: AzureCallError) -> float:
        s = self.settings
        self._failures += 1
        wait = s.refresh_seconds
        target = self._target
        scope = e.scope or (target.lb_id if target else "")
        if e.kind == "no-credential":
            state = AzureState.NO_CREDENTIAL
            if e.message.startswith("tried "):  # which sources, and why each failed: one line
                msg = f"no Azure credential: {e.message}"
            else:
                msg = "DefaultAzureCredential found none (Azure CLI, managed identity, environment)"
            detail = (
                "run `az login` (and `az account set -s <subscription>`), or use a managed identity or "
                "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET; retrying every "
                f"{s.refresh_seconds:.0f} s"
            )
            self._credential = None
            self._clients.clear()
        elif e.kind == "unauthorized":
            state, msg = AzureState.UNAUTHORIZED, f"Azure rejected the credential ({e.code or 401}): {e.message}"
            detail = "run `az login` again (expired token or another tenant: `az login --tenant <tenant>`)"
            self._credential = None
            self._clients.clear()
        elif e.kind == "forbidden":
            state = AzureState.FORBIDDEN
            rg = target.node_resource_group if target else "the node resource group"
            msg = (
                f"no permission ({e.code or 403}): {e.need}"
                if e.need
                else f"no permission ({e.code or 403}) on {scope or rg}"
            )
            if e.call == "metrics" or "insights" in e.message.lower():
                detail = (
                    f"grant the Monitoring Reader role on the load balancer {LB_NAME} or on the node resource "
                    f"group {rg}: {grant('metrics', scope or rg)}"
                )
            elif e.call:
                detail = f"grant it with the Reader role there: {grant(e.call, scope or rg)} (README: Azure roles)"
            else:
                detail = (
                    f"grant the Reader role on the node resource group {rg} (load balancer, NAT gateway) "
                    f"and Monitoring Reader for the metrics"
                )
        elif e.kind == "throttled":
            wait = e.retry_after or min(s.refresh_seconds * 2, MAX_RETRY_AFTER)
            state, msg = AzureState.THROTTLED, f"Azure throttled the request (429): retrying in {wait:.0f} s"
            detail = "ARM read limits are per principal: other tools using the same identity count too"
        elif e.kind == "not-found":
            state, msg = AzureState.NOT_FOUND, f"not found: {e.message}"
            detail = "check [azure] subscription / node_resource_group, or `az account set`"
            self._target = None
        else:
            wait = min(s.refresh_seconds, 5.0 * 2 ** min(self._failures - 1, 6))
            if e.kind == "server":
                msg = f"Azure answered {e.status} ({e.code or 'server error'}): retrying in {wait:.0f} s"
            elif e.kind == "malformed":
                msg = f"Azure Monitor sent a malformed answer ({e.message}); retrying in {wait:.0f} s"
            else:
                msg = f"{e.message}; retrying in {wait:.0f} s"
            state, detail = AzureState.ERROR, ""
        self._publish(state=state, message=msg, detail=detail, retry_at=self.clock() + wait)
        return wait

    # --- Azure calls ---------------------------------------------------------------------
    def _opts(self) -> dict[str, Any]:
        # a plain-HTTP endpoint is loopback only (probes.azure.cloud refuses any other)
        return {"enforce_https": False} if self.settings.arm_endpoint.startswith("http://") else {}

    def _ensure_clients(self, sub: str) -> None:
        if self._clients.get("sub") == sub:
            return
        s = self.settings
        try:  # imported here, in the worker thread: never at app start
            # lazy: the Azure SDK clients (~0.4 s) load in the source's thread, never at start
            from azure.mgmt.containerservice import ContainerServiceClient
            from azure.mgmt.monitor import MonitorManagementClient
            from azure.mgmt.network import NetworkManagementClient
        except ImportError as e:
            raise AzureCallError(
                "error", f"the Azure SDK is not installed ({e.name}): pip install aksnet-top"
            ) from None
        try:
            endpoint = resolve(s.cloud, s.arm_endpoint)
        except ValueError as e:
            raise AzureCallError("error", f"azure.arm_endpoint: {e}") from None
        if self._credential is None:
            try:
                if s.credential is not None:
                    self._credential = s.credential()
                elif endpoint.loopback:  # a test server or the demo's lab: no credential chain
                    self._credential = PlaceholderCredential()
                else:
                    # lazy: the Azure SDK (~0.4 s) loads in the source's thread, never at start
                    from azure.identity import DefaultAzureCredential

                    self._credential = DefaultAzureCredential(authority=endpoint.authority)
            except Exception as e:  # noqa: BLE001
                raise AzureCallError("no-credential", summarize(str(e))) from None
        kw: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": 10,
            "read_timeout": 30,
            "base_url": endpoint.url,
            "credential_scopes": [endpoint.scope],
        }
        self._clients = {
            "sub": sub,
            "cs": ContainerServiceClient(self._credential, sub, **kw),
            "net": NetworkManagementClient(self._credential, sub, **kw),
            "mon": MonitorManagementClient(self._credential, sub, **kw),
        }

    def _call(self, name: str, scope: str, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        """One ARM call, counted; its error names the permission `name` (target.CALLS) needs."""
        self.calls += 1
        try:
            result = fn(*a, **kw, **self._opts())
        except Exception as e:  # noqa: BLE001 - classified for the pane
            err = _classify(e, scope)
            if err.kind == "forbidden" and not err.need:
                err.need = need(name, err.scope or scope)
                err.call = name
            raise err from None
        if name in RAW_KEPT:  # the last body of each resource read: the evidence behind a finding
            self._raw[(name, scope)] = result
        return result

    def raw_bodies(self) -> dict[tuple[str, str], Any]:
        """The last answer of each ARM read but the metrics, by (call, scope): SDK models or
        dicts (probes.record.evidence turns them into bodies when a finding needs them)."""
        return dict(self._raw)

    def _discover(self, sub: str, rg: str, nodes: Any) -> None:
        now = self.clock()
        t = self._target
        if t is not None and (t.subscription, t.node_resource_group.lower()) != (sub, rg.lower()):
            t = self._target = None
        if t is None:
            self._stale = ["lb", "cluster"]
            t = AzureTarget(sub, rg, firewall_id=self.settings.firewall_id)
            todo = ["lb", "cluster"]
        else:
            if now >= self._next_discovery and not self._stale:
                self._stale = ["lb", "cluster"]
            todo = self._stale[:1]  # one resource per refresh: steady state stays at ≤ 3 calls/min
        for what in todo:
            t = self._discover_cluster(t, nodes) if what == "cluster" else self._discover_outbound(t)
            if what in self._stale:
                self._stale.remove(what)
        if todo and not self._stale:
            self._next_discovery = now + REDISCOVER
        self._target = t

    def _discover_cluster(self, t: AzureTarget, nodes: Any) -> AzureTarget:
        hints = hints_of(nodes)
        t = read_cluster(self._call, self._clients["cs"], t, hints)
        if t.outbound_type in NAT_TYPES:
            t = read_nat_gateway(self._call, self._clients["net"], t, hints)
        return t

    def _discover_outbound(self, t: AzureTarget) -> AzureTarget:
        return read_load_balancer(self._call, self._clients["net"], t)

    def _fetch_routes(self, whole: bool = True) -> None:
        """Route tables in the node resource group, then the cluster subnet: two calls every
        ROUTES_REFRESH s (in two cycles unless `whole`). Errors stay in RouteData.error; they
        never stop the SNAT source."""
        t = self._target
        if t is None or "net" not in self._clients:
            return
        net = self._clients["net"]
        rg = t.node_resource_group
        scope = f"/subscriptions/{t.subscription}/resourceGroups/{rg}"
        base = RouteData(outbound_type=t.outbound_type, max_pods=t.max_pods, surge=t.surge, fetched_at=self.clock())
        try:
            if self._routes_step:
                data, sid = self._routes_step
                self._routes_step = ()
            else:
                self._next_routes = self.clock() + ROUTES_REFRESH
                # lazy: the Azure SDK (~0.4 s) loads in the source's thread, never at start
                from azure.mgmt.network.operations._operations import build_route_tables_list_request

                req = build_route_tables_list_request(rg, t.subscription)
                tables = self._call("routetables", scope, list_raw, net, req)
                names: list[str] = []
                routes: list[Any] = []
                subnet_ids: list[str] = []
                for d in tables:
                    name, rs, subs = parse_route_table(d)
                    names.append(name)
                    routes.extend(rs)
                    subnet_ids.extend(subs)
                old = self._routes
                data = replace(
                    base, tables=tuple(names), routes=tuple(routes), subnet=old.subnet if old is not None else None
                )
                sid = t.subnet_id or next(iter(subnet_ids), "")
                if not whole:  # the subnet in the next cycle; the routes are published now
                    self._routes_step = (data, sid)
                    with self._lock:
                        self._routes = data
                    return
            subnet = None
            parts = split_subnet_id(sid) if sid else None
            if parts is not None:
                d = self._call("subnet", sid, net.subnets.get, *parts).as_dict()
                subnet = parse_subnet(d)
            else:  # managed VNet without a route table (Azure CNI): the VNet in the node resource group
                vnets = self._call(
                    "vnets", scope, lambda **kw: [x.as_dict() for x in net.virtual_networks.list(rg, **kw)]
                )
                for v in vnets:
                    vnet_subnets = (v.get("properties") or {}).get("subnets") or ()
                    if vnet_subnets:
                        subnet = parse_subnet(vnet_subnets[0])
                        break
            data = replace(data, subnet=subnet)
        except AzureCallError as e:
            self._routes_step = ()
            self._next_routes = self.clock() + min(ROUTES_REFRESH, max(self.settings.refresh_seconds, 5.0))
            data = replace(
                base,
                error=f"cannot read the route tables in {rg}: {e.message or e.kind}"
                + (" (grant Reader on the node resource group)" if e.kind == "forbidden" else ""),
            )
        with self._lock:
            self._routes = data

    def _fetch_path(self, nodes: Any, whole: bool) -> None:
        """The nodes' network path (probes.azure.pathread), every PATH_REFRESH s: all steps
        at once the first time, later one ARM call per cycle. A refused read is a note in
        the data; the SNAT source goes on."""
        t = self._target
        if t is None or "net" not in self._clients:
            return
        if not self._path_todo:
            self._path_todo = list(STEPS)
            self._next_path = self.clock() + PATH_REFRESH
        data = self._path or PathData()
        hints = hints_of(nodes)
        self._path_reader.route_data = self._routes
        while self._path_todo:
            before = self.calls
            if whole and self._path_todo[0] in DEFERRED and self._path is None:
                break  # not needed at once (check's verdict): read after the metrics
            step = self._path_todo.pop(0)
            data = self._path_reader.run_step(step, self._call, self._clients["net"], t, hints, data)
            if not whole and self.calls != before:
                break
        data = replace(data, fetched_at=self.clock())
        with self._lock:
            self._path = data

    def _timespan(self, minutes: int = 0) -> str:
        end = self.clock()
        start = end - 60 * (minutes or self.settings.window_minutes)
        f = "%Y-%m-%dT%H:%M:%SZ"
        return f"{datetime.fromtimestamp(start, UTC).strftime(f)}/{datetime.fromtimestamp(end, UTC).strftime(f)}"

    def _metrics(
        self,
        resource: str,
        names: str,
        aggregation: str,
        filter: str | None = None,
        top: int | None = None,
        minutes: int = 0,
    ) -> list[Any]:
        """Metrics - List through the monitor client's pipeline; the body is parsed as raw JSON
        (1,000 series × 30 points through SDK models costs far more than the join)."""
        # lazy: the Azure SDK (~0.4 s) loads in the source's thread, never at start
        from azure.mgmt.monitor.operations._metrics_operations import build_list_request

        mon = self._clients["mon"]
        req = build_list_request(
            resource_uri=resource.lstrip("/"),
            timespan=self._timespan(minutes),
            interval="PT1M",
            metricnames=names,
            aggregation=aggregation,
            top=top,
            filter=filter,
        )
        # stream=True: the pipeline's ContentDecodePolicy would otherwise parse the whole
        # body with the standard json module first (a 30 MB answer at 5,000 nodes: ~0.35 s
        # with the GIL held and a transient tree of objects the allocator keeps)
        # a non-2xx answer is classified by _call as every other ARM call's (_classify)
        body = self._call("metrics", resource, send, mon, req, stream=True).content
        try:
            return parse_metrics(body)
        except MetricsError as e:
            raise AzureCallError("malformed", str(e), scope=resource) from None

    def _fetch(self, nodes: Any) -> None:
        t = self._target
        assert t is not None
        n = len(nodes)
        if t.outbound_type == "loadBalancer":
            if not t.lb_id or not t.outbound_rule:
                raise AzureCallError(
                    "not-found",
                    f"load balancer {LB_NAME} in {t.node_resource_group} has no outbound "
                    f"rule: outbound SNAT does not go through it",
                )
            now = self.clock()
            cpu0 = time.thread_time()
            # after a whole window, a refresh asks only for the minutes since the last read
            # that succeeded, plus the ones Azure Monitor may have revised since, and merges
            # them in: at 5,000 nodes the 30-minute answer is ~30 MB to parse, a minute's
            # refresh (4 minutes) an eighth of it. After failed refreshes (throttled, 5xx)
            # the next read spans the whole gap, so the chart and the failed count have no
            # hole. The whole window again every FULL_EVERY seconds (a late revision older
            # than REVISE_MINUTES heals then), when the node count changed (new backends
            # deserve their history) or the load balancer did.
            minutes = REVISE_MINUTES + max(1, round((now - self._read_at) / 60))
            whole = (
                not self._series
                or now - self._full_at >= FULL_EVERY
                or n != self._full_nodes
                or t.lb_id != self._full_lb
                or minutes >= self.settings.window_minutes
            )
            if whole:
                minutes = 0
                # the last series go before this window's are read: the shown table does not
                # need them, and old and new together were the memory peak of every refresh
                self._series = []
            ports = self._metrics(
                t.lb_id,
                "AllocatedSnatPorts,UsedSnatPorts",
                "Average,Maximum",
                "BackendIPAddress eq '*'",
                max(n, 10),
                minutes,
            )
            conns = self._metrics(
                t.lb_id,
                "SnatConnectionCount",
                "Total",
                "BackendIPAddress eq '*' and ConnectionState eq '*'",
                max(3 * n, 10),
                minutes,
            )
            self._read_at = now
            if whole:
                self._series = ports + conns
                self._full_at, self._full_nodes, self._full_lb = now, n, t.lb_id
            else:
                since = now - 60 * self.settings.window_minutes
                self._series = merge_series(self._series, ports + conns, since)
            self._rejoin(nodes, fresh=True)
            if not whole:  # what a refresh costs from now on (a whole read costs more, and is rare)
                self._refresh_cpu = time.thread_time() - cpu0
                every = self._spacing()
                paced = every if every > self.settings.refresh_seconds else 0.0
                if paced != self._report.paced:
                    self._publish(paced=paced)
            return
        # NAT gateway / firewall: cluster level only
        cluster: tuple[ClusterMetric, ...] = ()
        if t.outbound_type in NAT_TYPES and t.nat_gateway_id:
            series = self._metrics(
                t.nat_gateway_id, "SNATConnectionCount,TotalConnectionCount,PacketDropCount", "Total"
            )
            cluster = cluster_metrics(series, {})
        elif t.firewall_id:
            series = self._metrics(t.firewall_id, "SNATPortUtilization", "Average,Maximum")
            cluster = cluster_metrics(series, {"snatportutilization": "maximum"}, {"snatportutilization": "%"})
        why = {
            "managedNATGateway": "a NAT gateway",
            "userAssignedNATGateway": "a NAT gateway",
            "userDefinedRouting": "your firewall or appliance (user-defined routing)",
        }.get(t.outbound_type, t.outbound_type)
        detail = (
            "NAT Gateway metrics have no per-node dimension: SNAT ports are shared by the whole subnet "
            "(64,000 per public IP, on demand), so there is no per-node allocation to exhaust"
            if t.outbound_type in NAT_TYPES
            else "SNAT happens on the firewall, after the nodes: Azure Firewall reports SNATPortUtilization "
            "for the firewall as a whole" + ("" if t.firewall_id else " (set [azure] firewall_id to chart it)")
        )
        self._publish(
            state=AzureState.CLUSTER_LEVEL,
            target=t,
            cluster=cluster,
            table=None,
            allocation=None,
            message=f"outbound type {t.outbound_type}: SNAT is done by {why}, not per node",
            detail=detail,
            retry_at=None,
            updated=self.clock(),
            findings=(),
        )

    def _rejoin(self, nodes: Any, fresh: bool = False) -> None:
        t = self._target
        if t is None or not self._series:
            return
        alloc = allocation(len(nodes), t.surge, t.outbound_ips, t.fixed_ports, t.idle_timeout)
        table = join(self._series, ((n.name, n.internal_ip, n.pool) for n in nodes), alloc.expected)
        findings = node_findings(table, alloc) + alloc.findings
        kw: dict[str, Any] = {}
        if fresh:
            kw = {
                "state": AzureState.LIVE,
                "message": "",
                "detail": t.cluster_note,
                "retry_at": None,
                "updated": self.clock(),
            }
        self._publish(target=t, allocation=alloc, table=table, findings=findings, cluster=(), **kw)


__all__ = ["AzureSnatService", "AzureSettings", "AzureState", "AzureTarget", "SnatReport", "identify"]
