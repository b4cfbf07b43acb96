"""The agent's manifest: valid against the Kubernetes schema, and the security policy holds.

Schema: kubernetes_validate (strict: unknown fields fail) for 1.31, the oldest AKS
version we support, and for the newest schema it ships, over fixed parameter sets and
hypothesis-generated ones. Policy: what a reviewer of a DaemonSet on every node checks.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.agent import manifest as M

IMAGE = "myacr.azurecr.io/aksnet-top:0.1.0"
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())

COMBOS: list[dict[str, Any]] = [
    {},
    {"mode": "connect"},
    {
        "mode": "syn",
        "interval": 2.5,
        "kube_dns": "10.0.0.10",
        "nodelocal": True,
        "localdns": False,
        "apiserver": "myaks-abc123.hcp.westeurope.azmk8s.io:443",
        "pull_secret": "acr-pull",
        "reader_groups": ["00000000-0000-0000-0000-000000000001", "sre-team"],
    },
    {
        "namespace": "monitoring",
        "port": 19102,
        "nodelocal": False,
        "kube_dns": "fd00:10::a",
        "apiserver": "[fd00::1]:6443",
        "targets": ["example.com:443"],
        "names": ["example.org"],
        "reader_groups": ["readers"],
    },
]


def _validate(obj: dict[str, Any]) -> None:
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} invalid for {version}: {path}: {e.message}")


def _walk(x: Any) -> Iterator[Any]:
    yield x
    if isinstance(x, dict):
        for k, v in x.items():
            yield k
            yield from _walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from _walk(v)


def _by_kind(objs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in objs:
        out.setdefault(o["kind"], []).append(o)
    return out


def _check_policy(objs: list[dict], mode: str = "auto") -> None:
    kinds = _by_kind(objs)
    assert set(kinds) <= {"Namespace", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy", "DaemonSet"}
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    assert all(x != "*" for x in _walk(objs)), "no wildcard anywhere"
    for o in objs:  # nothing cluster-scoped but the Namespace
        assert ("namespace" in o["metadata"]) == (o["kind"] != "Namespace"), o["kind"]

    (sa,) = kinds["ServiceAccount"]
    assert sa["automountServiceAccountToken"] is False
    for role in kinds["Role"]:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
            assert rule["apiGroups"] == [""]
            assert set(rule["resources"]) <= {"pods", "pods/proxy"}
            if "pods/proxy" in rule["resources"]:
                assert rule["verbs"] == ["get"]
    for rb in kinds.get("RoleBinding", []):
        assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": M.READER_ROLE}
        assert all(s["kind"] == "Group" for s in rb["subjects"])
        assert rb["metadata"]["name"] != sa["metadata"]["name"]
    bound = {s.get("name") for rb in kinds.get("RoleBinding", []) for s in rb["subjects"]}
    assert M.AGENT_NAME not in bound, "the agent's ServiceAccount gets no API access"

    (ds,) = kinds["DaemonSet"]
    assert ds["metadata"]["name"] == M.AGENT_NAME
    spec = ds["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}
    tmpl = spec["template"]
    for k, v in M.AGENT_LABELS.items():
        assert tmpl["metadata"]["labels"][k] == v
    key, _, value = M.AGENT_SELECTOR.partition("=")
    assert spec["selector"]["matchLabels"] == {key: value}
    pod = tmpl["spec"]
    assert pod["tolerations"] == [{"operator": "Exists"}], "every node, tainted pools included"
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == M.AGENT_NAME
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert all("hostPath" not in v for v in pod.get("volumes", []))
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532 and psc["runAsGroup"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["privileged"] is False
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["capabilities"].get("add", []) == ([] if mode == "connect" else ["NET_RAW"])
    res = c["resources"]
    assert set(res["requests"]) == {"cpu", "memory"} and set(res["limits"]) == {"cpu", "memory"}
    assert c["ports"] == [{"name": "http", "containerPort": _port(c), "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["PYTHONDONTWRITEBYTECODE"]["value"] == "1"
    assert c["args"][:2] == ["agent", "run"] and f"--mode={mode}" in c["args"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[mounts["/tmp"]]

    (ns,) = kinds["Namespace"]
    level = ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    # NET_RAW is outside baseline's allowed capabilities (PSS: the moby defaults minus NET_RAW)
    assert level == ("restricted" if mode == "connect" else "privileged")
    if mode != "connect":
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/audit"] == "baseline"


def _port(c: dict) -> int:
    (p,) = [a for a in c["args"] if a.startswith("--port=")]
    return int(p.split("=", 1)[1])


@pytest.mark.parametrize("kw", COMBOS, ids=lambda kw: ",".join(sorted(kw)) or "defaults")
def test_objects_validate_and_meet_policy(kw):
    objs = M.render(IMAGE, **kw)
    for o in objs:
        _validate(o)
    _check_policy(objs, kw.get("mode", "auto"))
    assert [o["kind"] for o in objs] == (
        ["Namespace", "ServiceAccount", "Role"]
        + (["RoleBinding"] if kw.get("reader_groups") else [])
        + ["NetworkPolicy", "DaemonSet"]
    )


def test_defaults_and_constants():
    objs = M.render(IMAGE)
    ds = objs[-1]
    assert M.AGENT_NAMESPACE == "aksnet-top" and M.AGENT_PORT == 9102
    assert M.AGENT_SELECTOR == "app.kubernetes.io/name=aksnet-top-agent"
    assert all(o["metadata"].get("namespace", "aksnet-top") == "aksnet-top" for o in objs)
    assert objs[0]["metadata"]["name"] == "aksnet-top"
    c = ds["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == IMAGE and c["imagePullPolicy"] == "IfNotPresent"
    assert c["args"] == ["agent", "run", "--bind=$(POD_IP)", "--port=9102", "--mode=auto"]
    assert c["resources"] == {
        "requests": {"cpu": "10m", "memory": "64Mi"},
        "limits": {"cpu": "250m", "memory": "128Mi"},
    }
    assert "imagePullSecrets" not in ds["spec"]["template"]["spec"]
    assert ds["metadata"]["labels"]["app.kubernetes.io/part-of"] == "aksnet-top"


def test_flags_become_agent_args():
    c = M.render(
        IMAGE,
        interval=2.5,
        kube_dns="10.0.0.10",
        nodelocal=False,
        localdns=True,
        apiserver="x.hcp.io:443",
        targets=["a.example:443"],
        names=["n.example"],
        extra_args=["--log-level=debug"],
    )[-1]["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][5:] == [
        "--interval=2.5",
        "--kube-dns=10.0.0.10",
        "--no-nodelocal",
        "--localdns",
        "--apiserver=x.hcp.io:443",
        "--name=n.example",
        "--target=a.example:443",
        "--log-level=debug",
    ]


@pytest.mark.skipif(importlib.util.find_spec("probes.agent.main") is None, reason="agent runtime not there yet")
def test_the_agent_accepts_the_args():
    """The args the manifest writes are flags the agent's own parser accepts."""
    from probes.agent.main import run_parser

    c = M.render(
        IMAGE,
        mode="syn",
        interval=3,
        kube_dns="10.0.0.10",
        nodelocal=True,
        localdns=False,
        apiserver="x.hcp.io:443",
        targets=["a.example:443"],
        names=["n.example"],
    )[-1]
    args = c["spec"]["template"]["spec"]["containers"][0]["args"]
    ns = run_parser().parse_args(args[2:])
    assert ns.mode == "syn" and ns.port == 9102 and ns.interval == 3.0 and ns.nodelocal is True
    assert ns.localdns is False and ns.kube_dns == "10.0.0.10" and ns.apiserver == "x.hcp.io:443"
    assert ns.target == ["a.example:443"] and ns.name == ["n.example"] and ns.bind == "$(POD_IP)"


def test_pull_policy_and_secret():
    for image, policy in [
        ("r.io/a", "Always"),
        ("r.io/a:latest", "Always"),
        ("r.io:5000/a:1", "IfNotPresent"),
        ("r.io/a@sha256:" + "0" * 64, "IfNotPresent"),
    ]:
        c = M.render(image)[-1]["spec"]["template"]["spec"]["containers"][0]
        assert c["imagePullPolicy"] == policy, image
    pod = M.render(IMAGE, pull_secret="acr")[-1]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "acr"}]


def test_repeated_reader_groups_collapse():
    (rb,) = [o for o in M.render(IMAGE, reader_groups=["a", "b", "a"]) if o["kind"] == "RoleBinding"]
    assert [s["name"] for s in rb["subjects"]] == ["a", "b"]


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"image": ""}, "image"),
        ({"image": "has space"}, "image"),
        ({"namespace": "Bad_NS"}, "namespace"),
        ({"namespace": "x" * 64}, "namespace"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"interval": 0}, "interval"),
        ({"mode": "fast"}, "mode"),
        ({"kube_dns": "kube-dns"}, "kube-dns"),
        ({"apiserver": "https://x.io"}, "apiserver"),
        ({"apiserver": "x.io:99999"}, "apiserver"),
        ({"reader_groups": [" "]}, "reader group"),
        ({"allow_from": ["10.224.0.1/16"]}, "--allow-from"),
        ({"allow_from": ["nodes"]}, "--allow-from"),
    ],
)
def test_bad_parameters_say_which(kw, words):
    kw = {"image": IMAGE, **kw}
    image = kw.pop("image")
    with pytest.raises(ValueError, match=words):
        M.render(image, **kw)


def test_yaml_round_trip_and_header():
    objs = M.render(IMAGE, reader_groups=["g"], interval=5)
    text = M.to_yaml(objs)
    assert text.startswith("# aksnet-top per-node agent")
    assert "allowPrivilegeEscalation" in M.POSTURE and "NET_RAW" in M.POSTURE
    assert list(yaml.safe_load_all(text)) == objs
    assert text.count("\n---\n") == len(objs) and "&id" not in text  # every document starts with ---
    assert "'$(POD_IP)'" in text or '"$(POD_IP)"' in text or "--bind=$(POD_IP)" in text


_names = st.from_regex(r"[a-z]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
_images = st.builds(
    lambda reg, repo, tag: f"{reg}.azurecr.io/{repo}:{tag}",
    _names,
    _names,
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
_ipv4 = st.ip_addresses(v=4).map(str)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    image=_images,
    namespace=_names,
    mode=st.sampled_from(M.MODES),
    interval=st.none() | st.floats(min_value=0.5, max_value=3600, allow_nan=False),
    kube_dns=st.none() | _ipv4,
    nodelocal=st.none() | st.booleans(),
    localdns=st.none() | st.booleans(),
    port=st.integers(1, 65535),
    groups=st.lists(_names, max_size=3),
    apiserver=st.none() | st.builds(lambda h, p: f"{h}.hcp.io:{p}", _names, st.integers(1, 65535)),
)
def test_any_parameters_validate(
    image, namespace, mode, interval, kube_dns, nodelocal, localdns, port, groups, apiserver
):
    objs = M.render(
        image,
        namespace=namespace,
        mode=mode,
        interval=interval,
        kube_dns=kube_dns,
        nodelocal=nodelocal,
        localdns=localdns,
        port=port,
        reader_groups=groups,
        apiserver=apiserver,
    )
    for o in objs:
        kubernetes_validate.validate(o, VERSIONS[0], strict=True)
    _check_policy(objs, mode)
    assert list(yaml.safe_load_all(M.to_yaml(objs))) == objs


@pytest.mark.parametrize("allow_from", [[], ["10.224.0.0/16", "fd00::/64", "10.224.0.0/16"]])
def test_network_policy_admits_only_the_api_servers_path(allow_from):
    """The agent's port is read through the API server's pod proxy: on AKS that arrives from
    kube-system's konnectivity-agent pods; anything else must be named (--allow-from)."""
    objs = M.render(IMAGE, port=9200, allow_from=allow_from)
    kinds = [o["kind"] for o in objs]
    assert kinds.index("NetworkPolicy") < kinds.index("DaemonSet")  # never an agent without it
    (np,) = [o for o in objs if o["kind"] == "NetworkPolicy"]
    for version in VERSIONS:
        kubernetes_validate.validate(np, version, strict=True)
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet"]
    spec = np["spec"]
    assert spec["podSelector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    assert spec["policyTypes"] == ["Ingress"]  # egress is what the agent probes: left open
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9200}]
    peers = rule["from"]
    assert peers[0] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"app": "konnectivity-agent"}},
    }
    assert peers[1:] == [{"ipBlock": {"cidr": c}} for c in dict.fromkeys(allow_from)]
    assert "# - reads only through the API server's pod proxy" in M.to_yaml(objs)


def test_allow_from_flag_reaches_the_policy(capsys):
    from probes.agent import cli

    assert cli.main(["manifest", "--image", IMAGE, "--allow-from", "10.1.0.0/28"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    (np,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert np["spec"]["ingress"][0]["from"][1] == {"ipBlock": {"cidr": "10.1.0.0/28"}}
    assert cli.main(["manifest", "--image", IMAGE, "--allow-from", "10.1.0.1/28"]) == 4
    assert "--allow-from '10.1.0.1/28' must be a CIDR" in capsys.readouterr().err
