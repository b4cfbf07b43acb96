"""Lists and watches ask for gzip and decode it, against a tiny gzip-serving server
(real API servers compress answers above 128 KiB, and kubectl asks; the lab does too: tests/lab)."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
import yaml

from probes.config import KubeConfig
from probes.engine.store import NODES, Store
from probes.kube import connect
from probes.kube.model import SourceState
from probes.kube.reflector import Malformed, classify
from probes.kube.source import KINDS, Reflector


def node(name: str, rv: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "resourceVersion": str(rv), "labels": {"kubernetes.azure.com/agentpool": "pool1"}},
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.224.0.4"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "images": [{"names": ["mcr.microsoft.com/x:1"], "sizeBytes": 1}],
        },
    }


class _Gzip(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    accept_encoding: ClassVar[list[str]] = []
    corrupt: ClassVar[bool] = False  # send a list whose gzip stream is cut short and damaged

    def do_GET(self) -> None:
        type(self).accept_encoding.append(self.headers.get("Accept-Encoding", ""))
        wants = "gzip" in self.headers.get("Accept-Encoding", "")
        if "watch=1" in self.path:
            self._watch(wants)
            return
        doc = {
            "kind": "NodeList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "10"},
            "items": [node(f"aks-pool1-{i}-vmss00000{i}", i) for i in range(3)],
        }
        body = orjson.dumps(doc)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if wants:
            body = gzip.compress(body)
            if type(self).corrupt:
                body = body[:10] + bytes(b ^ 0x5A for b in body[10:40])
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _watch(self, wants: bool) -> None:
        """One gzip stream over chunked encoding, flushed per event (as the API server does)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        if wants:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        comp = zlib.compressobj(wbits=31) if wants else None
        for i, typ in enumerate(("ADDED", "MODIFIED")):
            ev = orjson.dumps({"type": typ, "object": node("aks-pool1-9-vmss000009", 20 + i)}) + b"\n"
            data = comp.compress(ev) + comp.flush(zlib.Z_SYNC_FLUSH) if comp else ev
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        if comp:
            tail = comp.flush()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gzip_server(tmp_path: Path) -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Gzip)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Gzip.accept_encoding = []
    _Gzip.corrupt = False
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    kc = tmp_path / "kc"
    kc.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "gz",
                "clusters": [{"name": "gz", "cluster": {"server": url}}],
                "users": [{"name": "gz", "user": {"token": "x"}}],
                "contexts": [{"name": "gz", "context": {"cluster": "gz", "user": "gz"}}],
            }
        )
    )
    try:
        yield str(kc)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_list_asks_for_gzip_and_decodes_it(gzip_server):
    api, _ = connect.load(gzip_server, "", env={})
    try:
        resp = connect.get(api, "/api/v1/nodes", [("limit", "500")])
        assert resp.headers.get("Content-Encoding") == "gzip"
        doc = orjson.loads(resp.data)
        resp.release_conn()
        assert len(doc["items"]) == 3
        assert _Gzip.accept_encoding == ["gzip"]
    finally:
        api.close()


def test_reflector_lists_and_watches_through_gzip(gzip_server):
    api, _ = connect.load(gzip_server, "", env={})
    store, stop = Store(), threading.Event()
    nodes = next(k for k in KINDS if k.name == "nodes")
    r = Reflector(nodes, api, store, stop, "gz", KubeConfig(kubeconfig=gzip_server))
    try:
        rv = r.list()
        assert rv == "10" and len(store.snapshot().topology.nodes) == 3
        assert r.watch(rv) == "21"  # both gzip-compressed events were decoded, line by line
        assert store.snapshot().topology.node("aks-pool1-9-vmss000009") is not None
        assert all(e == "gzip" for e in _Gzip.accept_encoding) and len(_Gzip.accept_encoding) == 2
        assert NODES in store.synced()
    finally:
        stop.set()
        api.close()


def test_a_list_whose_gzip_does_not_inflate_is_a_malformed_answer(gzip_server):
    """A proxy that damages the compressed body: the kind says a malformed answer (not an
    unreachable server, not a traceback) and its earlier data stays."""
    _Gzip.corrupt = True
    api, _ = connect.load(gzip_server, "", env={})
    store, stop = Store(), threading.Event()
    nodes = next(k for k in KINDS if k.name == "nodes")
    r = Reflector(nodes, api, store, stop, "gz", KubeConfig(kubeconfig=gzip_server))
    try:
        with pytest.raises(Malformed, match="gzip body does not inflate"):
            r.list()
        state, message, _detail, fatal = classify(Malformed("x"), nodes, "gz")
        assert state is SourceState.ERROR and message.startswith("malformed answer for nodes") and not fatal
    finally:
        stop.set()
        api.close()
