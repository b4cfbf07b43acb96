"""probes.demo: the lab in its own process behind one door, plain data out, no orphans."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from probes import demo as demomod

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone(pids, timeout: float = 10.0) -> list[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_start_hands_back_plain_data_and_stop_ends_every_process():
    d = demomod.start("healthy")
    try:
        assert os.path.exists(d.kubeconfig) and d.scenario == "healthy" and d.nodes == 5
        assert len(d.pids) == 2 and all(_alive(p) for p in d.pids)  # the lab, its agent farm
        ep = d.endpoints
        assert ep.arm_url.startswith("http://127.0.0.1:") and ep.arm_discover
        assert ep.arm_credential is None  # a loopback endpoint: the placeholder token, no credential chain
        from probes.azure.cloud import PlaceholderCredential

        token = PlaceholderCredential().get_token("http://127.0.0.1/.default").token
        assert _arm_status(ep.arm_url, "wrong") == 401
        assert _arm_status(ep.arm_url, token) not in (401, 403)  # the lab takes the placeholder token
        assert ep.dns_map is not None and ep.egress_map is not None
        import yaml

        server = yaml.safe_load(Path(d.kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
        with urllib.request.urlopen(server + "/api/v1/nodes", timeout=5) as r:
            assert len(json.loads(r.read())["items"]) == 5
    finally:
        d.stop()
    assert _gone(d.pids) == []
    assert not os.path.exists(os.path.dirname(d.kubeconfig))


def _arm_status(url: str, token: str) -> int:
    import urllib.error

    req = urllib.request.Request(
        url + "/subscriptions/s/providers/Microsoft.ContainerService/managedClusters?api-version=2024-05-01",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_the_app_process_holds_none_of_the_lab():
    """The lab's API server, ARM endpoint and cluster state live in the other process."""
    code = (
        "import sys\nfrom probes import demo\nd = demo.start('healthy')\n"
        "print([m for m in sys.modules if m.startswith('probes.lab') and m != 'probes.lab.agentfarm'"
        " and m != 'probes.lab'])\nd.stop()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_local_vantage_maps_are_confined_to_the_labs_loopback_stand_ins():
    from probes.engine.store import Store
    from probes.kube.model import LOCAL_VANTAGE

    d = demomod.start("healthy")
    try:
        topo = Store().snapshot().topology
        (dv,) = d.endpoints.dns_map.vantages(topo)
        (ev,) = d.endpoints.egress_map.vantages(topo)
        assert dv.name == ev.name == LOCAL_VANTAGE and dv.confine and ev.confine
        assert dv.overrides and all(host.startswith("127.") for host, _port in dv.overrides.values())
        assert ev.dns is not None and ev.dns[0].startswith("127.")
    finally:
        d.stop()


def test_the_app_need_not_wait_for_the_agents():
    """ready(agents=False): the cluster first; the `local` maps fill in (version bump) when
    the agent farm runs, and its pid joins the demo's."""
    from probes.engine.store import Store

    d = demomod.launch("healthy").ready(agents=False)
    try:
        topo = Store().snapshot().topology
        before = d.endpoints.dns_map.version
        if not d.endpoints.dns_map.local.version:  # not yet: confined, so nothing leaves loopback
            (dv,), (ev,) = d.endpoints.dns_map.vantages(topo), d.endpoints.egress_map.vantages(topo)
            assert dv.confine and not dv.overrides and ev.confine and ev.dns is None
        assert d.agents_ready(30) and d.agents_error == ""
        assert d.endpoints.dns_map.version == d.endpoints.egress_map.version == before + 1
        (dv,), (ev,) = d.endpoints.dns_map.vantages(topo), d.endpoints.egress_map.vantages(topo)
        assert dv.confine and dv.overrides and ev.confine and ev.dns is not None
        assert len(d.pids) == 2 and all(_alive(p) for p in d.pids)
    finally:
        d.stop()
    assert _gone(d.pids) == []


def test_before_the_agents_run_the_local_vantage_stays_confined():
    """Never the default unconfined `local` vantage (the host's resolvers, the internet)."""
    from probes.dns.service import DnsSettings
    from probes.dns.service import build_plan as dns_plan
    from probes.egress.service import EgressSettings
    from probes.egress.service import build_plan as egress_plan
    from probes.engine.store import Store

    local = demomod._Local()
    topo = Store().snapshot().topology
    dplan = dns_plan(topo, DnsSettings(), demomod.LocalDnsMap(local).vantages(topo), 1)
    assert all(vp.vantage.confine and not vp.resolvers for vp in dplan.vantages)
    eplan = egress_plan(EgressSettings(), demomod.LocalEgressMap(local).vantages(topo), "", 1)
    assert all(vp.vantage.confine and not vp.targets for vp in eplan.vantages)


def test_unknown_scenario_is_a_usage_error_and_leaves_nothing_behind():
    launch = demomod.launch("no-such-scenario")
    with pytest.raises(demomod.DemoError) as e:
        launch.ready()
    assert e.value.usage and "no-such-scenario" in str(e.value)
    assert _gone([launch.proc.pid]) == []


# a process that starts the demo, prints its pids, then dies as told
CHILD = """
import json, os, signal, sys, time
from probes import demo
d = demo.start("healthy")
print(json.dumps(list(d.pids)), flush=True)
how = sys.argv[1]
if how == "crash":
    raise RuntimeError("the app crashed")
if how == "exit":
    os._exit(1)  # no finally, no atexit
time.sleep(60)  # SIGTERM / SIGKILL from the test
"""


@pytest.mark.parametrize("how", ["sigterm", "sigkill", "crash", "exit"])
def test_no_orphans_when_the_app_dies(how):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, how],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        pids = json.loads(p.stdout.readline())
        assert len(pids) == 2 and all(_alive(x) for x in pids)
        if how == "sigterm":
            p.send_signal(signal.SIGTERM)
        elif how == "sigkill":
            p.kill()
        p.wait(10)
        assert _gone(pids) == [], f"orphans after {how}: {pids}"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


def test_the_app_quitting_stops_the_lab(tmp_path):
    """`aksnet-top check --demo` ends with no process of the demo left."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKSNET_", "KUBECONFIG"))}
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)})
    p = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "check", "--demo", "--interval", "1", "--cycles", "1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    kids: set[int] = set()
    while p.poll() is None:  # collect its children while it runs
        kids |= {int(c) for c in _children(p.pid)}
        time.sleep(0.05)
    assert p.returncode == 0
    assert kids, "the lab ran in a child process"
    assert _gone(kids) == []


def _children(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().split()
    except OSError:
        return []


def test_only_probes_demo_imports_the_lab():
    """One door: no product module outside probes/lab/ but probes/demo.py imports probes.lab."""
    offenders = []
    for base in ("probes", "tui"):
        for path in (ROOT / base).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("probes/lab/") or rel == "probes/demo.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                if any(n == "probes.lab" or n.startswith("probes.lab.") for n in names):
                    offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_build_takes_the_endpoints_as_plain_settings():
    """services.build: the ARM endpoint, its credential, the vantage maps and the extra
    targets come in as data; the engine knows nothing of a lab."""
    import dataclasses

    from probes.config import Config
    from probes.engine.services import Endpoints, build
    from probes.engine.store import Store

    cfg = Config()
    cfg = dataclasses.replace(cfg, egress=dataclasses.replace(cfg.egress, targets=("mine.example:443",)))
    dns_map, egress_map = object(), object()
    cred = object()
    s = build(
        cfg,
        Store(),
        Endpoints(
            arm_url="http://127.0.0.1:1",
            arm_credential=lambda: cred,
            arm_discover=True,
            dns_map=dns_map,
            egress_map=egress_map,
            extra_targets=("extra.example:80", "mine.example:443"),
        ),
    )
    assert s.dns.vantage_map is dns_map and s.egress.vantage_map is egress_map
    assert s.egress.settings.targets == ("mine.example:443", "extra.example:80")
    az = s.snat.settings
    assert az.arm_endpoint == "http://127.0.0.1:1" and az.credential() is cred and az.subscription == ""
    plain = build(cfg, Store())
    assert plain.dns.vantage_map is None and plain.snat.settings.arm_endpoint == ""
