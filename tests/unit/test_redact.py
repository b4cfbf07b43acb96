"""Credentials never shown (probes.redact), library noise off the terminal and into the
--debug log (probes.logsetup), DefaultAzureCredential's dump as one line (credchain)."""

from __future__ import annotations

import io
import json
import logging
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.azure.credchain import summarize
from probes.exitcodes import ExitCode
from probes.logsetup import setup, state_dir
from probes.redact import redact_text, redact_url
from tests.unit.test_cli import run


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://user:password@host:6443", "https://user:***@host:6443"),
        ("https://tok@host/x?a=1", "https://***@host/x?a=1"),
        (
            "https://h/p?sig=abc&sv=1&token=x#access_token=y&z=2",
            "https://h/p?sig=***&sv=1&token=***#access_token=***&z=2",
        ),
        ("https://u:p@[::1]:443/", "https://u:***@[::1]:443/"),
        ("http://a:b@c:d@e/f", "http://a:***@e/f"),
        ("https://h/?x=1&Code=2", "https://h/?x=1&Code=***"),
        ("https://aks-abc.hcp.westeurope.azmk8s.io:443", "https://aks-abc.hcp.westeurope.azmk8s.io:443"),
        ("https://user:***@host", "https://user:***@host"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown
    assert redact_url(shown) == shown


def test_redact_text_keeps_the_sentence():
    text = "API server https://alice:s3cret@aks.example:443 unreachable; see https://x/y?sig=zz. And /api?token=t0k"
    assert redact_text(text) == (
        "API server https://alice:***@aks.example:443 unreachable; see https://x/y?sig=***. And /api?token=***"
    )


SAFE = string.ascii_letters + string.digits + "-._~!$'()*+,;=%"


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "socks5"]),
    user=st.text(SAFE, max_size=12),
    secret=st.text(string.digits, min_size=6, max_size=20),
    host=st.from_regex(r"[a-z]{1,10}(\.[a-z]{1,8}){0,3}(:[0-9]{1,5})?", fullmatch=True),
    path=st.from_regex(r"(/[a-z]{0,8}){0,3}", fullmatch=True),
    param=st.sampled_from(["sig", "token", "code", "access_token", "client_secret", "Signature"]),
    around=st.text(max_size=20).map(lambda s: s.replace("=", "")),
)
def test_no_secret_survives(scheme, user, secret, host, path, param, around):
    secret = "Q" + secret  # no letter Q in host, path or the parameter names
    url = f"{scheme}://{user.replace('Q', '')}:{secret}@{host}{path}?a=1&{param}={secret}&b=2"
    assert secret not in redact_url(url)
    assert secret not in redact_text(f"{around} {url} {around}")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_redaction_never_raises_and_is_idempotent(text):
    once = redact_text(text)
    assert redact_text(once) == once
    assert redact_url(redact_url(text)) == redact_url(text)


CHAIN = (
    "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
    "Attempted credentials:\n"
    "\tEnvironmentCredential: EnvironmentCredential authentication unavailable. Environment variables are not "
    "fully configured.\n"
    "Visit https://aka.ms/azsdk/python/identity/environmentcredential/troubleshoot to troubleshoot this issue.\n"
    "\tManagedIdentityCredential: ManagedIdentityCredential authentication unavailable, no response from the "
    "IMDS endpoint.\n"
    "\tSharedTokenCacheCredential: SharedTokenCacheCredential authentication unavailable. No accounts were found "
    "in the cache.\n"
    "\tAzureCliCredential: Azure CLI not found on path\n"
    "\tAzurePowerShellCredential: PowerShell is not installed\n"
    "\tAzureDeveloperCliCredential: Azure Developer CLI could not be found. Please visit https://aka.ms/azure-dev "
    "for installation instructions and then,once installed, authenticate to your Azure account using 'azd auth "
    "login'.\n"
    "To mitigate this issue, please refer to the troubleshooting guidelines here at "
    "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot."
)


def test_credential_chain_is_one_line():
    line = summarize(CHAIN)
    assert "\n" not in line and line.startswith("tried EnvironmentCredential: environment variables are not")
    for name in ("ManagedIdentityCredential", "SharedTokenCacheCredential", "AzureCliCredential: azure CLI not found"):
        assert name in line
    assert "aka.ms" not in line.split("AzureDeveloperCliCredential")[0]
    assert summarize("just one\nand more") == "just one" and summarize("") == ""


def test_terminal_gets_our_warnings_only_redacted_and_one_line(tmp_path):
    out = io.StringIO()
    try:
        path = setup("aksnet-top check", terminal=True, debug=True, env={"XDG_STATE_HOME": str(tmp_path)}, stream=out)
        logging.getLogger("urllib3.connectionpool").warning("Retrying after connection broken: /api?token=s3cr3t")
        logging.getLogger("azure.identity._credentials.chained").warning(CHAIN)
        logging.getLogger("probes.kube.source").warning("cannot reach https://bob:hunter22@aks.example\nsecond line")
        logging.getLogger("probes.kube.source").info("not for the terminal")
    finally:
        setup("test", terminal=False, debug=False)
    assert out.getvalue() == "aksnet-top check: cannot reach https://bob:***@aks.example second line\n"
    assert path is not None and path.parent == tmp_path / "aksnet-top"
    log = path.read_text()
    assert "urllib3.connectionpool" in log and "Attempted credentials" in log and "not for the terminal" in log
    assert "s3cr3t" not in log and "hunter22" not in log


def test_state_dir_default(tmp_path):
    assert state_dir({"HOME": str(tmp_path)}) == tmp_path / ".local" / "state" / "aksnet-top"
    assert state_dir({"HOME": "/x", "XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "aksnet-top"


KC = """\
apiVersion: v1
kind: Config
current-context: c
clusters:
- name: c
  cluster: {server: "http://alice:s3cretpw@127.0.0.1:1/?token=tok123"}
contexts:
- name: c
  context: {cluster: c, user: u}
users:
- name: u
  user: {token: abc}
"""


@pytest.mark.parametrize("debug", [False, True])
def test_check_shows_no_credential_and_no_library_noise(tmp_path, debug):
    """The issue's case: a server URL with user:password@ was printed as-is, and 15 lines
    of urllib3 "Retrying" reached stderr."""
    kc = tmp_path / "kc"
    kc.write_text(KC)
    state = tmp_path / "state"
    args = ["check", "--kubeconfig", str(kc), "--output", "json"] + (["--debug"] if debug else [])
    out = run(args, tmp_path, {"AKSNET_KUBE_REQUEST_TIMEOUT": "1", "XDG_STATE_HOME": str(state)})
    assert out.returncode == ExitCode.COULD_NOT_RUN
    report = json.loads(out.stdout)
    assert report["target"] == "c @ http://alice:***@127.0.0.1:1/?token=***"
    assert report["errors"] and all("alice:***@" in e for e in report["errors"])
    for text in (out.stdout, out.stderr):
        assert "s3cretpw" not in text and "tok123" not in text
    assert "Retrying" not in out.stderr and "urllib3" not in out.stderr
    logs = list((state / "aksnet-top").glob("debug-*.log")) if state.exists() else []
    if debug:
        (log,) = logs
        assert out.stderr.splitlines() == [f"aksnet-top: debug log: {log}"]
        text = log.read_text()
        assert "urllib3" in text and "s3cretpw" not in text and "tok123" not in text
    else:
        assert out.stderr == "" and logs == []


def test_app_debug_says_where_its_log_is(tmp_path):
    state = tmp_path / "state"
    out = run(["--debug", "--kubeconfig", str(tmp_path / "none")], tmp_path, {"XDG_STATE_HOME": str(state)})
    assert out.returncode == ExitCode.COULD_NOT_RUN
    (log,) = (state / "aksnet-top").glob("debug-*.log")
    assert out.stderr.splitlines()[0] == f"aksnet-top: debug log: {log}"
    assert "no kubeconfig found" in out.stderr
    for args in (["--help"], ["check", "--help"]):
        assert "--debug" in run(args, tmp_path).stdout


def test_debug_log_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = run(["check", "--demo", "--debug"], tmp_path, {"XDG_STATE_HOME": str(blocker)})
    assert out.returncode == ExitCode.COULD_NOT_RUN
    assert out.stderr.startswith("aksnet-top: --debug: cannot write a log in ") and out.stderr.count("\n") == 1
