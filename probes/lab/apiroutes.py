"""The lab API server's request handler: routing, discovery and the GET entry point,
put together from one class per job (lists, watch, pod proxy, faults, writes)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import orjson

from .apilist import ListReads
from .apirequest import ApiError, truthy
from .apiwatch import WatchStream
from .apiwrites import Writes
from .ingresslab import served_group_versions
from .podproxy import PROXY_PATH, PodProxy
from .store import GROUP_RESOURCES, KINDS, NAMESPACED, RESOURCES, api_version

__all__ = ["ApiHandler"]

_SHORT = {
    "nodes": ["no"],
    "pods": ["po"],
    "services": ["svc"],
    "events": ["ev"],
    "namespaces": ["ns"],
    "ingresses": ["ing"],
    "certificates": ["cert", "certs"],
    "certificaterequests": ["cr", "crs"],
}
_CATEGORIES = {
    "certificates": ["cert-manager"],
    "certificaterequests": ["cert-manager"],
    "orders": ["cert-manager", "cert-manager-acme"],
    "challenges": ["cert-manager", "cert-manager-acme"],
}
_SINGULAR = {"nodes": "node", "pods": "pod", "services": "service", "events": "event", "namespaces": "namespace"}


class ApiHandler(ListReads, WatchStream, PodProxy, Writes):
    def do_GET(self) -> None:
        self._begin()
        try:
            try:
                route = self._route()
            except ApiError as e:
                if e.code != 404 or self.lab.writable is None:
                    raise
                route = self._writable_get(e)
            self._user = self._authenticate()
            rule = self.lab.faults.take(self._path, self._verb)
            if rule is not None and self._apply_fault(rule, route):
                return
            route()
        except ApiError as e:
            self._send_error(e)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            self.close_connection = True

    do_HEAD = do_GET

    def _route(self) -> Callable[[], None]:
        p = self._path
        if p in ("/healthz", "/livez", "/readyz"):
            return lambda: self._send(200, b"ok", "text/plain; charset=utf-8")
        if p == "/version":
            self._verb = "discovery"
            return self._version
        if p == "/api":
            self._verb = "discovery"
            return self._api
        if p == "/apis":
            self._verb = "discovery"
            return self._apis
        if p == "/api/v1":
            self._verb = "discovery"
            return self._resources
        if p.startswith("/api/v1/namespaces/") and "/proxy" in p:
            m = PROXY_PATH.fullmatch(unquote(self._raw_path))
            if m:
                ns, ident, rest = m.groups()
                self._verb, self._resource, self._ns, self._proxy_id = "proxy", "pods", ns, ident
                return lambda: self._proxy(ns, ident, rest or "")
        group_route = self._group_route(p)
        if group_route is not None:
            return group_route
        if p.startswith("/apis/") and p.count("/") >= 4:
            gv = "/".join(p.split("/")[2:4])
            if gv in self._served_gvs():
                return self._resources_route(p.split("/")[4:], gv)
        elif p.startswith("/apis/") and p.count("/") <= 3:
            doc = self._group_discovery(p)
            if doc is not None:
                self._verb = "discovery"
                return lambda: self._send(200, orjson.dumps(doc))
        parts = p.split("/")[3:] if p.startswith("/api/v1/") else None
        if not parts:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return self._resources_route(parts, "v1")

    def _resources_route(self, parts: list[str], gv: str) -> Callable[[], None]:
        """The list/get/watch of `parts` ([namespaces, ns,] resource[, name]) under `gv`."""
        watch = truthy(self.q1("watch"))
        if parts and parts[0] == "watch":  # legacy .../watch/... paths
            watch, parts = True, parts[1:]
        ns = None
        if len(parts) >= 3 and parts[0] == "namespaces":
            ns, parts = parts[1], parts[2:]
        elif len(parts) == 2 and parts[0] == "namespaces":
            parts = ["namespaces", parts[1]]
        if (
            not parts
            or parts[0] not in RESOURCES
            or api_version(parts[0]) != gv
            or len(parts) > 2
            or (ns is not None and parts[0] not in NAMESPACED)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return self._resource_route(parts[0], ns, parts[1] if len(parts) == 2 else None, watch)

    def _group_route(self, p: str) -> Callable[[], None] | None:
        """/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>] of the group kinds the
        lab reads (NetworkPolicies; Calico's when the scenario has its CRDs); discovery of
        those groups. None: not one of them (the writable side may answer)."""
        parts = p.split("/")[2:] if p.startswith("/apis/") else []
        if len(parts) < 2:
            return None
        served = self._groups()
        gv = f"{parts[0]}/{parts[1]}"
        if gv not in served:
            return None
        rest = parts[2:]
        if not rest:
            if gv in self._served_gvs():  # networking.k8s.io/v1: the ingress side's discovery lists both
                return None
            self._verb = "discovery"
            return lambda: self._send(200, orjson.dumps(self._group_resources(gv)))
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        resource = served[gv].get(rest[0]) if len(rest) <= 2 else None
        if resource is None or (ns is not None and resource not in NAMESPACED):
            if self.lab.writable is not None or gv in self._served_gvs():
                return None  # another side of the lab may serve it (the ingress path's, the writable's)
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return self._resource_route(resource, ns, rest[1] if len(rest) == 2 else None, truthy(self.q1("watch")))

    def _groups(self) -> dict[str, dict[str, str]]:
        """group/version -> plural -> store id, of the group kinds this lab serves."""
        out: dict[str, dict[str, str]] = {}
        spec = self.lab.scenario.extra.get("policies")
        calico = bool(getattr(spec, "calico_crds", False))
        sgc = "egress_gateway" in self.lab.scenario.extra  # the section installs the CRD
        for rid, (group, version, plural) in GROUP_RESOURCES.items():
            if (group == "crd.projectcalico.org" and not calico) or (
                group == "egressgateway.kubernetes.azure.com" and not sgc
            ):
                continue
            out.setdefault(f"{group}/{version}", {})[plural] = rid
        return out

    def _group_resources(self, gv: str) -> dict[str, Any]:
        res = []
        for plural, rid in self._groups()[gv].items():
            res.append(
                {
                    "name": plural,
                    "singularName": KINDS[rid].lower(),
                    "namespaced": rid in NAMESPACED,
                    "kind": KINDS[rid],
                    "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                    **({"shortNames": ["netpol"]} if rid == "networkpolicies" else {}),
                    **({"shortNames": ["sgc"]} if rid == "staticgatewayconfigurations" else {}),
                }
            )
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}

    def _resource_route(self, resource: str, ns: str | None, name: str | None, watch: bool) -> Callable[[], None]:
        self._resource, self._ns = resource, ns
        if name is not None and resource in NAMESPACED and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if watch:
            self._verb = "watch"
            return lambda: self._watch(resource, ns, name)
        if name is not None:
            self._verb = "get"
            return lambda: self._get(resource, ns, name)
        self._verb = "list"
        return lambda: self._list(resource, ns)

    # ------------------------------------------------------------------ the ingress path's groups
    def _served_gvs(self) -> set[str]:
        """The group/versions served here: discovery.k8s.io and networking.k8s.io always,
        cert-manager's and Gateway API's only when the scenario installs their CRDs."""
        return served_group_versions(self.lab.scenario)

    def _group_discovery(self, p: str) -> dict[str, Any] | None:
        """/apis/<group> and /apis/<group>/<version> of a group served here, with the writable
        side's resources of the same group merged in (networking.k8s.io: networkpolicies)."""
        segs = p.split("/")[2:]
        served = self._served_gvs()
        gvs = [gv for gv in sorted(served) if gv.split("/")[0] == segs[0]]
        if not gvs or (len(segs) == 2 and f"{segs[0]}/{segs[1]}" not in served):
            return None
        extra = self._writable_discovery() if self.lab.writable is not None else None
        if len(segs) == 1:
            ver = {"groupVersion": gvs[0], "version": gvs[0].split("/")[1]}
            return {"kind": "APIGroup", "apiVersion": "v1", "name": segs[0], "versions": [ver], "preferredVersion": ver}
        gv = gvs[0] if f"{segs[0]}/{segs[1]}" == gvs[0] else f"{segs[0]}/{segs[1]}"
        res: list[Any] = [
            {
                "name": r,
                "singularName": KINDS[r].lower(),
                "namespaced": r in NAMESPACED,
                "kind": KINDS[r],
                "verbs": ["get", "list", "watch"],
                **({"shortNames": _SHORT[r]} if r in _SHORT else {}),
                **({"categories": _CATEGORIES[r]} if r in _CATEGORIES else {}),
            }
            for r in RESOURCES
            if api_version(r) == gv
        ]
        if gv in self._groups():  # the NetworkPolicies the lab reads, in the same group/version
            have = {x["name"] for x in res}
            res += [x for x in self._group_resources(gv)["resources"] if x["name"] not in have]
        theirs = extra.get(p) if isinstance(extra, Mapping) else None
        if isinstance(theirs, Mapping):
            have = {x["name"] for x in res}
            res += [x for x in theirs.get("resources") or [] if isinstance(x, Mapping) and x.get("name") not in have]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}

    def _group_list(self) -> list[dict[str, Any]]:
        out = []
        for gv in sorted(self._served_gvs()):
            group, version = gv.split("/")
            v = {"groupVersion": gv, "version": version}
            out.append({"name": group, "versions": [v], "preferredVersion": v})
        return out

    # ------------------------------------------------------------------ discovery
    def _version(self) -> None:
        v = self.lab.scenario.cluster.kubernetes_version
        major, minor, _ = v.split(".")
        self._send(
            200,
            orjson.dumps(
                {
                    "major": major,
                    "minor": minor,
                    "gitVersion": f"v{v}",
                    "gitCommit": "5a5b5c5d5e5f6061626364656667686970717273",
                    "gitTreeState": "clean",
                    "buildDate": "2024-11-12T09:34:17Z",
                    "goVersion": "go1.22.8",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            ),
        )

    def _api(self) -> None:
        self._send(
            200,
            orjson.dumps(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.lab.host}:{self.lab.port}"}
                    ],
                }
            ),
        )

    def _apis(self) -> None:
        ours = self._group_list()  # the ingress path's groups
        doc: Any = None
        if self.lab.writable is not None:
            out = self._writable_call("GET", b"")
            if out is not None and out[0] != 200:
                self._send(out[0], out[1])
                return
            doc = orjson.loads(out[1]) if out is not None else None
            if doc is None:
                d = self._writable_discovery()
                if isinstance(d, Mapping):
                    doc = d.get("/apis") or (d if d.get("kind") == "APIGroupList" else None)
                    doc = orjson.loads(doc) if isinstance(doc, bytes) else doc
        groups: list[Any] = list(ours)
        have = {g["name"] for g in groups}
        for g in (doc or {}).get("groups") or [] if isinstance(doc, Mapping) else []:
            if isinstance(g, Mapping) and g.get("name") not in have:
                groups.append(g)
                have.add(g.get("name"))
        for gv in self._groups():  # the group kinds the lab reads (NetworkPolicies, Calico's CRDs)
            group, version = gv.split("/")
            if group not in have:
                v = {"groupVersion": gv, "version": version}
                groups.append({"name": group, "versions": [v], "preferredVersion": v})
                have.add(group)
        self._send(200, orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))

    def _resources(self) -> None:
        res: list[Mapping[str, Any]] = []
        for r in RESOURCES:
            if api_version(r) != "v1":
                continue
            res.append(
                {
                    "name": r,
                    "singularName": _SINGULAR[r],
                    "namespaced": r in NAMESPACED,
                    "kind": KINDS[r],
                    "verbs": ["get", "list", "watch"],
                    "shortNames": _SHORT[r],
                    **({"categories": ["all"]} if r in ("pods", "services") else {}),
                    "storageVersionHash": base64.b64encode(r.encode()).decode()[:11] + "=",
                }
            )
        pods = next(x for x in res if x["name"] == "pods")
        res.insert(
            res.index(pods) + 1,
            {
                "name": "pods/proxy",
                "singularName": "",
                "namespaced": True,
                "kind": "PodProxyOptions",
                "verbs": ["create", "delete", "get", "patch", "update"],
            },
        )
        if self.lab.writable is not None:
            # extra core resources (serviceaccounts...): discovery()["/api/v1#resources"] (or "/api/v1"),
            # an APIResourceList-like {"resources": [...]} or a plain list
            d = self._writable_discovery()
            extra = (d.get("/api/v1#resources") or d.get("/api/v1")) if isinstance(d, Mapping) else None
            if isinstance(extra, Mapping):
                extra = extra.get("resources")
            if isinstance(extra, list):
                have = {x["name"] for x in res}
                res += [x for x in extra if isinstance(x, Mapping) and x.get("name") not in have]
        self._send(200, orjson.dumps({"kind": "APIResourceList", "groupVersion": "v1", "resources": res}))
