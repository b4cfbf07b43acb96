"""Install and uninstall the agent's objects over the API (the only writer).

Nothing in aksnet-top writes to a cluster except these functions, and they run only when
the user names ``aksnet-top agent install`` or ``uninstall``. They use the
client from :func:`probes.kube.connect.load` (kubeconfig, exec plugins, TLS, proxies) to
send plain JSON, like :func:`probes.kube.connect.get`; an official kubernetes ApiClient is
accepted too.

Install is idempotent: create; on 409 AlreadyExists read the object and, if what we want
is already there, report ``unchanged``, else replace it with the read resourceVersion
(optimistic concurrency; a 409 Conflict re-reads and tries again) and report
``configured``. A namespace that exists and was not created by aksnet-top is left
exactly as it is, and ``uninstall`` never deletes it.

Every failure becomes :class:`InstallError`: one line in the user's words (what failed,
what it means, what to do next), with the lines of what was already done.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from probes.kube.topology import LABEL_LOCALDNS, local_ip

from .manifest import AGENT_NAME, AGENT_NAMESPACE, PART_OF, READER_ROLE

__all__ = ["InstallError", "install", "uninstall", "discover", "display_name", "USER_AGENT"]

USER_AGENT = "aksnet-top/0.1 (agent install)"
MANAGED_BY = "app.kubernetes.io/managed-by"
REQUEST_TIMEOUT = (10.0, 30.0)  # connect, read (seconds)
CONFLICT_RETRIES = 3

# kind -> (API path prefix, plural, kubectl's qualified singular)
_KINDS: dict[str, tuple[str, str, str]] = {
    "Namespace": ("/api/v1", "namespaces", "namespace"),
    "ServiceAccount": ("/api/v1", "serviceaccounts", "serviceaccount"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", "role.rbac.authorization.k8s.io"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", "rolebinding.rbac.authorization.k8s.io"),
    "NetworkPolicy": (
        "/apis/networking.k8s.io/v1",
        "networkpolicies",
        "networkpolicy.networking.k8s.io",
    ),
    "ConfigMap": ("/api/v1", "configmaps", "configmap"),
    "DaemonSet": ("/apis/apps/v1", "daemonsets", "daemonset.apps"),
    "PodMonitor": ("/apis/azmonitoring.coreos.com/v1", "podmonitors", "podmonitor.azmonitoring.coreos.com"),
}
_PERMISSIONS_HINT = (
    "ask a cluster admin to run the install (or to apply `aksnet-top agent manifest` output), or for rights to "
    "create namespaces and to create/get/update/delete serviceaccounts, roles, rolebindings, "
    "networkpolicies.networking.k8s.io and daemonsets.apps in {ns}"
)


class InstallError(Exception):
    """A failed install/uninstall step. ``message`` is one line for the user; ``done`` lists
    the objects handled before the failure (same format as the return value)."""

    def __init__(self, message: str, done: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.done = list(done)

    def __str__(self) -> str:
        return self.message


class _Http(Exception):
    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message, self.details = status, reason, message, details


def display_name(obj: dict[str, Any]) -> str:
    """``daemonset.apps/aksnet-top-agent``, as kubectl prints it."""
    return f"{_KINDS[obj['kind']][2]}/{obj['metadata']['name']}"


def _paths(obj: dict[str, Any]) -> tuple[str, str]:
    """(collection path, object path)."""
    prefix, plural, _ = _KINDS[obj["kind"]]
    md = obj["metadata"]
    ns = md.get("namespace")
    coll = (
        f"{prefix}/namespaces/{quote(ns, safe='')}/{plural}"
        if ns and obj["kind"] != "Namespace"
        else f"{prefix}/{plural}"
    )
    return coll, f"{coll}/{quote(md['name'], safe='')}"


def _server(api: Any) -> str:
    server = getattr(api, "server", None)  # probes.kube.client.KubeClient
    if isinstance(server, str):
        return server
    try:
        return str(api.configuration.host)
    except AttributeError:
        return "the API server"


def _send(
    api: Any, method: str, path: str, body: Any, query: Sequence[tuple[str, str]], headers: dict[str, str]
) -> tuple[int, str, bytes]:
    """(status, reason, body) through either client: ours from `probes.kube.connect.load`
    (urllib3 errors pass through), or an official kubernetes ApiClient (still accepted)."""
    if hasattr(api, "request") and not hasattr(api, "param_serialize"):
        # lazy: orjson (~5 ms with json, uuid) only when the installer talks to a cluster, not for `agent manifest`
        import orjson

        payload = orjson.dumps(body) if body is not None else None
        resp = api.request(method, path, list(query), headers=headers, body=payload, timeout=REQUEST_TIMEOUT)
        try:
            return resp.status, resp.reason or "", resp.data or b""
        finally:
            resp.release_conn()
    m, url, hdrs, payload, _ = api.param_serialize(
        method, path, query_params=list(query), header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    resp = api.call_api(m, url, header_params=hdrs, body=payload, _request_timeout=REQUEST_TIMEOUT)
    try:
        return resp.status, resp.reason or "", resp.read() or b""
    finally:
        resp.response.release_conn()


def _call(api: Any, method: str, path: str, body: Any = None, query: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """One request; the decoded JSON answer, or _Http for a non-2xx answer. Connection
    failures raise InstallError directly (nothing else can be said about them)."""
    # lazy: orjson (~5 ms with json, uuid) only when the installer talks to a cluster, not for `agent manifest`
    import orjson

    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        status, reason, data = _send(api, method, path, body, query, headers)
    except Exception as e:
        _connection_failure(api, e)
        raise
    try:
        doc = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError:
        doc = {"message": data[:200].decode("utf-8", "replace").strip()}
    if not isinstance(doc, dict):
        doc = {}
    if 200 <= status < 300:
        return doc
    raise _Http(
        status,
        str(doc.get("reason") or reason or ""),
        str(doc.get("message") or reason or ""),
        details if isinstance(details := doc.get("details"), dict) else {},
    )


def _connection_failure(api: Any, e: BaseException) -> None:
    """Raise InstallError for a failure to talk to the server at all; return for anything else."""
    # lazy: urllib3 (~30 ms) only when the installer talks to a cluster
    import urllib3

    why: Any = e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) and e.reason else e
    if type(e).__name__ == "ApiException" or isinstance(
        why, urllib3.exceptions.SSLError
    ):  # TLS: the official client says status 0
        text = str(getattr(e, "reason", None) or why)
        line = (text.strip().splitlines() or ["unknown error"])[-1]
        raise InstallError(
            f"cannot talk to the API server at {_server(api)}: {line} — check the kubeconfig's "
            "certificate authority and `kubectl get --raw /readyz`"
        ) from None
    if isinstance(e, (urllib3.exceptions.HTTPError, OSError)):
        raise InstallError(
            f"cannot reach the API server at {_server(api)} ({type(why).__name__}: {why}) — check "
            "the network path (VPN, private cluster, authorized IP ranges) and `kubectl get --raw /readyz`"
        ) from None


def _user_message(e: _Http, verb: str, what: str, kind: str, namespace: str | None, api: Any) -> str:
    """One line: what failed, what it means, what to do."""
    where = f"in namespace {namespace}" if namespace else "at the cluster scope"
    msg = e.message.strip().splitlines()[0] if e.message.strip() else e.reason
    if e.status == 401:
        return (
            f"the API server at {_server(api)} did not accept your credentials (401 Unauthorized) — refresh them "
            "with `az aks get-credentials -g <resource-group> -n <cluster>` (Entra ID clusters: "
            "`kubelogin convert-kubeconfig -l azurecli`) and check with `kubectl auth whoami`"
        )
    if e.status == 403:
        extra = ""
        if kind in ("Role", "RoleBinding") and verb in ("create", "update"):
            extra = (
                " (granting the readers' Role also needs you to hold what it grants: get/list/watch pods "
                "and get pods/proxy)"
            )
        return f"you may not {verb} {what} {where}: {msg}{extra} — " + _PERMISSIONS_HINT.format(
            ns=namespace or AGENT_NAMESPACE
        )
    if e.status == 404:
        if kind == "PodMonitor":
            return (
                f"the cluster does not serve PodMonitors (azmonitoring.coreos.com/v1, 404: {msg}) — enable Azure "
                "Managed Prometheus (`az aks update --enable-azure-monitor-metrics ...`) or install without --podmonitor"
            )
        if (e.details or {}).get("kind") == "namespaces" and namespace:
            return f"namespace {namespace} does not exist (404: {msg}) — run the install again; it creates it first"
        return (
            f"the API server does not serve {what} (404 NotFound: {msg}) — is the context pointing at a "
            "Kubernetes cluster (1.16 or newer)? check with `kubectl api-resources`"
        )
    if e.status == 422:
        hint = (
            " — remove the old agent first with `aksnet-top agent uninstall`"
            if "immutable" in msg or "cannot change" in msg
            else ""
        )
        return f"the API server rejected {what} as invalid: {msg}{hint}"
    if e.status == 409:
        return f"{what} kept changing while installing (409 {e.reason}: {msg}) — run the command again"
    if e.status == 429 or e.status >= 500:
        return (
            f"the API server failed to {verb} {what} ({e.status} {e.reason}: {msg}) — it may be overloaded or "
            "upgrading; try again in a minute (check with `kubectl get --raw /readyz`)"
        )
    return f"could not {verb} {what} {where}: {e.status} {e.reason}: {msg}"


def _fail(e: _Http, verb: str, obj: dict[str, Any], namespace: str | None, api: Any, done: list[str]) -> InstallError:
    """`verb` on `obj` failed. Collection verbs (create, list) name the resource ("daemonsets"),
    object verbs name the object ("daemonset.apps/aksnet-top-agent")."""
    what = _KINDS[obj["kind"]][1] if verb in ("create", "list") else display_name(obj)
    return InstallError(_user_message(e, verb, what, obj["kind"], namespace, api), done)


def _is_subset(want: Any, have: Any) -> bool:
    """True when every field of `want` is in `have` with the same value (server defaults
    add fields; they do not count as a difference)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _is_subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(_is_subset(a, b) for a, b in zip(want, have))
    return want == have


def _ours(obj: dict[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) == PART_OF


def _replacement(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    """The object to PUT: ours, keeping labels and annotations others added to metadata."""
    body = copy.deepcopy(want)
    md, hmd = body["metadata"], have.get("metadata") or {}
    for key in ("labels", "annotations"):
        merged = {**(hmd.get(key) or {}), **(md.get(key) or {})}
        if merged:
            md[key] = merged
    md["resourceVersion"] = hmd.get("resourceVersion", "")
    return body


def _dry(dry_run: bool) -> list[tuple[str, str]]:
    return [("dryRun", "All")] if dry_run else []


def install(objs: Sequence[dict[str, Any]], api_client: Any, *, dry_run: bool = False) -> list[str]:
    """Create or update `objs` (in order); one line per object: created|configured|unchanged.

    ``dry_run``: the server's dry run (``?dryRun=All``): validated and authorized by the
    API server, persisted nowhere. Raises InstallError.
    """
    done: list[str] = []
    suffix = " (server dry run)" if dry_run else ""
    new_namespaces: set[str] = set()
    for obj in objs:
        name = display_name(obj)
        coll, path = _paths(obj)
        ns = obj["metadata"].get("namespace") if obj["kind"] != "Namespace" else None
        if dry_run and ns in new_namespaces:
            # the server cannot dry-run a create in a namespace that does not exist yet
            done.append(f"{name} created (dry run, not sent: namespace {ns} does not exist yet)")
            continue
        try:
            _call(api_client, "POST", coll, obj, _dry(dry_run))
            done.append(f"{name} created{suffix}")
            if obj["kind"] == "Namespace":
                new_namespaces.add(obj["metadata"]["name"])
            continue
        except _Http as e:
            if e.status != 409 or e.reason != "AlreadyExists":
                raise _fail(e, "create", obj, ns, api_client, done) from None
        done.append(_update(api_client, obj, path, ns, dry_run, done) + suffix)
    return done


def _update(api: Any, obj: dict[str, Any], path: str, ns: str | None, dry_run: bool, done: list[str]) -> str:
    """The object exists: leave it, or replace it; the verb for the report line."""
    name = display_name(obj)
    for _ in range(CONFLICT_RETRIES):
        try:
            have = _call(api, "GET", path)
        except _Http as e:
            raise _fail(e, "get", obj, ns, api, done) from None
        if obj["kind"] == "Namespace" and not _ours(have):
            return f"{name} unchanged (it exists and is not managed by aksnet-top: left as is)"
        if _is_subset(obj, have):
            return f"{name} unchanged"
        try:
            _call(api, "PUT", path, _replacement(obj, have), _dry(dry_run))
            return f"{name} configured"
        except _Http as e:
            if e.status == 409 and e.reason == "Conflict":
                continue  # changed between our read and write: read again
            raise _fail(e, "update", obj, ns, api, done) from None
    raise InstallError(
        f"{name} kept changing while installing (409 Conflict {CONFLICT_RETRIES} times) — run the command again", done
    )


def _delete(
    api: Any,
    obj: dict[str, Any],
    ns: str | None,
    dry_run: bool,
    done: list[str],
    query: Sequence[tuple[str, str]] = (),
    *,
    any_404: bool = False,
    optional: bool = False,
) -> None:
    """Delete one object; a 404 for it is "not found" (``any_404``: any 404, for a kind
    whose API may not be served at all, like the PodMonitor without Managed Prometheus;
    ``optional``: an object only some installs have, not reported when absent)."""
    name = display_name(obj)
    _, path = _paths(obj)
    try:
        _call(api, "DELETE", path, None, [*query, *_dry(dry_run)])
        done.append(f"{name} deleted" + (" (server dry run)" if dry_run else ""))
    except _Http as e:
        if e.status == 404 and (any_404 or (e.details or {}).get("name") == obj["metadata"]["name"]):
            if not optional:
                done.append(f"{name} not found")
            return
        raise _fail(e, "delete", obj, ns, api, done) from None


def _ref(kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if namespace:
        md["namespace"] = namespace
    return {"kind": kind, "metadata": md}


def uninstall(api_client: Any, namespace: str = AGENT_NAMESPACE, *, dry_run: bool = False) -> list[str]:
    """Delete the DaemonSet, the readers' RoleBindings and Role, the ServiceAccount, then
    the namespace if aksnet-top created it. 404s are fine. Raises InstallError."""
    done: list[str] = []
    ns = namespace
    # the optional objects (stock image's ConfigMap, --podmonitor) say nothing when absent
    _delete(api_client, _ref("PodMonitor", AGENT_NAME, ns), ns, dry_run, done, any_404=True, optional=True)
    _delete(api_client, _ref("DaemonSet", AGENT_NAME, ns), ns, dry_run, done, [("propagationPolicy", "Background")])
    _delete(api_client, _ref("ConfigMap", AGENT_NAME, ns), ns, dry_run, done, optional=True)
    _delete(api_client, _ref("NetworkPolicy", AGENT_NAME, ns), ns, dry_run, done)
    coll, _ = _paths(_ref("RoleBinding", "x", ns))
    try:
        listed = _call(api_client, "GET", coll, None, [("labelSelector", f"app.kubernetes.io/part-of={PART_OF}")])
    except _Http as e:
        raise _fail(e, "list", _ref("RoleBinding", READER_ROLE, ns), ns, api_client, done) from None
    names = sorted({str((i.get("metadata") or {}).get("name")) for i in listed.get("items") or []} | {READER_ROLE})
    for rb in names:
        _delete(api_client, _ref("RoleBinding", rb, ns), ns, dry_run, done)
    _delete(api_client, _ref("Role", READER_ROLE, ns), ns, dry_run, done)
    _delete(api_client, _ref("ServiceAccount", AGENT_NAME, ns), ns, dry_run, done)
    nsobj = _ref("Namespace", ns, None)
    try:
        have = _call(api_client, "GET", _paths(nsobj)[1])
    except _Http as e:
        if e.status == 404:
            done.append(f"namespace/{ns} not found")
            return done
        raise _fail(e, "get", nsobj, None, api_client, done) from None
    if not _ours(have):
        done.append(f"namespace/{ns} kept (not created by aksnet-top)")
        return done
    _delete(api_client, nsobj, None, dry_run, done)
    return done


def _hostport(server: str) -> str | None:
    u = urlsplit(server)
    if not u.hostname:
        return None
    port = u.port or (443 if u.scheme == "https" else 80)
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{host}:{port}"


def discover(api_client: Any, server: str) -> tuple[dict[str, Any], list[str]]:
    """Read-only facts for the manifest: ``{"kube_dns", "nodelocal", "nodelocal_ip",
    "localdns", "apiserver"}`` (keys only for what was found) and warnings (one line each) for what could not be read."""
    facts: dict[str, Any] = {}
    warnings: list[str] = []
    hp = _hostport(server)
    if hp:
        facts["apiserver"] = hp
    try:
        svc = _call(api_client, "GET", "/api/v1/namespaces/kube-system/services/kube-dns")
        ip = (svc.get("spec") or {}).get("clusterIP")
        if ip and ip != "None":
            facts["kube_dns"] = ip
        else:
            warnings.append("kube-system/kube-dns has no ClusterIP: leaving --kube-dns unset")
    except _Http as e:
        warnings.append(
            f"could not read service kube-system/kube-dns ({e.status} {e.reason}): leaving --kube-dns unset"
        )
    label = [("labelSelector", "k8s-app=node-local-dns"), ("limit", "1")]
    found: bool | None = None
    for path in ("/apis/apps/v1/namespaces/kube-system/daemonsets", "/api/v1/namespaces/kube-system/pods"):
        try:
            items = _call(api_client, "GET", path, None, label).get("items") or []
        except _Http as e:
            if e.status == 404:
                continue
            warnings.append(
                f"could not look for NodeLocal DNS in kube-system ({e.status} {e.reason}): "
                "leaving --nodelocal unset (the agent decides)"
            )
            found = None
            break
        found = bool(items) or bool(found)
        if found:
            # its address is the pods' -localip argument (a DaemonSet's template, or a pod)
            item = items[0] if isinstance(items[0], dict) else {}
            spec = item.get("spec") or {}
            pod_spec = ((spec.get("template") or {}).get("spec") or {}) if "template" in spec else spec
            ip = local_ip(pod_spec)
            if ip:
                facts["nodelocal_ip"] = ip
            else:
                warnings.append("node-local-dns found without a -localip argument: the agent assumes 169.254.20.10")
            break
    if found is not None:
        facts["nodelocal"] = found
    localdns = _localdns(api_client, warnings)
    if localdns is not None:
        facts["localdns"] = localdns
    return facts, warnings


def _localdns(api: Any, warnings: list[str]) -> bool | None:
    """True when every Linux node runs AKS LocalDNS, False when none does, None when some
    do (each agent then sees it in its own resolv.conf) or the nodes cannot be read."""
    seen = []
    for sel in (f"{LABEL_LOCALDNS}=enabled", f"kubernetes.io/os=linux,{LABEL_LOCALDNS}!=enabled"):
        try:
            items = _call(api, "GET", "/api/v1/nodes", None, [("labelSelector", sel), ("limit", "1")]).get("items")
        except _Http as e:
            warnings.append(
                f"could not read the nodes for AKS LocalDNS ({e.status} {e.reason}): "
                "leaving --localdns unset (each agent sees it in its resolv.conf)"
            )
            return None
        seen.append(bool(items))
    with_it, without = seen
    if with_it and without:
        return None
    return with_it
