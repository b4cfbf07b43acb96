"""The shared-view socket's messages: a 4-byte big-endian length, then msgpack.

Owner to viewer (a dict with ``k``):

- ``hello``: ``{"k": "hello", "proto": 1, "pid", "banner", "target"}``, first;
- ``key``:   the whole state, channel -> value (`probes.record.codec`), and ``n``;
- ``d``:     one frame's changes, channel -> value (None: gone), applied to the state;
- ``n``:     how many screens show this engine (the owner's and the viewers');
- ``bye``:   the owner is exiting, ``why``;
- ``said``:  the answer to this viewer's ``ask``: ``{"id", "what", "text"}`` (one line).

A message is encoded once and the same bytes go to every viewer (``said`` to the one
that asked). Viewer to owner:

- ``follow`` / ``unfollow``: ``{"kind": "dns"|"egress", "key": [...]}``, a detail
  screen's row;
- ``ask``: ``{"what": "snat.refresh", "id": n}``, a key that asks the engine to act
  (`probes.share.asks`: rate-limited whoever asks).
"""

from __future__ import annotations

import select
import socket
import struct
from typing import Any

import msgspec

PROTO = 1
MAX_MESSAGE = 256 * 1024 * 1024  # a keyframe of 5,000 nodes with every probe row is ~10 MB
_HEAD = struct.Struct(">I")
_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


class WireError(Exception):
    """The other end sent something that is not a message, or went away."""


def encode(msg: dict[str, Any]) -> bytes:
    body = _enc.encode(msg)
    return _HEAD.pack(len(body)) + body


def send(sock: socket.socket, msg: dict[str, Any]) -> None:
    sock.sendall(encode(msg))


class Reader:
    """Reads whole messages from a socket (blocking, with the socket's timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.received = 0  # bytes, for benchmarks

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise WireError("the engine's owner closed the connection")
            self.received += len(chunk)
            self.buf += chunk

    def pending(self) -> bool:
        """Is there more to read without waiting (a whole message buffered, or bytes on
        the socket)?"""
        if len(self.buf) >= _HEAD.size and len(self.buf) >= _HEAD.size + _HEAD.unpack_from(self.buf)[0]:
            return True
        try:
            ready, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(ready)

    def read(self) -> dict[str, Any]:
        self._fill(_HEAD.size)
        (size,) = _HEAD.unpack_from(self.buf)
        if size > MAX_MESSAGE:
            raise WireError(f"a message of {size} bytes: not an aksnet-top engine")
        self._fill(_HEAD.size + size)
        body = bytes(self.buf[_HEAD.size : _HEAD.size + size])
        del self.buf[: _HEAD.size + size]
        try:
            msg = _dec.decode(body)
        except msgspec.DecodeError as e:
            raise WireError(f"an unreadable message: {e}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("k"), str):
            raise WireError("a message without a kind: not an aksnet-top engine")
        return msg
