"""The recording's SQLite tables (one file per run; `FORMAT` names this layout).

keyframes  the whole state (every channel) every `keyframe_every` seconds: a seek reads
           one keyframe and the deltas after it, never the whole run
deltas     one row per frame that changed something: zlib(msgpack({channel: value|None}))
findings   one row per finding: when it started and (once cleared) ended
marks      what a person calls a change (a node added, a finding started): the timeline
meta       what was recorded (command, target, times, frames dropped)
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

FORMAT = "aksnet-top/recording/v1"

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keyframes (t REAL NOT NULL, blob BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS keyframes_t ON keyframes (t);
CREATE TABLE IF NOT EXISTS deltas (t REAL NOT NULL, blob BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS deltas_t ON deltas (t);
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, rule TEXT NOT NULL, fault TEXT,
    severity TEXT NOT NULL, subject TEXT NOT NULL, cause TEXT NOT NULL,
    start REAL NOT NULL, "end" REAL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (t REAL NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS marks_t ON marks (t);
"""

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


def pack(obj: Any) -> bytes:
    return zlib.compress(_enc.encode(obj), 6)


def unpack(blob: bytes) -> Any:
    return _dec.decode(zlib.decompress(blob))
