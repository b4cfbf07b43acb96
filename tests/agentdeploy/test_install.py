"""install()/uninstall() with the real kubernetes client against a loopback WritableObjects server."""

from __future__ import annotations

import socket

import pytest

from probes.agent.install import InstallError, discover, install, uninstall
from probes.agent.manifest import render

IMAGE = "myacr.azurecr.io/aksnet-top:0.1.0"
DS_PATH = "/apis/apps/v1/namespaces/aksnet-top/daemonsets"
NAMES = [
    "namespace/aksnet-top",
    "serviceaccount/aksnet-top-agent",
    "role.rbac.authorization.k8s.io/aksnet-top-agent-reader",
    "rolebinding.rbac.authorization.k8s.io/aksnet-top-agent-reader",
    "networkpolicy.networking.k8s.io/aksnet-top-agent",
    "daemonset.apps/aksnet-top-agent",
]


def _subset(want, have) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(map(_subset, want, have))
    return want == have


def test_install_creates_reinstall_is_unchanged_uninstall_deletes(write_server, api_for):
    srv = write_server()
    api = api_for(srv)
    objs = render(IMAGE, reader_groups=["sre"])
    assert install(objs, api) == [f"{n} created" for n in NAMES]
    stored = {(o["kind"], o["metadata"]["name"]): o for o in srv.objects.objects()}
    assert len(stored) == len(objs)
    for o in objs:
        assert _subset(o, stored[(o["kind"], o["metadata"]["name"])]), o["kind"]

    writes = len(srv.writes())
    assert install(objs, api) == [f"{n} unchanged" for n in NAMES]
    assert [w.status for w in srv.writes()[writes:]] == [409] * len(objs), "unchanged objects are not written"

    lines = install(render("myacr.azurecr.io/aksnet-top:0.2.0", reader_groups=["sre", "oncall"]), api)
    assert lines == [
        f"{NAMES[0]} unchanged",
        f"{NAMES[1]} unchanged",
        f"{NAMES[2]} unchanged",
        f"{NAMES[3]} configured",
        f"{NAMES[4]} unchanged",
        f"{NAMES[5]} configured",
    ]
    ds = srv.objects.get("daemonsets", "aksnet-top", "aksnet-top-agent")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    assert ds["metadata"]["generation"] == 2
    rb = srv.objects.get("rolebindings", "aksnet-top", "aksnet-top-agent-reader")
    assert [s["name"] for s in rb["subjects"]] == ["sre", "oncall"]

    assert uninstall(api) == [f"{n} deleted" for n in reversed(NAMES)]
    assert srv.objects.objects() == []
    assert uninstall(api) == [f"{n} not found" for n in reversed(NAMES)]


def test_update_keeps_labels_others_added(write_server, api_for):
    srv = write_server()
    api = api_for(srv)
    install(render(IMAGE), api)
    code, _ = srv.objects.handle(
        "PATCH",
        DS_PATH + "/aksnet-top-agent",
        {},
        b'{"metadata":{"labels":{"team":"sre"},"annotations":{"note":"x"}}}',
        "bob",
    )
    assert code == 200
    assert install(render(IMAGE), api)[-1] == "daemonset.apps/aksnet-top-agent unchanged"
    assert install(render(IMAGE, mode="connect"), api)[-1] == "daemonset.apps/aksnet-top-agent configured"
    md = srv.objects.get("daemonsets", "aksnet-top", "aksnet-top-agent")["metadata"]
    assert md["labels"]["team"] == "sre" and md["annotations"] == {"note": "x"}


def test_existing_namespace_is_left_alone(write_server, api_for):
    srv = write_server()
    api = api_for(srv)
    code, _ = srv.objects.handle(
        "POST",
        "/api/v1/namespaces",
        {},
        b'{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"monitoring","labels":{"owner":"platform"}}}',
        "admin",
    )
    assert code == 201
    lines = install(render(IMAGE, namespace="monitoring"), api)
    assert lines[0] == "namespace/monitoring unchanged (it exists and is not managed by aksnet-top: left as is)"
    assert srv.objects.get("namespaces", None, "monitoring")["metadata"]["labels"] == {
        "owner": "platform",
        "kubernetes.io/metadata.name": "monitoring",
    }
    lines = uninstall(api, "monitoring")
    assert lines[-1] == "namespace/monitoring kept (not created by aksnet-top)"
    assert [o["kind"] for o in srv.objects.objects()] == ["Namespace"]


def test_dry_run_writes_nothing(write_server, api_for):
    srv = write_server()
    api = api_for(srv)
    lines = install(render(IMAGE, reader_groups=["g"]), api, dry_run=True)
    assert lines[0] == "namespace/aksnet-top created (server dry run)"
    assert all("dry run" in line for line in lines)
    assert srv.objects.objects() == []
    assert all(w.query.get("dryRun") == ["All"] for w in srv.writes())
    install(render(IMAGE), api)
    lines = install(render(IMAGE, mode="syn"), api, dry_run=True)
    assert lines[-1] == "daemonset.apps/aksnet-top-agent configured (server dry run)"
    assert (
        "--mode=auto"
        in srv.objects.get("daemonsets", "aksnet-top", "aksnet-top-agent")["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
    )
    lines = uninstall(api, dry_run=True)
    assert lines[0] == "daemonset.apps/aksnet-top-agent deleted (server dry run)"
    assert all("dry run" in line for line in lines if "not found" not in line)
    assert len(srv.objects.objects()) == 5


def _deny(verb: str, resource: str):
    return lambda user, v, group, res, ns: not (v == verb and res == resource)


def test_forbidden_is_one_line_with_what_to_do(write_server, api_for):
    srv = write_server(authorize=_deny("create", "daemonsets"))
    api = api_for(srv)
    with pytest.raises(InstallError) as ei:
        install(render(IMAGE), api)
    msg = ei.value.message
    assert "\n" not in msg
    assert msg.startswith(
        "you may not create daemonsets in namespace aksnet-top: daemonsets.apps is forbidden: "
        'User "alice@example.com" cannot create resource "daemonsets"'
    )
    assert "ask a cluster admin" in msg
    assert ei.value.done == [f"{n} created" for n in NAMES if "rolebinding" not in n][:-1]


def test_forbidden_role_mentions_escalation(write_server, api_for):
    srv = write_server(authorize=_deny("create", "roles"))
    with pytest.raises(InstallError, match=r"you may not create roles .*hold what it grants"):
        install(render(IMAGE), api_for(srv))


def test_forbidden_uninstall(write_server, api_for):
    srv = write_server(authorize=_deny("delete", "daemonsets"))
    api = api_for(srv)
    install(render(IMAGE), api)
    with pytest.raises(
        InstallError, match=r"^you may not delete daemonset.apps/aksnet-top-agent in namespace aksnet-top"
    ):
        uninstall(api)


def test_unauthorized(write_server, api_for):
    srv = write_server()
    with pytest.raises(
        InstallError, match=r"did not accept your credentials \(401 Unauthorized\).*az aks get-credentials"
    ):
        install(render(IMAGE), api_for(srv, token="wrong"))
    assert srv.objects.objects() == []


def test_server_errors_and_missing_groups(write_server, api_for):
    srv = write_server()
    api = api_for(srv)
    srv.faults[("POST", DS_PATH)] = (503, "ServiceUnavailable", "The server is currently unable to handle the request")
    with pytest.raises(
        InstallError, match=r"failed to create daemonsets \(503 ServiceUnavailable: .*try again in a minute"
    ):
        install(render(IMAGE), api)
    srv.faults.clear()
    srv.faults[("POST", "/apis/apps/v1")] = (404, "NotFound", "the server could not find the requested resource")
    with pytest.raises(InstallError, match=r"does not serve daemonsets \(404 NotFound"):
        install(render(IMAGE), api)
    srv.faults.clear()
    install(render(IMAGE), api)
    srv.faults[("PUT", DS_PATH)] = (409, "Conflict", "the object has been modified")
    with pytest.raises(InstallError, match=r"kept changing while installing \(409 Conflict 3 times\)"):
        install(render(IMAGE, mode="connect"), api)
    assert len([w for w in srv.writes() if w.method == "PUT" and w.path.startswith(DS_PATH)]) == 3


def test_immutable_selector_says_uninstall_first(write_server, api_for):
    srv = write_server()
    api = api_for(srv)
    install(render(IMAGE), api)
    objs = render(IMAGE)
    ds = objs[-1]
    ds["spec"]["selector"]["matchLabels"]["extra"] = "x"
    ds["spec"]["template"]["metadata"]["labels"]["extra"] = "x"
    with pytest.raises(
        InstallError,
        match=r"rejected daemonset.apps/aksnet-top-agent as invalid: .*immutable"
        r".*aksnet-top agent uninstall",
    ):
        install(objs, api)


def test_connection_refused(api_for):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    cfg.retries = 0
    api = client.ApiClient(cfg)
    try:
        with pytest.raises(InstallError, match=rf"cannot reach the API server at http://127.0.0.1:{port} .*VPN"):
            install(render(IMAGE), api)
        with pytest.raises(InstallError, match="cannot reach"):
            uninstall(api)
    finally:
        api.close()


def test_discover_reads_what_it_can(write_server, api_for):
    srv = write_server()
    api = api_for(srv)
    facts, warnings = discover(api, "https://myaks-abc.hcp.westeurope.azmk8s.io:443")
    assert facts == {"apiserver": "myaks-abc.hcp.westeurope.azmk8s.io:443", "nodelocal": False}
    assert any("kube-dns" in w and "404" in w for w in warnings)
    assert srv.writes() == []
