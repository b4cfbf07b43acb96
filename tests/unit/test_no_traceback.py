"""Bad input on the real entry point: one line on stderr, the documented exit code, never
a traceback (issue 12: each of these printed one)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probes.exitcodes import EPILOG, ExitCode
from tests.unit.test_cli import ROOT, run

HEALTHY = (ROOT / "probes" / "lab" / "scenarios" / "healthy.yaml").read_text()


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_non_utf8_config_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b'[ui]\ntheme = "\xff\xfe"\n')
    out = run(["config", "--config", str(cfg)], tmp_path)
    assert out.returncode == ExitCode.USAGE
    assert "not UTF-8" in one_line(out.stderr)


def test_integer_over_4300_digits_in_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[kube]\npage_size = " + "9" * 4400 + "\n")
    for args in (["config", "--config", str(cfg)], ["check", "--demo", "--config", str(cfg)]):
        out = run(args, tmp_path)
        assert out.returncode == ExitCode.USAGE, args
        assert "4300 digits" in one_line(out.stderr)


@pytest.mark.parametrize(
    "body", ["[kube\n", "kube = 3\n", "[kube]\nrequest_timeout = nan\n", "[kube]\npage_size = -1\n"]
)
def test_broken_or_absurd_config(tmp_path, body):
    cfg = tmp_path / "c.toml"
    cfg.write_text(body)
    out = run(["config", "--config", str(cfg)], tmp_path)
    assert out.returncode == ExitCode.USAGE
    assert str(cfg) in one_line(out.stderr)


def test_directory_as_config_file(tmp_path):
    out = run(["config", "--config", str(tmp_path)], tmp_path)
    assert out.returncode == ExitCode.USAGE and "cannot read" in one_line(out.stderr)


KC_2024 = """\
apiVersion: v1
kind: Config
current-context: 2024
clusters:
- name: 2024
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: 2024
  context: {cluster: 2024, user: 2024}
users:
- name: 2024
  user: {token: abc}
"""


def test_kubeconfig_with_a_number_for_a_context_name(tmp_path):
    kc = tmp_path / "kc"
    kc.write_text(KC_2024)
    for args in (["--kubeconfig", str(kc), "--context", "prod"], ["check", "--kubeconfig", str(kc)]):
        out = run(args, tmp_path)
        assert out.returncode == ExitCode.COULD_NOT_RUN, args
        line = one_line(out.stderr)
        assert "clusters[0].name is 2024" in line and 'name: "2024"' in line


@pytest.mark.parametrize(
    "body",
    [b"a: [\n", b"\xff\xfe\x00", b"[" * 5000, b"- 1\n- 2\n", b"clusters: 3\n"],
    ids=["broken-yaml", "binary", "deep", "list", "clusters-not-a-list"],
)
def test_broken_kubeconfig_is_one_line(tmp_path, body):
    kc = tmp_path / "kc"
    kc.write_bytes(body)
    out = run(["check", "--kubeconfig", str(kc)], tmp_path)
    assert out.returncode == ExitCode.COULD_NOT_RUN
    assert str(kc) in one_line(out.stderr)


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_lab_port_out_of_range(tmp_path, port):
    out = run(["lab", "--port", port, "--kubeconfig-out", str(tmp_path / "kc")], tmp_path)
    assert out.returncode == ExitCode.USAGE
    assert "--port must be from 0" in one_line(out.stderr)


@pytest.mark.parametrize("age", ["18446744073709551615", "1e400", "-5", "99999999999d", ".nan"])
def test_scenario_with_an_absurd_age(tmp_path, age):
    sc = tmp_path / "old.yaml"
    sc.write_text(HEALTHY.replace("age: 45d", f"age: {age}"))
    out = run(["lab", "--scenario", str(sc), "--kubeconfig-out", str(tmp_path / "kc")], tmp_path)
    assert out.returncode == ExitCode.USAGE
    assert "old.yaml: cluster.age: expected a duration" in one_line(out.stderr)


def test_scenario_with_an_absurd_age_in_check_demo(tmp_path):
    sc = tmp_path / "old.yaml"
    sc.write_text(HEALTHY.replace("age: 45d", "age: 18446744073709551615"))
    out = run(["check", "--demo", "--scenario", str(sc)], tmp_path)
    assert out.returncode == ExitCode.USAGE and "cluster.age" in one_line(out.stderr)


@pytest.mark.parametrize("body", [b"\xff\xfe\x00", b"a: " + b"[" * 5000, b""], ids=["binary", "deep", "empty"])
def test_unreadable_scenario_files(tmp_path, body):
    sc = tmp_path / "s.yaml"
    sc.write_bytes(body)
    out = run(["lab", "--scenario", str(sc), "--kubeconfig-out", str(tmp_path / "kc")], tmp_path)
    assert out.returncode == ExitCode.USAGE and "s.yaml" in one_line(out.stderr)


@pytest.mark.parametrize(
    "flag",
    [
        ["--interval", "0.001"],
        ["--interval", "nan"],
        ["--egress-interval", "1e9"],
        ["--timeout", "inf"],
        ["--results", "1000000"],
        ["--results", "3"],
        ["--port", "70000"],
    ],
)
def test_agent_flags_have_floors_and_ceilings(tmp_path, flag):
    out = run(["agent", "run", "--node", "n1", "--bind", "127.0.0.1", "--port", "0", *flag], tmp_path)
    assert out.returncode == ExitCode.USAGE
    assert re.search(rf"{flag[0]} \(or \$AKSNET_AGENT_\w+\) must be from", out.stderr), out.stderr


def test_agent_env_bounds(tmp_path):
    out = run(["agent", "run", "--node", "n1"], tmp_path, {"AKSNET_AGENT_INTERVAL": "0.001"})
    assert out.returncode == ExitCode.USAGE and "$AKSNET_AGENT_INTERVAL" in out.stderr


def test_agent_run_help_lists_the_exit_codes(tmp_path):
    out = run(["agent", "run", "--help"], tmp_path)
    assert out.returncode == 0 and EPILOG in " ".join(out.stdout.split())


def test_readme_exit_code_table_matches_the_code():
    """One table: the README's rows are ExitCode's values, with the --help words in them."""
    readme = (Path(ROOT) / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d) \| ([^|]+) \|$", readme, re.M))
    assert sorted(int(k) for k in rows) == sorted(int(c) for c in ExitCode)
    words = dict(re.findall(r"(\d) ([a-z ]+?)(?: \(or done\))?(?:,|\.)", EPILOG))
    assert sorted(words) == sorted(rows)
    for code, text in words.items():
        assert rows[code].startswith(text), (code, rows[code], text)


@pytest.mark.parametrize(
    "cluster, words",
    [
        (
            '{server: "https://127.0.0.1:1", certificate-authority-data: "Zm9v"}',
            "certificate-authority-data is not PEM",
        ),
        ('{server: "https://[::1"}', "is not a URL"),
        ('{server: "https://alice:pw0rd@h:99999"}', "'https://alice:***@h:99999' is not a URL"),
        ('{server: "ftp://x"}', "not an http(s) URL"),
    ],
)
def test_kubeconfig_errors_before_connecting(tmp_path, cluster, words):
    kc = tmp_path / "kc"
    kc.write_text(
        f"current-context: c\nclusters:\n- name: c\n  cluster: {cluster}\ncontexts:\n- name: c\n"
        "  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: t}\n"
    )
    out = run(["check", "--kubeconfig", str(kc)], tmp_path)
    assert out.returncode == ExitCode.COULD_NOT_RUN
    line = one_line(out.stderr)
    assert words in line and "pw0rd" not in line
