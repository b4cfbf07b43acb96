"""The lab API server's write side, for the kinds ``aksnet-top agent install`` creates.

The lab serves the read side of core/v1 from the scenario; this module adds an in-memory
store, with a real API server's answers, for namespaces, serviceaccounts (core/v1),
roles and rolebindings (rbac.authorization.k8s.io/v1), networkpolicies
(networking.k8s.io/v1) and daemonsets (apps/v1): create,
get, list (label selectors), replace with optimistic concurrency, JSON merge patch,
delete, server-side dry run, and the v1 Status bodies a real server sends (AlreadyExists,
NotFound, Conflict, Invalid, BadRequest, Forbidden).

It is transport-free: :meth:`WritableObjects.handle` takes a request (method, path,
query, body, user) and returns ``(status, body)``, or None when the path is not its own,
so the lab's HTTP handler (and a test's) can put it in front of its read-only routes.

Namespaces: when given the lab's :class:`probes.lab.cluster.LabStore`, a namespace created
here is stored *there*, so the lab's existing list/get/watch of namespaces shows it and a
scenario namespace (``kube-system``…) answers 409 AlreadyExists; GETs of namespaces are
then left to the lab. Without a store, namespaces live here like the other kinds.

Simplifications, on purpose: deleting a namespace removes it and everything stored here
in it at once (a real server keeps it ``Terminating`` while its finalizer empties it);
watch is not served for these kinds (405); PATCH accepts JSON merge patch only (415 for
strategic merge and JSON patch); no managedFields.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .selectors import SelectorError, parse_label_selector

__all__ = ["WritableObjects", "WritableKind", "SERVED", "status_failure"]

Response = tuple[int, bytes]
Authorize = Callable[[str, str, str, str, "str | None"], bool]  # (user, verb, group, resource, namespace)


@dataclass(frozen=True, slots=True)
class WritableKind:
    resource: str
    group: str  # "" for core
    version: str
    kind: str
    namespaced: bool
    singular: str
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How a real server names the resource in messages: ``daemonsets.apps``."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def qualified_kind(self) -> str:
        """How a real server names the kind in Invalid messages: ``DaemonSet.apps``."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


RBAC = "rbac.authorization.k8s.io"
NETWORKING = "networking.k8s.io"
AZMONITORING = "azmonitoring.coreos.com"
SERVED: dict[tuple[str, str], WritableKind] = {
    ("", "namespaces"): WritableKind("namespaces", "", "v1", "Namespace", False, "namespace", ("ns",)),
    ("", "serviceaccounts"): WritableKind(
        "serviceaccounts", "", "v1", "ServiceAccount", True, "serviceaccount", ("sa",)
    ),
    (RBAC, "roles"): WritableKind("roles", RBAC, "v1", "Role", True, "role"),
    (RBAC, "rolebindings"): WritableKind("rolebindings", RBAC, "v1", "RoleBinding", True, "rolebinding"),
    ("apps", "daemonsets"): WritableKind("daemonsets", "apps", "v1", "DaemonSet", True, "daemonset", ("ds",)),
    (NETWORKING, "networkpolicies"): WritableKind(
        "networkpolicies", NETWORKING, "v1", "NetworkPolicy", True, "networkpolicy", ("netpol",)
    ),
    ("", "configmaps"): WritableKind("configmaps", "", "v1", "ConfigMap", True, "configmap", ("cm",)),
    # Azure Managed Prometheus's CRD (served where the metrics add-on is on; always, here)
    (AZMONITORING, "podmonitors"): WritableKind("podmonitors", AZMONITORING, "v1", "PodMonitor", True, "podmonitor"),
}
# kinds that live in the lab's store when one is attached: its lists, watches and tables serve them
LAB_KINDS = frozenset({"namespaces", "networkpolicies"})
_GROUP_VERSIONS = {"apps": "v1", RBAC: "v1", NETWORKING: "v1", AZMONITORING: "v1"}
CONFIGMAP_LIMIT = 1024 * 1024  # kube-apiserver: data + binaryData of one ConfigMap
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_VERBS = ["create", "delete", "get", "list", "patch", "update"]
_SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def status_failure(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    """A v1 Status body exactly as a real API server writes it."""
    d: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        d["details"] = details
    d["code"] = code
    return orjson.dumps(d)


class _Fail(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.response: Response = (code, status_failure(code, reason, message, details))


def _details(k: WritableKind, name: str | None = None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if k.group:
        d["group"] = k.group
    d["kind"] = k.resource
    d.update(extra)
    return d


def _invalid(k: WritableKind, name: str, field: str, cause_reason: str, detail: str) -> _Fail:
    d: dict[str, Any] = {"name": name}
    if k.group:
        d["group"] = k.group
    d["kind"] = k.kind
    d["causes"] = [{"reason": cause_reason, "message": detail, "field": field}]
    return _Fail(422, "Invalid", f'{k.qualified_kind} "{name}" is invalid: {field}: {detail}', d)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _q1(query: dict[str, list[str]], key: str) -> str | None:
    v = query.get(key)
    return v[-1] if v else None


class _Route:
    __slots__ = ("kind", "namespace", "name")

    def __init__(self, kind: WritableKind, namespace: str | None, name: str | None) -> None:
        self.kind, self.namespace, self.name = kind, namespace, name


class WritableObjects:
    """In-memory objects behind the lab's write verbs. Thread-safe (one lock).

    ``lab_store``: the lab's :class:`~probes.lab.cluster.LabStore`; namespaces then live there.
    ``authorize(user, verb, group, resource, namespace) -> bool``: False answers 403
    Forbidden with the real server's message (default: everyone may do everything).
    """

    def __init__(
        self,
        *,
        lab_store: Any = None,
        authorize: Authorize | None = None,
        clock: Callable[[], float] = time.time,
        first_rv: int = 5000,
    ) -> None:
        self._lab = lab_store
        self._authorize = authorize
        self._clock = clock
        self._lock = threading.RLock()
        self._rv = first_rv
        self._objs: dict[tuple[str, str, str], dict[str, Any]] = {}  # (resource, namespace, name) -> object
        self._created_ns: set[str] = set()  # namespaces created here (in the lab's store when attached)
        self._created_lab: set[tuple[str, str]] = set()  # (resource, "ns/name") of LAB_KINDS created here

    # ------------------------------------------------------------------ public API
    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        user: str,
        content_type: str = "application/merge-patch+json",
    ) -> Response | None:
        """Answer one request, or None when the path is not served here."""
        method = method.upper()
        path = path.rstrip("/") or "/"
        if method in ("GET", "HEAD") and path in self._discovery_paths():
            return 200, orjson.dumps(self.discovery()[path])
        route = self._parse(path)
        if route is None:
            return None
        k = route.kind
        if k.resource in LAB_KINDS and self._lab is not None and method in ("GET", "HEAD"):
            return None  # the lab serves namespaces and networkpolicies (with watch and tables); we only write them
        try:
            verb = self._verb(method, route, query)
            if verb is None:
                return None
            self._check_access(user, verb, route)
            if verb == "list":
                return self._list(route, query)
            if verb == "get":
                return self._get(route)
            if verb == "watch":
                raise _Fail(
                    405,
                    "MethodNotAllowed",
                    f"the lab does not serve watch for {k.qualified}: "
                    "the server does not allow this method on the requested resource",
                )
            dry = "All" in query.get("dryRun", [])
            if verb == "create":
                return self._create(route, body, dry)
            if verb == "update":
                return self._replace(route, body, dry)
            if verb == "patch":
                return self._patch(route, body, dry, content_type)
            return self._delete(route, dry)
        except _Fail as f:
            return f.response

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A deep copy of a stored object (namespaces: from the lab's store when attached)."""
        with self._lock:
            if resource == "namespaces":
                o = self._ns_get(name)
            elif resource in LAB_KINDS and self._lab is not None:
                e = self._lab.get(resource, f"{namespace}/{name}")
                o = e.obj if e is not None else None
            else:
                o = self._objs.get((resource, namespace or "", name))
            return copy.deepcopy(o) if o is not None else None

    def objects(self) -> list[dict[str, Any]]:
        """Deep copies of everything stored here (namespaces created here included)."""
        with self._lock:
            out = [copy.deepcopy(o) for o in self._objs.values()]
            if self._lab is not None:
                with self._lab.cond:
                    for name in self._created_ns:
                        e = self._lab.get("namespaces", name)
                        if e is not None:
                            out.append(copy.deepcopy(e.obj))
                    for res, key in sorted(self._created_lab):
                        e = self._lab.get(res, key)
                        if e is not None:
                            out.append(copy.deepcopy(e.obj))
            return out

    def discovery(self) -> dict[str, dict[str, Any]]:
        """Discovery bodies by path: ``/apis``, ``/apis/<group>``, ``/apis/<group>/<version>``.

        Also ``"/api/v1#resources"``: APIResource entries for the core kinds served here,
        for the lab to merge into its ``/api/v1`` APIResourceList (kubectl needs them to
        map ``kind: ServiceAccount`` to a path).
        """
        groups = []
        out: dict[str, dict[str, Any]] = {}
        for group, version in _GROUP_VERSIONS.items():
            gv = {"groupVersion": f"{group}/{version}", "version": version}
            g = {"name": group, "versions": [gv], "preferredVersion": gv}
            groups.append(g)
            out[f"/apis/{group}"] = {"kind": "APIGroup", "apiVersion": "v1", **g}
            out[f"/apis/{group}/{version}"] = {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}",
                "resources": [self._resource_entry(k) for k in SERVED.values() if k.group == group],
            }
        out["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        out["/api/v1#resources"] = {"resources": [self._resource_entry(k) for k in SERVED.values() if not k.group]}
        return out

    # ------------------------------------------------------------------ routing
    def _discovery_paths(self) -> set[str]:
        return {
            "/apis",
            *(f"/apis/{g}" for g in _GROUP_VERSIONS),
            *(f"/apis/{g}/{v}" for g, v in _GROUP_VERSIONS.items()),
        }

    @staticmethod
    def _resource_entry(k: WritableKind) -> dict[str, Any]:
        e: dict[str, Any] = {
            "name": k.resource,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": list(_VERBS),
        }
        if k.short_names:
            e["shortNames"] = list(k.short_names)
        if k.resource == "daemonsets":
            e["categories"] = ["all"]
        return e

    @staticmethod
    def _parse(path: str) -> _Route | None:
        parts = path.split("/")[1:]
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis" and _GROUP_VERSIONS.get(parts[1]) == parts[2]:
            group, rest = parts[1], parts[3:]
        else:
            return None
        if not rest or any(not p for p in rest):
            return None
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        if len(rest) > 2:
            return None  # subresources (status, proxy...) are not ours
        k = SERVED.get((group, rest[0]))
        if k is None or (ns is not None and not k.namespaced):
            return None
        name = rest[1] if len(rest) == 2 else None
        if name is not None and k.namespaced and ns is None:
            return None
        return _Route(k, ns, name)

    @staticmethod
    def _verb(method: str, r: _Route, query: dict[str, list[str]]) -> str | None:
        if method in ("GET", "HEAD"):
            if (_q1(query, "watch") or "").lower() in ("true", "1"):
                return "watch"
            return "get" if r.name else "list"
        if method == "POST":
            return "create" if r.name is None and (r.namespace is not None or not r.kind.namespaced) else None
        if r.name is None:
            return None
        return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)

    def _check_access(self, user: str, verb: str, r: _Route) -> None:
        k = r.kind
        ns = r.namespace if k.namespaced else None
        if self._authorize is None or self._authorize(user, verb, k.group, k.resource, ns):
            return
        who = f'{k.qualified} "{r.name}"' if r.name else k.qualified
        scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
        raise _Fail(
            403,
            "Forbidden",
            f'{who} is forbidden: User "{user}" cannot {verb} resource "{k.resource}" in API group "{k.group}" {scope}',
            _details(k, r.name),
        )

    # ------------------------------------------------------------------ storage helpers
    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))

    def _ns_get(self, name: str) -> dict[str, Any] | None:
        if self._lab is not None:
            e = self._lab.get("namespaces", name)
            return e.obj if e is not None else None
        return self._objs.get(("namespaces", "", name))

    def _ns_put(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self._lab is not None:
            return self._lab.put("namespaces", obj).obj  # the lab's store sets resourceVersion
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self._objs[("namespaces", "", obj["metadata"]["name"])] = obj
        return obj

    def _store_get(self, k: WritableKind, ns: str | None, name: str) -> dict[str, Any] | None:
        if k.resource == "namespaces":
            return self._ns_get(name)
        if k.resource in LAB_KINDS and self._lab is not None:
            e = self._lab.get(k.resource, f"{ns}/{name}")
            return e.obj if e is not None else None
        return self._objs.get((k.resource, ns or "", name))

    def _store_put(self, k: WritableKind, obj: dict[str, Any]) -> dict[str, Any]:
        if k.resource == "namespaces":
            return self._ns_put(obj)
        if k.resource in LAB_KINDS and self._lab is not None:
            md = obj["metadata"]
            self._created_lab.add((k.resource, f"{md.get('namespace', '')}/{md['name']}"))
            return self._lab.put(k.resource, obj).obj  # the lab's store sets resourceVersion
        md = obj["metadata"]
        md["resourceVersion"] = str(self._next_rv())
        self._objs[(k.resource, md.get("namespace", ""), md["name"])] = obj
        return obj

    def _decode(self, k: WritableKind, body: bytes) -> dict[str, Any]:
        try:
            obj = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as e:
            raise _Fail(
                400,
                "BadRequest",
                f"the object provided is unrecognized (must be of type {k.kind}): "
                f"couldn't get version/kind; json parse error: {e}",
            ) from None
        if not isinstance(obj, dict):
            raise _Fail(
                400,
                "BadRequest",
                f"the object provided is unrecognized (must be of type {k.kind}): "
                "couldn't get version/kind; json parse error: expected an object",
            )
        kind, api_version = obj.get("kind", k.kind), obj.get("apiVersion", k.api_version)
        if kind != k.kind or api_version != k.api_version:
            raise _Fail(
                400,
                "BadRequest",
                f"the API version in the data ({api_version}) does not match the expected API version ({k.api_version})"
                if kind == k.kind
                else f"the object provided is unrecognized (must be of type {k.kind}): {kind}",
            )
        md = obj.get("metadata")
        if md is None:
            md = obj["metadata"] = {}
        if not isinstance(md, dict):
            raise _Fail(
                400,
                "BadRequest",
                f"the object provided is unrecognized (must be of type {k.kind}): metadata must be an object",
            )
        obj["kind"], obj["apiVersion"] = k.kind, k.api_version
        return obj

    def _validate(self, k: WritableKind, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        name = md.get("name") or ""
        if not name:
            raise _invalid(
                k, "", "metadata.name", "FieldValueRequired", "Required value: name or generateName is required"
            )
        rx, msg = (_LABEL, _LABEL_MSG) if k.resource == "namespaces" else (_SUBDOMAIN, _SUBDOMAIN_MSG)
        limit = 63 if k.resource == "namespaces" else 253
        if not isinstance(name, str) or not rx.match(name) or len(name) > limit:
            raise _invalid(k, str(name), "metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {msg}')
        if k.resource == "daemonsets":
            spec = obj.get("spec") or {}
            sel = ((spec.get("selector") or {}).get("matchLabels")) or {}
            if not spec.get("selector"):
                raise _invalid(k, name, "spec.selector", "FieldValueRequired", "Required value")
            labels = (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}
            if any(labels.get(key) != v for key, v in sel.items()):
                raise _invalid(
                    k,
                    name,
                    "spec.template.metadata.labels",
                    "FieldValueInvalid",
                    f"Invalid value: {labels!r}: `selector` does not match template `labels`",
                )
            if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
                raise _invalid(k, name, "spec.template.spec.containers", "FieldValueRequired", "Required value")
        if k.resource == "configmaps":
            self._validate_configmap(k, name, obj)
        if k.resource == "rolebindings" and not (obj.get("roleRef") or {}).get("name"):
            raise _invalid(k, name, "roleRef.name", "FieldValueRequired", "Required value")

    @staticmethod
    def _validate_configmap(k: WritableKind, name: str, obj: dict[str, Any]) -> None:
        """A real server's checks: keys, base64 binaryData (a decode error is 400 there), the 1 MiB total."""
        total = 0
        for field in ("data", "binaryData"):
            values = obj.get(field) or {}
            if not isinstance(values, dict):
                raise _Fail(400, "BadRequest", f'ConfigMap in version "v1" cannot be handled: {field} is not a map')
            for key, v in values.items():
                if not _CONFIG_KEY.match(str(key)) or len(str(key)) > 253:
                    raise _invalid(
                        k,
                        name,
                        f"{field}[{key}]",
                        "FieldValueInvalid",
                        f'Invalid value: "{key}": a valid config key must consist of alphanumeric characters, '
                        "'-', '_' or '.'",
                    )
                if field == "binaryData":
                    try:
                        total += len(base64.b64decode(str(v), validate=True))
                    except (binascii.Error, ValueError):
                        raise _Fail(
                            400, "BadRequest", f'ConfigMap in version "v1" cannot be handled: illegal base64 in {key}'
                        ) from None
                else:
                    total += len(str(v).encode())
        if total > CONFIGMAP_LIMIT:
            raise _invalid(k, name, "[]", "FieldValueTooLong", f"Too long: must have at most {CONFIGMAP_LIMIT} bytes")

    def _defaults(self, k: WritableKind, obj: dict[str, Any]) -> None:
        """What a real server adds on create."""
        if k.resource == "namespaces":
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif k.resource == "daemonsets":
            spec = obj["spec"]
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault(
                "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
            )
            obj["status"] = {
                "currentNumberScheduled": 0,
                "numberMisscheduled": 0,
                "desiredNumberScheduled": 0,
                "numberReady": 0,
            }

    # ------------------------------------------------------------------ verbs
    def _get(self, r: _Route) -> Response:
        with self._lock:
            o = self._store_get(r.kind, r.namespace, r.name or "")
            if o is None:
                raise self._not_found(r.kind, r.name or "")
            return 200, orjson.dumps(o)

    def _list(self, r: _Route, query: dict[str, list[str]]) -> Response:
        k = r.kind
        try:
            match = parse_label_selector(_q1(query, "labelSelector"))
        except SelectorError as e:
            raise _Fail(400, "BadRequest", str(e)) from None
        with self._lock:
            if k.resource == "namespaces":
                objs = [o for (res, _, _), o in sorted(self._objs.items()) if res == "namespaces"]
            else:
                objs = [
                    o
                    for (res, ns, _), o in sorted(self._objs.items())
                    if res == k.resource and (r.namespace is None or ns == r.namespace)
                ]
            items = []
            for o in objs:
                if match is None or match(o["metadata"].get("labels") or {}):
                    item = {key: v for key, v in o.items() if key not in ("kind", "apiVersion")}
                    items.append(item)
            body = {
                "kind": f"{k.kind}List",
                "apiVersion": k.api_version,
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }
            return 200, orjson.dumps(body)

    def _create(self, r: _Route, body: bytes, dry: bool) -> Response:
        k = r.kind
        obj = self._decode(k, body)
        md = obj["metadata"]
        if k.namespaced:
            if md.get("namespace") not in (None, "", r.namespace):
                raise _Fail(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            md["namespace"] = r.namespace
        else:
            md.pop("namespace", None)
        with self._lock:
            if not md.get("name") and md.get("generateName"):
                md["name"] = f"{md['generateName']}{uuid.uuid4().hex[:5]}"
            self._validate(k, obj)
            name = md["name"]
            if k.namespaced and self._ns_get(r.namespace or "") is None:
                raise _Fail(
                    404,
                    "NotFound",
                    f'namespaces "{r.namespace}" not found',
                    {"name": r.namespace, "kind": "namespaces"},
                )
            if self._store_get(k, r.namespace, name) is not None:
                raise _Fail(409, "AlreadyExists", f'{k.qualified} "{name}" already exists', _details(k, name))
            for key in (
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "managedFields",
                "generation",
                "selfLink",
            ):
                md.pop(key, None)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = self._now()
            if k.resource == "daemonsets":
                md["generation"] = 1
            self._defaults(k, obj)
            if dry:
                obj["metadata"]["resourceVersion"] = ""
                return 201, orjson.dumps(obj)
            stored = self._store_put(k, obj)
            if k.resource == "namespaces":
                self._created_ns.add(name)
            return 201, orjson.dumps(stored)

    def _replace(self, r: _Route, body: bytes, dry: bool, obj: dict[str, Any] | None = None) -> Response:
        k = r.kind
        name = r.name or ""
        if obj is None:
            obj = self._decode(k, body)
        md = obj["metadata"]
        if md.get("name") not in (None, name):
            raise _Fail(
                400,
                "BadRequest",
                f"the name of the object ({md.get('name')}) does not match the name on the URL ({name})",
            )
        md["name"] = name
        if k.namespaced:
            if md.get("namespace") not in (None, "", r.namespace):
                raise _Fail(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            md["namespace"] = r.namespace
        with self._lock:
            old = self._store_get(k, r.namespace, name)
            if old is None:
                raise self._not_found(k, name)
            rv = md.get("resourceVersion") or ""
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise _Fail(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {k.qualified} "{name}": the object '
                    "has been modified; please apply your changes to the latest version and try again",
                    _details(k, name),
                )
            self._validate(k, obj)
            self._check_immutable(k, old, obj)
            self._defaults(k, obj)  # as on create; spec and status of the old object win below
            omd = old["metadata"]
            for key in ("uid", "creationTimestamp", "generation"):
                if key in omd:
                    md[key] = omd[key]
                else:
                    md.pop(key, None)
            md.pop("managedFields", None)
            if k.resource == "namespaces":
                md.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
                obj["spec"] = copy.deepcopy(old.get("spec") or {"finalizers": ["kubernetes"]})
            if "status" in old:
                obj["status"] = copy.deepcopy(old["status"])  # the main resource never writes status
            else:
                obj.pop("status", None)
            if k.resource == "daemonsets" and obj.get("spec") != old.get("spec"):
                md["generation"] = int(omd.get("generation", 1)) + 1
            md["resourceVersion"] = omd["resourceVersion"]
            if obj == old:
                return 200, orjson.dumps(old)  # a no-op update keeps the resourceVersion
            if dry:
                return 200, orjson.dumps(obj)
            return 200, orjson.dumps(self._store_put(k, obj))

    def _patch(self, r: _Route, body: bytes, dry: bool, content_type: str) -> Response:
        k = r.kind
        ct = content_type.split(";")[0].strip().lower()
        if ct != "application/merge-patch+json":
            raise _Fail(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted "
                f"media types include: application/merge-patch+json (the lab serves merge patch only, "
                f"got {ct or 'none'})",
            )
        try:
            patch = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise _Fail(400, "BadRequest", f"error decoding patch: {e}") from None
        if not isinstance(patch, dict):
            raise _Fail(400, "BadRequest", "error decoding patch: a merge patch must be a JSON object")
        with self._lock:
            old = self._store_get(k, r.namespace, r.name or "")
            if old is None:
                raise self._not_found(k, r.name or "")
            merged = _merge_patch(copy.deepcopy(old), patch)
            if not isinstance(merged.get("metadata"), dict):
                merged["metadata"] = {}
            merged["kind"], merged["apiVersion"] = k.kind, k.api_version
            if "resourceVersion" not in (patch.get("metadata") or {}):
                merged["metadata"]["resourceVersion"] = ""  # a patch is unconditional unless it names one
            return self._replace(r, b"", dry, merged)

    def _delete(self, r: _Route, dry: bool) -> Response:
        k = r.kind
        name = r.name or ""
        with self._lock:
            old = self._store_get(k, r.namespace, name)
            if old is None:
                raise self._not_found(k, name)
            if k.resource != "namespaces":
                if not dry and k.resource in LAB_KINDS and self._lab is not None:
                    self._lab.delete(k.resource, f"{r.namespace}/{name}")
                    self._created_lab.discard((k.resource, f"{r.namespace}/{name}"))
                elif not dry:
                    del self._objs[(k.resource, r.namespace or "", name)]
                return 200, orjson.dumps(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": _details(k, name, uid=old["metadata"].get("uid", "")),
                    }
                )
            if name in _SYSTEM_NAMESPACES:
                raise _Fail(
                    403,
                    "Forbidden",
                    f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                    {"name": name, "kind": "namespaces"},
                )
            if self._lab is not None and name not in self._created_ns:
                raise _Fail(
                    403,
                    "Forbidden",
                    f'namespaces "{name}" is forbidden: the lab\'s scenario namespaces may not be deleted',
                    {"name": name, "kind": "namespaces"},
                )
            gone = copy.deepcopy(old)
            gone["metadata"]["deletionTimestamp"] = self._now()
            gone["metadata"]["deletionGracePeriodSeconds"] = 0
            gone["status"] = {"phase": "Terminating"}
            if not dry:
                for key in [key for key in self._objs if key[1] == name and key[0] != "namespaces"]:
                    del self._objs[key]
                if self._lab is not None:
                    for res, lab_key in [x for x in self._created_lab if x[1].startswith(f"{name}/")]:
                        self._lab.delete(res, lab_key)
                        self._created_lab.discard((res, lab_key))
                    self._lab.delete("namespaces", name)
                    self._created_ns.discard(name)
                else:
                    del self._objs[("namespaces", "", name)]
            return 200, orjson.dumps(gone)

    @staticmethod
    def _not_found(k: WritableKind, name: str) -> _Fail:
        return _Fail(404, "NotFound", f'{k.qualified} "{name}" not found', _details(k, name))

    @staticmethod
    def _check_immutable(k: WritableKind, old: dict[str, Any], new: dict[str, Any]) -> None:
        name = old["metadata"]["name"]
        if k.resource == "daemonsets":
            a, b = (old.get("spec") or {}).get("selector"), (new.get("spec") or {}).get("selector")
            if a != b:
                raise _invalid(
                    k, name, "spec.selector", "FieldValueInvalid", f"Invalid value: {b!r}: field is immutable"
                )
        if k.resource == "rolebindings" and old.get("roleRef") != new.get("roleRef"):
            raise _invalid(
                k, name, "roleRef", "FieldValueInvalid", f"Invalid value: {new.get('roleRef')!r}: cannot change roleRef"
            )
