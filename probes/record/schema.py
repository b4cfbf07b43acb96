"""The recording's SQLite tables (one file per run; `FORMAT` names this layout).

keyframes  the whole state (every channel) every `keyframe_every` seconds or `keyframe_rows`
           changed channels, whichever comes first, and the last delta row it includes
           (`upto`): a seek reads one keyframe and the deltas after it, never the whole run
deltas     one row per batch (a second of frames): zlib(msgpack([[t, {channel: value|None}],
           …])) for the frames that changed something, from t0 to t1; a probe row or a
           SNAT node's row is written as a patch on its previous value (probes.record.codec)
channels   the channels' names: keyframes and deltas name a channel by its id here
evidence   the raw bodies behind a finding, read when it started (probes.record.evidence):
           the Kubernetes objects and ARM resources it names, redacted, zlib(msgpack(body))
findings   one row per finding: when it started and (once cleared) ended
marks      what a person calls a change (a node added, a finding started): the timeline
meta       what was recorded (command, target, times, frames dropped)
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

FORMAT = "aksnet-top/recording/v2"
# formats this version no longer reads, and what to say about them
OLD_FORMATS = {
    "aksnet-top/recording/v1": "recorded by an older aksnet-top (format v1, before compact rows); "
    "replay it with that version",
}

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keyframes (t REAL NOT NULL, upto INTEGER NOT NULL, blob BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS keyframes_t ON keyframes (t);
CREATE TABLE IF NOT EXISTS deltas (t0 REAL NOT NULL, t1 REAL NOT NULL, blob BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS channels (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (
    finding INTEGER NOT NULL, t REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_finding ON evidence (finding);
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
