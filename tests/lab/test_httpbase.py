"""The shared HTTP base of the lab's two servers (probes/lab/httpbase.py): what the stdlib
answers before a handler runs is JSON in each server's dialect, with a status line."""

from __future__ import annotations

import socket

import orjson
import pytest

from probes.lab.apiserver import LabApiServer
from probes.lab.arm import LAB_TOKEN, LabArmServer


def _exchange(port: int, raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes: (status line, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(raw)
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return lines[0], headers, body


@pytest.fixture(params=["apiserver", "arm"])
def server(request):
    srv = (LabApiServer if request.param == "apiserver" else LabArmServer)("healthy").start()
    yield request.param, srv
    srv.stop()


def _error_text(kind: str, body: bytes) -> tuple[int | str, str]:
    doc = orjson.loads(body)
    if kind == "apiserver":
        assert doc["kind"] == "Status" and doc["status"] == "Failure"
        return doc["code"], doc["message"]
    return doc["error"]["code"], doc["error"]["message"]


@pytest.mark.parametrize(
    "raw, code, words",
    [
        (b"GARBAGE\r\n\r\n", 400, "Bad request syntax"),
        (b"GET / HTTP/1.1 extra\r\n\r\n", 400, "Bad request version"),
        (b"GET / HTTP/9.9\r\n\r\n", 505, "Invalid HTTP version"),
        (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unsupported method"),
    ],
)
def test_stdlib_errors_are_json_with_a_status_line(server, raw, code, words):
    kind, srv = server
    status, headers, body = _exchange(srv.port, raw)
    assert status.startswith(f"HTTP/1.1 {code} "), status
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    got_code, message = _error_text(kind, body)
    assert words in message
    if kind == "apiserver":
        assert got_code == code
    else:
        assert isinstance(got_code, str) and got_code


def test_a_bad_request_leaves_the_server_serving(server):
    kind, srv = server
    _exchange(srv.port, b"GARBAGE\r\n\r\n")
    path = (
        "/healthz" if kind == "apiserver" else "/subscriptions/x/providers/microsoft.containerservice/managedclusters"
    )
    auth = b"" if kind == "apiserver" else b"Authorization: Bearer " + LAB_TOKEN.encode() + b"\r\n"
    status, _, _ = _exchange(
        srv.port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth + b"\r\n"
    )
    assert status.split()[1] in ("200", "404")


def test_every_answer_is_recorded_before_its_body(server):
    """A client that holds an answer finds it in the request log (no race with the count)."""
    kind, srv = server
    path = (
        b"/api/v1/nodes"
        if kind == "apiserver"
        else b"/subscriptions/nope/providers/microsoft.containerservice/managedclusters"
    )
    auth = b"" if kind == "apiserver" else b"Authorization: Bearer " + LAB_TOKEN.encode() + b"\r\n"
    for i in range(20):
        status, _, _ = _exchange(
            srv.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth + b"\r\n"
        )
        assert len(srv.requests) == i + 1, status


def test_stop_closes_open_keepalive_connections(server):
    kind, srv = server
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += c.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 ")
        length = next(
            int(v)
            for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n")[1:])
            if k.lower() == b"content-length"
        )
        while len(body) < length:  # headers and body are separate writes
            body += c.recv(65536)
        srv.stop()
        assert c.recv(65536) == b""
    finally:
        c.close()
