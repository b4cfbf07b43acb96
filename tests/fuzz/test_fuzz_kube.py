"""Fuzzing the Kubernetes parsers: kubeconfig files, node/pod/service/event JSON through
the topology, list bodies, watch event lines. Only the project's own errors may escape
(KubeconfigError; orjson's JSONDecodeError is the documented answer of loads_list to a
body that is not JSON)."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.kube.kubeconfig import Endpoint, KubeconfigError, merge, resolve
from probes.kube.model import NodeInfo, PodState, ServiceInfo
from probes.kube.rawjson import drop_images, loads_list, peek_continue
from probes.kube.topology import build_topology, parse_node, parse_pod, parse_service, parse_time
from tests.fuzz.strategies import SCALARS, json_like

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KC_KEYS = [
    "apiVersion", "kind", "current-context", "clusters", "contexts", "users", "name", "cluster", "context", "user",
    "server", "certificate-authority-data", "certificate-authority", "insecure-skip-tls-verify",
    "tls-server-name", "proxy-url", "client-certificate-data", "client-key-data", "client-certificate",
    "client-key", "token", "tokenFile", "username", "password", "exec", "auth-provider", "command", "args", "env",
]  # fmt: skip


def _kubeconfig_doc():
    entry = st.fixed_dictionaries(
        {"name": SCALARS},
        optional={"cluster": json_like(KC_KEYS), "context": json_like(KC_KEYS), "user": json_like(KC_KEYS)},
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "current-context": SCALARS,
            "clusters": st.lists(entry, max_size=3) | SCALARS,
            "contexts": st.lists(entry, max_size=3) | SCALARS,
            "users": st.lists(entry, max_size=3) | SCALARS,
        },
    ) | json_like(KC_KEYS)


def _load(path: Path, context: str) -> None:
    try:
        ep = resolve(merge([path]), context)
    except KubeconfigError as e:
        assert e.message and "\n" not in e.message, e.message
        return
    assert isinstance(ep, Endpoint) and ep.server


@FUZZ
@given(doc=_kubeconfig_doc(), context=st.sampled_from(["", "prod", "2024"]), as_json=st.booleans())
def test_kubeconfig_documents(tmp_path_factory, doc, context, as_json):
    path = tmp_path_factory.mktemp("kc") / "config"
    try:
        text = orjson.dumps(doc) if as_json else yaml.safe_dump(doc).encode()
    except (TypeError, orjson.JSONEncodeError):  # NaN/huge ints for JSON: write YAML
        text = yaml.safe_dump(doc).encode()
    path.write_bytes(text)
    _load(path, context)


@FUZZ
@given(raw=st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_kubeconfig_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("kc") / "config"
    path.write_bytes(raw)
    _load(path, "")


K8S_KEYS = [
    "metadata", "spec", "status", "name", "namespace", "labels", "annotations", "creationTimestamp",
    "addresses", "type", "address", "InternalIP", "podCIDR", "podCIDRs", "conditions", "Ready", "status", "True",
    "False", "reason", "taints", "key", "effect", "providerID", "unschedulable", "nodeInfo", "kubeletVersion",
    "osImage", "nodeName", "podIP", "phase", "containerStatuses", "restartCount", "state", "waiting",
    "loadBalancer", "ingress", "ip", "hostname", "ports", "port", "protocol", "clusterIP",
    "kubernetes.azure.com/agentpool", "kubernetes.azure.com/mode", "topology.kubernetes.io/zone",
    "service.beta.kubernetes.io/azure-load-balancer-internal", "message", "involvedObject", "count",
]  # fmt: skip
OBJECT = json_like(K8S_KEYS, leaves=40)


@FUZZ
@given(nodes=st.lists(OBJECT, max_size=6), pods=st.lists(OBJECT, max_size=4), svcs=st.lists(OBJECT, max_size=4))
def test_objects_to_topology(nodes, pods, svcs):
    parsed = [parse_node(o) for o in nodes if isinstance(o, dict)]
    assert all(isinstance(n, NodeInfo) for n in parsed)
    ps = [parse_pod(o) for o in pods if isinstance(o, dict)]
    assert all(isinstance(p, PodState) for p in ps)
    ss = [parse_service(o) for o in svcs if isinstance(o, dict)]
    assert all(isinstance(s, ServiceInfo) for s in ss)
    topo = build_topology({n.name + str(i): n for i, n in enumerate(parsed)}, "c", ps, ps, ss)
    assert len(topo.nodes) == len(parsed)


@FUZZ
@given(st.text(max_size=40) | SCALARS)
def test_timestamps(value):
    assert isinstance(parse_time(value), float)


@FUZZ
@given(body=st.binary(max_size=300), trim=st.booleans())
def test_list_bodies_bytes(body, trim):
    assert isinstance(drop_images(body), bytes)
    head = peek_continue(body)
    assert head is None or isinstance(head, str)
    try:
        loads_list(body, trim_images=trim)
    except orjson.JSONDecodeError:
        pass


@FUZZ
@given(items=st.lists(OBJECT, max_size=4), images=st.booleans(), cont=st.text(max_size=10))
def test_list_bodies_json(items, images, cont):
    """A well-formed list, images trimmed or not, decodes to the same items."""
    for it in items:
        if images and isinstance(it, dict):
            it.setdefault("status", {})
            if isinstance(it["status"], dict):
                it["status"]["images"] = [{"names": ["a", "b"], "sizeBytes": 1}]
    try:
        body = orjson.dumps({"kind": "NodeList", "metadata": {"continue": cont}, "items": items})
    except orjson.JSONEncodeError:  # integers beyond 64 bits: JSON the API server never writes
        return
    doc = loads_list(body, trim_images=True)
    assert len(doc["items"]) == len(items)
    assert peek_continue(body) in (cont, None)


EVENT_TYPES = st.sampled_from(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]) | SCALARS


@FUZZ
@given(line=st.binary(max_size=200))
def test_watch_event_lines_bytes(line):
    _watch_line(line)


@FUZZ
@given(t=EVENT_TYPES, obj=OBJECT)
def test_watch_event_lines_json(t, obj):
    try:
        line = orjson.dumps({"type": t, "object": obj})
    except orjson.JSONEncodeError:
        return
    _watch_line(line)


def _watch_line(line: bytes) -> None:
    """What a watch does with one line: decode, then parse its object by kind."""
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError:
        return
    if not isinstance(ev, dict) or not isinstance(ev.get("object"), dict):
        return
    for parse in (parse_node, parse_pod, parse_service):
        parse(ev["object"])
