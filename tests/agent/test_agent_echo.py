"""The agent's egress-IP check against an echo endpoint on loopback (the lab's, and a
broken one): what the endpoint saw travels to the app in the agent's answer."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from probes.agent.core import Agent, settings_for
from probes.agent.echo import check_echo_url, fetch_echo, parse_echo
from probes.agent.wire import AgentDataError, decode, encode
from probes.kube.model import node_vantage
from probes.lab.echo import LabEcho, lab_egress_ip
from probes.lab.scenario import load_scenario
from tests.agent.agent_helpers import until

NODE = "aks-nodepool1-12345678-vmss000001"


@pytest.mark.parametrize(
    ("body", "ip"),
    [
        (b"20.93.1.2\n", "20.93.1.2"),
        (b'{"ip": "20.93.1.2"}', "20.93.1.2"),
        (b'{"origin": "20.93.1.2, 10.0.0.1"}', "20.93.1.2"),  # httpbin: the client first
        (b"2001:db8::1", "2001:db8::1"),
    ],
)
def test_parse_echo(body, ip):
    assert parse_echo(body) == ip


def test_parse_echo_and_url_refuse_what_is_not_one():
    with pytest.raises(ValueError, match="names no IP address"):
        parse_echo(b"<html>hello</html>")
    with pytest.raises(ValueError, match="expected http"):
        check_echo_url("ftp://x/")
    with pytest.raises(ValueError):
        settings_for(NODE, echo_url="not a url")


async def test_fetch_from_the_lab_echo_text_and_json():
    with LabEcho(lambda: "20.93.1.2") as echo:
        assert await fetch_echo(echo.url, 2.0) == ("20.93.1.2", "")
        assert await fetch_echo(echo.url + "?format=json", 2.0) == ("20.93.1.2", "")
        assert echo.requests == 2


async def test_fetch_failures_are_said():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ip, err = await fetch_echo(f"http://127.0.0.1:{port}/", 1.0)
    assert ip == "" and err.startswith("echo 127.0.0.1:")

    class NotFound(BaseHTTPRequestHandler):
        def log_message(self, *a):  # type: ignore[no-untyped-def]
            pass

        def do_GET(self):  # type: ignore[no-untyped-def]
            self.send_error(404)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        ip, err = await fetch_echo(f"http://127.0.0.1:{srv.server_address[1]}/", 1.0)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(2)
    assert ip == "" and "404" in err


def test_lab_echo_answers_the_lab_arm_public_ip():
    ip = lab_egress_ip(load_scenario("healthy"))
    assert ip.startswith("20.")


async def test_agent_reports_what_the_echo_saw():
    with LabEcho(lambda: "20.93.1.2") as echo:
        agent = Agent(settings_for(NODE, echo_url=echo.url, aks_defaults=False, egress_interval=5.0))
        await agent.start()
        try:
            await until(lambda: agent.echo_ip != "", what="the echo answer")
        finally:
            assert await agent.stop(1.0)
    rep = decode(encode(agent, 0), node_vantage(NODE))
    assert rep.echo_ip == "20.93.1.2" and rep.echo_error == ""
    # off: no echo in the answer at all
    quiet = Agent(settings_for(NODE, aks_defaults=False))
    assert decode(encode(quiet, 0), node_vantage(NODE)).echo_ip == ""


def test_a_bad_echo_ip_from_an_agent_is_refused_in_one_line():
    import orjson

    agent = Agent(settings_for(NODE, echo_url="http://127.0.0.1:9/", aks_defaults=False))
    agent.echo_ip = "<script>"
    doc = orjson.loads(encode(agent, 0))
    assert doc["echo"]["ip"] == "<script>"
    with pytest.raises(AgentDataError, match="echo ip"):
        decode(orjson.dumps(doc), node_vantage(NODE))
