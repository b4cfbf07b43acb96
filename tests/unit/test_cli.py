"""The command line with bad input: one clear line, the right exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(
    args: list[str], tmp_path: Path, env_extra: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKSNET_", "KUBECONFIG"))}
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PYTHONPATH": str(ROOT)})
    env.update(env_extra or {})
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in out.stderr, out.stderr
    return out


def test_unknown_flag(tmp_path):
    out = run(["--bogus"], tmp_path)
    assert out.returncode == 4 and "unrecognized arguments: --bogus" in out.stderr


def test_no_kubeconfig_suggests_demo(tmp_path):
    out = run([], tmp_path)
    assert out.returncode == 3
    assert "no kubeconfig found" in out.stderr and "aksnet-top --demo" in out.stderr


def test_unknown_context(tmp_path):
    from probes.lab.apiserver import LabApiServer

    kc = LabApiServer("healthy", run_timeline=False).write_kubeconfig(
        str(tmp_path / "kc")
    )  # never started: only the file matters
    out = run(["--kubeconfig", kc, "--context", "prod"], tmp_path)
    assert out.returncode == 3 and "context 'prod' not found" in out.stderr and "lab" in out.stderr


def test_bad_config_value_from_env(tmp_path):
    out = run(["--demo"], tmp_path, {"AKSNET_KUBE_PAGE_SIZE": "lots"})
    assert out.returncode == 4 and "environment: kube.page_size must be an integer" in out.stderr


def test_bad_config_file_key(tmp_path):
    (tmp_path / "cfg" / "aksnet-top").mkdir(parents=True)
    (tmp_path / "cfg" / "aksnet-top" / "config.toml").write_text("[kube]\ncontex = 'x'\n")
    out = run(["--demo"], tmp_path)
    assert out.returncode == 4 and "unknown key kube.contex" in out.stderr


def test_unknown_demo_scenario(tmp_path):
    out = run(["--demo", "--scenario", "no-such-scenario"], tmp_path)
    assert out.returncode == 4 and "cannot start the demo cluster" in out.stderr and "no-such-scenario" in out.stderr


def test_scenario_without_demo(tmp_path):
    out = run(["--scenario", "healthy"], tmp_path)
    assert out.returncode == 4 and "go with --demo" in out.stderr


def test_lab_unknown_scenario(tmp_path):
    out = run(["lab", "--scenario", "nope", "--kubeconfig-out", str(tmp_path / "kc")], tmp_path)
    assert out.returncode == 4 and "nope" in out.stderr


@pytest.mark.parametrize("nodes", ["0", "6000"])
def test_lab_node_count_bounds(tmp_path, nodes):
    out = run(["lab", "--nodes", nodes, "--kubeconfig-out", str(tmp_path / "kc")], tmp_path)
    assert out.returncode == 4 and "--nodes must be from 1 to 5000" in out.stderr


def test_config_prints_effective_values(tmp_path):
    out = run(["config"], tmp_path, {"AKSNET_UI_REFRESH_INTERVAL": "0.5"})
    assert out.returncode == 0
    assert "refresh_interval = 0.5  # from env AKSNET_UI_REFRESH_INTERVAL" in out.stdout
    assert "AKSNET_KUBE_CONTEXT" in out.stdout and "no file read" in out.stdout


def test_config_is_toml_that_reads_back_with_each_origin(tmp_path):
    """`aksnet-top config` prints TOML: tomllib reads it back to the values in effect, and
    each value says whether it came from the default, the file or the environment."""
    import tomllib

    from probes import config as configmod

    cfg_file = tmp_path / "my.toml"
    cfg_file.write_text(
        '[dns]\nnames = ["kubernetes.default.svc.cluster.local", "mcr.microsoft.com"]\n'
        '[ui]\ntheme = "nord"\n[kube]\ncontext = "ctx \\"quoted\\" \\\\ é"\n'
    )
    out = run(["config", "--config", str(cfg_file)], tmp_path, {"AKSNET_DNS_INTERVAL": "7"})
    assert out.returncode == 0, out.stderr
    doc = tomllib.loads(out.stdout)  # valid TOML, or this raises
    assert doc["dns"]["names"] == ["kubernetes.default.svc.cluster.local", "mcr.microsoft.com"]
    assert doc["kube"]["context"] == 'ctx "quoted" \\ é'
    assert doc["dns"]["interval"] == 7.0 and doc["ui"]["theme"] == "nord"
    assert doc["kube"]["page_size"] == configmod.Config().kube.page_size
    lines, section = {}, ""
    for line in out.stdout.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif " = " in line:
            lines[f"{section}.{line.split(' = ')[0]}"] = line
    assert f"# from file {cfg_file}" in lines["dns.names"] and f"# from file {cfg_file}" in lines["ui.theme"]
    assert "# from env AKSNET_DNS_INTERVAL" in lines["dns.interval"]
    assert "# from default" in lines["kube.page_size"] and "# from default" in lines["egress.interval"]
    assert out.stdout.startswith(f"# aksnet-top configuration in effect; file read: {cfg_file}")
    # saved as a file, it loads to the same configuration
    saved = tmp_path / "saved.toml"
    saved.write_text(out.stdout)
    assert configmod.load(path=saved, env={}) == configmod.load(path=cfg_file, env={"AKSNET_DNS_INTERVAL": "7"})


def test_unknown_theme_is_named_before_the_screen_opens(tmp_path):
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    out = run(["--kubeconfig", str(kubeconfig)], tmp_path, {"AKSNET_UI_THEME": "no-such-theme"})
    assert out.returncode == 4
    assert "ui.theme 'no-such-theme' is not a known theme (known: " in out.stderr and "nord" in out.stderr
    assert "\x1b[?1049h" not in out.stdout  # the alternate screen never opened


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["check", "--bogus"],
        ["lab", "--bogus"],
        ["config", "--bogus"],
        ["agent", "manifest", "--bogus"],
        ["agent", "install", "--interval", "soon"],
        ["agent", "nosuch"],
        ["agent", "run", "--bogus"],
    ],
)
def test_usage_errors_exit_4_in_every_command(tmp_path, args):
    out = run(args, tmp_path)
    assert out.returncode == 4, out.stderr
    assert "error" in out.stderr or "unknown agent command" in out.stderr


def test_bad_config_file_exits_4_in_config_and_check(tmp_path):
    (tmp_path / "cfg" / "aksnet-top").mkdir(parents=True)
    (tmp_path / "cfg" / "aksnet-top" / "config.toml").write_text("[kube]\ncontex = 'x'\n")
    for args in (["config"], ["check", "--demo"]):
        out = run(args, tmp_path)
        assert out.returncode == 4 and "unknown key kube.contex" in out.stderr, args


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["check", "--help"],
        ["lab", "--help"],
        ["config", "--help"],
        ["agent", "--help"],
        ["agent", "manifest", "--help"],
        ["agent", "install", "--help"],
        ["agent", "uninstall", "--help"],
    ],
)
def test_every_help_documents_the_exit_codes(tmp_path, args):
    out = run(args, tmp_path)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # argparse wraps the epilog
    assert "Exit codes: 0 healthy" in text and "3 could not run, 4 usage or configuration error" in text, text


def test_check_help_says_what_its_time_goes_to(tmp_path):
    out = run(["check", "--help"], tmp_path)
    text = " ".join(out.stdout.split())
    assert out.returncode == 0 and "Timing:" in text
    # every knob that moves a check's wall time is named there
    for knob in ("--interval", "--cycles", "--agent-budget", "dns.timeout", "egress.timeout", "--debug"):
        assert knob in text.split("Timing:", 1)[1], knob


def test_version_comes_from_the_package_metadata(tmp_path):
    from importlib.metadata import version

    out = run(["--version"], tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"aksnet-top {version('aksnet-top')}"


def test_a_closed_pipe_is_no_traceback(tmp_path):
    """`aksnet-top config | head -1`: the reader leaves early; exit 0, nothing on stderr."""
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"), PYTHONPATH=str(ROOT))
    code = "import sys; from tui.cli import console_main; sys.argv = ['aksnet-top', 'config']; console_main()"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the reader is gone before the child (still importing) writes a line
    err = p.stderr.read().decode()
    assert p.wait(timeout=30) == 0
    assert "Traceback" not in err and err == ""


def test_every_builtin_scenario_has_its_line_in_help_and_readme():
    from probes.scenarios import BUILTIN

    files = {p.stem for p in (ROOT / "probes" / "lab" / "scenarios").glob("*.yaml")}
    assert set(BUILTIN) == files
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert max(map(len, out.stdout.splitlines())) <= 80  # readable at 80 columns
    listed = {line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert set(BUILTIN) <= listed
    readme = (ROOT / "README.md").read_text()
    assert all(f"| `{name}` |" in readme for name in BUILTIN)


def test_check_names_the_cluster_not_its_node_resource_group():
    from probes.check import cluster_name

    assert cluster_name("", "MC_rg-aks-lab_aks-lab_westeurope") == "aks-lab"
    assert cluster_name("", "MC_my_rg_prod-weu_northeurope") == "prod-weu"  # underscores in the resource group
    assert cluster_name("from-arm", "MC_rg_x_westeurope") == "from-arm"  # ARM's own name first
    assert cluster_name("", "custom-node-rg") == ""  # a node RG named by hand says nothing
