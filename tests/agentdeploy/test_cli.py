"""``aksnet-top agent ...`` through probes.agent.cli.main: output, exit codes, and the write guard."""

from __future__ import annotations

import io
import subprocess
import sys
import types

import pytest
import yaml

from probes.agent import cli
from probes.agent.manifest import render
from probes.lab.apiserver import LabApiServer

IMAGE = "myacr.azurecr.io/aksnet-top:0.1.0"


class _Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def no_tty(monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Stdin("y\n", tty=False))


def test_manifest_prints_what_render_returns(capsys):
    rc = cli.main(
        [
            "manifest",
            "--image",
            IMAGE,
            "--mode",
            "connect",
            "--interval",
            "5",
            "--kube-dns",
            "10.0.0.10",
            "--no-nodelocal",
            "--localdns",
            "--apiserver",
            "x.hcp.io:443",
            "--reader-group",
            "sre",
            "--reader-group",
            "oncall",
            "--target",
            "example.com:443",
            "--namespace",
            "netdiag",
            "--pull-secret",
            "acr",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert list(yaml.safe_load_all(out)) == render(
        IMAGE,
        namespace="netdiag",
        mode="connect",
        interval=5,
        kube_dns="10.0.0.10",
        nodelocal=False,
        localdns=True,
        apiserver="x.hcp.io:443",
        reader_groups=["sre", "oncall"],
        targets=["example.com:443"],
        pull_secret="acr",
    )


def test_manifest_defaults(capsys):
    assert cli.main(["manifest", "--image", IMAGE]) == 0
    assert list(yaml.safe_load_all(capsys.readouterr().out)) == render(IMAGE)


@pytest.mark.parametrize(
    "argv",
    [
        ["manifest", "--mode", "syn"],  # the stock image's agent runs in connect mode only
        ["manifest", "--image", IMAGE, "--bogus"],
        ["manifest", "--image", IMAGE, "--mode", "fast"],
        ["manifest", "--image", IMAGE, "--interval", "soon"],
        ["manifest", "--image", IMAGE, "--interval", "0"],
        ["manifest", "--image", IMAGE, "--namespace", "Not_Valid"],
        ["manifest", "--image", IMAGE, "--kube-dns", "kube-dns.kube-system"],
        ["manifest", "--image", "bad image"],
        ["install", "--image", IMAGE, "--apiserver", "https://x"],
        ["uninstall", "--nope"],
        ["frobnicate"],
        [],
    ],
)
def test_bad_usage_exits_4_without_traceback(argv, capsys):
    assert cli.main(argv) == 4
    err = capsys.readouterr().err
    assert err and "Traceback" not in err


def test_help_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    assert "manifest" in capsys.readouterr().out
    assert cli.main(["install", "--help"]) == 0
    assert "--yes" in capsys.readouterr().out


def test_install_without_yes_and_tty_refuses_and_writes_nothing(write_server, tmp_path, capsys, no_tty):
    srv = write_server()
    kc = srv.kubeconfig(tmp_path / "kubeconfig")
    assert cli.main(["install", "--image", IMAGE, "--kubeconfig", kc]) == 4
    err = capsys.readouterr().err
    assert "writes to the cluster" in err and "--yes" in err and err.count("\n") == 1
    assert cli.main(["uninstall", "--kubeconfig", kc]) == 4
    assert srv.requests == [], "refused before any request"


def test_install_and_uninstall_with_yes(write_server, tmp_path, capsys, no_tty):
    srv = write_server()
    kc = srv.kubeconfig(tmp_path / "kubeconfig")
    assert cli.main(["install", "--image", IMAGE, "--kubeconfig", kc, "--yes", "--reader-group", "sre"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "daemonset.apps/aksnet-top-agent created"
    assert "rollout status daemonset/aksnet-top-agent" in err
    assert len(srv.objects.objects()) == 6
    assert cli.main(["install", "--image", IMAGE, "--kubeconfig", kc, "--yes", "--reader-group", "sre"]) == 0
    assert all(line.endswith("unchanged") for line in capsys.readouterr().out.splitlines())
    assert all(r.method in ("GET", "POST") for r in srv.requests)
    assert cli.main(["uninstall", "--kubeconfig", kc, "--yes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "namespace/aksnet-top deleted"
    assert srv.objects.objects() == []


def test_dry_run_needs_no_confirmation(write_server, tmp_path, capsys, no_tty):
    srv = write_server()
    kc = srv.kubeconfig(tmp_path / "kubeconfig")
    assert cli.main(["install", "--image", IMAGE, "--kubeconfig", kc, "--dry-run"]) == 0
    assert "(server dry run)" in capsys.readouterr().out
    assert srv.objects.objects() == []


@pytest.mark.parametrize("answer, rc, stored", [("y\n", 0, 5), ("n\n", 4, 0), ("", 4, 0)])
def test_terminal_asks_first(write_server, tmp_path, capsys, monkeypatch, answer, rc, stored):
    srv = write_server()
    kc = srv.kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setattr(sys, "stdin", _Stdin(answer, tty=True))
    assert cli.main(["install", "--image", IMAGE, "--kubeconfig", kc]) == rc
    err = capsys.readouterr().err
    assert f"into namespace aksnet-top of {srv.url} (context agentdeploy)" in err and "[y/N]" in err
    assert len(srv.objects.objects()) == stored
    if not stored:
        assert srv.writes() == []


def test_forbidden_exits_3_with_one_line(write_server, tmp_path, capsys, no_tty):
    srv = write_server(authorize=lambda user, verb, group, res, ns: not (verb == "create" and res == "daemonsets"))
    kc = srv.kubeconfig(tmp_path / "kubeconfig")
    assert cli.main(["install", "--image", IMAGE, "--kubeconfig", kc, "--yes"]) == 3
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "namespace/aksnet-top created", "what was done is still reported"
    # what the install could not read from this bare server comes first, one line each
    err = "".join(line for line in err.splitlines(True) if not line.startswith("aksnet-top: from the cluster: "))
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("aksnet-top: you may not create daemonsets in namespace aksnet-top: ")


def test_unreachable_and_missing_kubeconfig_exit_3(tmp_path, capsys, no_tty):
    assert cli.main(["install", "--image", IMAGE, "--kubeconfig", str(tmp_path / "nope"), "--yes"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no kubeconfig found" in err
    assert cli.main(["manifest", "--image", IMAGE, "--from-cluster", "--kubeconfig", str(tmp_path / "nope")]) == 3


def test_manifest_from_cluster_reads_only(tmp_path, capsys):
    with LabApiServer("healthy", run_timeline=False) as lab:
        kc = lab.write_kubeconfig(str(tmp_path / "lab-kubeconfig"))
        assert cli.main(["manifest", "--image", IMAGE, "--from-cluster", "--kubeconfig", kc]) == 0
        out, err = capsys.readouterr()
        args = list(yaml.safe_load_all(out))[-1]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--kube-dns=10.0.0.10" in args and "--nodelocal" in args
        assert f"--apiserver=127.0.0.1:{lab.port}" in args
        assert {r.verb for r in lab.requests.records()} <= {"get", "list", "other", "discovery"}
        assert all(r.method == "GET" for r in lab.requests.records())
        # flags given win over what the cluster says
        assert (
            cli.main(
                [
                    "manifest",
                    "--image",
                    IMAGE,
                    "--from-cluster",
                    "--kubeconfig",
                    kc,
                    "--kube-dns",
                    "10.9.9.9",
                    "--no-nodelocal",
                ]
            )
            == 0
        )
        args = list(yaml.safe_load_all(capsys.readouterr().out))[-1]["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
        assert "--kube-dns=10.9.9.9" in args and "--no-nodelocal" in args


def test_run_delegates_to_the_agent(monkeypatch):
    seen = []
    fake = types.ModuleType("probes.agent.main")
    fake.run = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "probes.agent.main", fake)
    assert cli.main(["run", "--node", "n1", "--port", "0"]) == 0
    assert seen == [["--node", "n1", "--port", "0"]]


@pytest.mark.parametrize(
    "argv, code",
    [
        (["--bogus"], 4),  # argparse's own usage error (it would exit 2)
        (["--node", "n1", "--mode", "icmp"], 4),  # a value the agent refuses
        (["--help"], 0),
    ],
)
def test_run_exits_with_the_shared_codes(argv, code, capsys):
    """`agent run` returns probes.exitcodes.ExitCode itself: no table of its own to map."""
    assert cli.main(["run", *argv]) == code


def test_run_without_the_runtime_exits_3(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "probes.agent.main", None)  # import raises ImportError
    assert cli.main(["run"]) == 3
    assert "agent runtime is not available" in capsys.readouterr().err


def test_raise_net_raw_is_harmless_here():
    assert cli.raise_net_raw() in (True, False)


def test_never_loads_textual_and_manifest_needs_no_kubernetes():
    code = (
        "import sys\n"
        "from probes.agent import cli, install, manifest\n"
        "import probes.lab.writable\n"
        "rc = cli.main(['manifest', '--image', 'r.io/a:1'])\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('textual', 'tui', 'kubernetes'))\n"
        "print(rc, ','.join(bad), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "0", f"loaded: {out.stderr}"
