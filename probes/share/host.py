"""The owner's side of a shared engine: every viewer is sent the frames' changes.

The app's publisher offers each frame (`offer`: O(1), never blocks). While at least one
viewer is attached, the host's thread diffs the frames into channels with the flight
recorder's codec (`probes.record.codec.Differ`), encodes each change once and queues the
same bytes for every viewer; with none attached it does nothing. Each viewer has a
bounded queue and a sender thread of its own: a viewer that reads slower than the frames
come (a stopped terminal, a slow SSH link) overflows its queue, which is then emptied and
the viewer is sent the whole state with the next frame — it drops to the latest, and the
engine and the other viewers never wait for it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import msgspec

from probes.dns.result import ProbeKey
from probes.egress.result import EgressKey
from probes.engine.frame import Frame
from probes.record import redact
from probes.record.codec import Differ, key_text
from probes.share import wire
from probes.share.place import Ownership, peer_uid
from probes.share.rows import ProbeRows

log = logging.getLogger(__name__)

PATH = "path"  # our channel beside the codec's: the Azure network path (egress detail)
DETAILS = "x\tdetails."  # + "dns" / "egress": the followed rows' last results
KEY_TYPES: dict[str, Any] = {"dns": ProbeKey, "egress": EgressKey}
MAX_VIEWERS = 32


def path_row(data: Any) -> Any:
    return redact.scrub(msgspec.to_builtins(data, enc_hook=repr))


def details_row(details: Mapping[Hashable, tuple[Any, ...]]) -> dict[str, Any]:
    """key_text -> the row's last results, their free text redacted."""
    out = {}
    for key, results in details.items():
        rows = []
        for r in results:
            body = msgspec.to_builtins(r, enc_hook=repr)
            for f in ("error", "raw"):
                if body.get(f):
                    body[f] = redact.text(body[f])
            rows.append(body)
        out[key_text(key)] = rows
    return out


class _Viewer:
    """One attached viewer: its socket, its bounded queue of encoded messages, its sender."""

    def __init__(self, host: Host, sock: socket.socket, limit: int) -> None:
        self.host = host
        self.sock = sock
        self.limit = limit
        self.q: deque[bytes] = deque()
        self.cv = threading.Condition()
        self.need_key = True  # the whole state first, and again after an overflow
        self.closed = False
        self.dropped = 0  # times the queue overflowed
        self.sent = 0  # bytes
        self.follows: set[tuple[str, Any]] = set()  # rows its detail screens follow
        self.thread = threading.Thread(target=self._run, name="share-viewer", daemon=True)
        self.listener = threading.Thread(target=self._listen, name="share-viewer-in", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.listener.start()

    def _listen(self) -> None:
        """What the viewer asks: follow / unfollow a row (its detail screens). Its end of
        the socket closing is also how its leaving is noticed at once."""
        reader = wire.Reader(self.sock)
        try:
            while True:
                msg = reader.read()
                self.host._request(self, msg)
        except (OSError, wire.WireError):
            pass
        self.close()
        self.thread.join(5.0)  # the sender has let go of the socket (it shut it down)
        try:
            self.sock.close()
        except OSError:
            pass

    def push(self, data: bytes, force: bool = False) -> None:
        with self.cv:
            if self.closed:
                return
            if len(self.q) >= self.limit and not force:
                self.q.clear()  # what it has not read is stale: the next frame sends it everything
                self.need_key = True
                self.dropped += 1
                return
            self.q.append(data)
            self.cv.notify()

    def close(self) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify()

    def _run(self) -> None:
        try:
            while True:
                with self.cv:
                    while not self.q and not self.closed:
                        self.cv.wait()
                    if not self.q:
                        break
                    data = self.q.popleft()
                self.sock.sendall(data)
                self.sent += len(data)
        except OSError:
            pass  # the viewer left
        finally:
            with self.cv:
                self.closed = True
                self.q.clear()
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # its listener sees the end too
            except OSError:
                pass
            self.host._gone(self)


class Host:
    def __init__(
        self,
        owned: Ownership,
        *,
        banner: str = "",
        target: str = "",
        queue_size: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.owned = owned
        self.banner = banner
        self.target = target
        self.queue_size = queue_size
        self.clock = clock
        self._viewers: list[_Viewer] = []
        self._lock = threading.Lock()
        self._inbox: Frame | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._differ: Differ | None = None
        self._rows: ProbeRows | None = None
        self._last: Frame | None = None
        self._last_path: Any = None
        self.follower: Any = None  # the publisher: follow/unfollow for the viewers' detail screens
        self.asks: Any = None  # probes.share.asks.Asks: what the viewers' keys ask the engine to do
        self._sent_details: dict[str, Any] = {"dns": None, "egress": None}
        self.messages = 0  # deltas and keyframes encoded (benchmarks)
        self.refused = 0  # connections from another user
        owned.listener.settimeout(0.5)
        self._accepter = threading.Thread(target=self._accept, name="share-accept", daemon=True)
        self._pump = threading.Thread(target=self._run, name="share-pump", daemon=True)
        self._accepter.start()
        self._pump.start()

    # --- what the app sees -------------------------------------------------------------------
    @property
    def viewers(self) -> int:
        with self._lock:
            return len(self._viewers)

    @property
    def screens(self) -> int:
        """How many screens show this engine: the owner's and the viewers'."""
        return 1 + self.viewers

    def offer(self, frame: Frame) -> None:
        """Called with every frame on the publisher's thread; O(1), never blocks."""
        self._inbox = frame
        self._wake.set()

    def tee(self, on_frame: Callable[[Frame], None]) -> Callable[[Frame], None]:
        def both(frame: Frame) -> None:
            self.offer(frame)
            on_frame(frame)

        return both

    def close(self, why: str = "the owner exited", timeout: float = 1.0) -> None:
        """Tell every viewer why, stop listening, remove the socket, free the lock."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._accepter.join(timeout)
        self._pump.join(timeout)
        bye = wire.encode({"k": "bye", "why": why, "at": self.clock()})
        with self._lock:
            viewers = list(self._viewers)
        for v in viewers:
            v.push(bye, force=True)
            v.close()
        end = time.monotonic() + timeout
        for v in viewers:
            v.thread.join(max(0.0, end - time.monotonic()))
            try:
                v.sock.shutdown(socket.SHUT_RDWR)  # a sender stuck on a viewer that reads nothing
            except OSError:
                pass
        self.owned.release()

    # --- the threads -----------------------------------------------------------------------
    def _accept(self) -> None:
        listener = self.owned.listener
        hello = {
            "k": "hello",
            "proto": wire.PROTO,
            "pid": os.getpid(),
            "banner": self.banner,
            "target": redact.text(self.target),
        }
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.1)
                continue
            try:
                conn.settimeout(None)
                if peer_uid(conn) != os.getuid():  # the socket is 0600 in a 0700 directory: belt and braces
                    self.refused += 1
                    conn.close()
                    continue
            except OSError:
                conn.close()
                continue
            with self._lock:
                if len(self._viewers) >= MAX_VIEWERS:
                    conn.close()
                    continue
                v = _Viewer(self, conn, self.queue_size)
                v.push(wire.encode(hello))
                self._viewers.append(v)
                count = len(self._viewers)
            v.start()
            log.info("a viewer attached (%d now)", count)
            self._broadcast_count()
            self._wake.set()

    def follow_through(self, publisher: Any) -> None:
        """Where the viewers' detail screens' follow requests go (the app's publisher)."""
        self.follower = publisher

    def asks_through(self, asks: Any) -> None:
        """Where the viewers' asks go (the owner's `probes.share.asks.Asks`: the same gate
        as the owner's own keys)."""
        self.asks = asks

    def _ask(self, v: _Viewer, msg: dict[str, Any]) -> None:
        what, rid = msg.get("what"), msg.get("id")
        if not isinstance(what, str) or not isinstance(rid, int) or len(what) > 64:
            return
        asks = self.asks
        text = "this engine takes no asks from viewers" if asks is None else asks.answer(what)
        v.push(wire.encode({"k": "said", "id": rid, "what": what, "text": text}), force=True)

    def _request(self, v: _Viewer, msg: dict[str, Any]) -> None:
        if msg.get("k") == "ask":
            self._ask(v, msg)
            return
        k, kind = msg.get("k"), msg.get("kind")
        if k not in ("follow", "unfollow") or kind not in KEY_TYPES or not isinstance(msg.get("key"), list):
            return
        parts = msg["key"]
        if not all(isinstance(x, (str, int)) for x in parts):  # a key is a few names: anything else is not ours
            return
        try:
            key = KEY_TYPES[kind](*parts)
        except TypeError:
            return
        fn = getattr(self.follower, k, None)
        if fn is None:
            return
        if k == "follow" and (kind, key) not in v.follows:
            v.follows.add((kind, key))
            fn(kind, key)
        elif k == "unfollow" and (kind, key) in v.follows:
            v.follows.discard((kind, key))
            fn(kind, key)

    def _gone(self, v: _Viewer) -> None:
        with self._lock:
            if v not in self._viewers:
                return
            self._viewers.remove(v)
        unfollow = getattr(self.follower, "unfollow", None)
        if unfollow is not None:
            for kind, key in list(v.follows):
                unfollow(kind, key)
        v.follows.clear()
        if not self._stop.is_set():
            self._broadcast_count()

    def _broadcast_count(self) -> None:
        with self._lock:
            viewers = list(self._viewers)
        msg = wire.encode({"k": "n", "n": 1 + len(viewers)})
        for v in viewers:
            v.push(msg, force=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._step()
            except Exception:  # noqa: BLE001 - a frame the codec cannot take: the next one tries again
                log.exception("the shared view's frame could not be sent")

    def _details(self, state: dict[str, Any], changes: dict[str, Any], kind: str, view: Any) -> None:
        """The followed rows' last results (what a detail screen lists), as `details_row`."""
        details = view.details if view is not None else None
        if details is self._sent_details[kind]:
            return
        self._sent_details[kind] = details
        chan = DETAILS + kind
        row = details_row(details) if details else None
        if row is None:
            if state.pop(chan, None) is not None:
                changes[chan] = None
        else:
            state[chan] = changes[chan] = row

    def _step(self) -> None:
        with self._lock:
            viewers = list(self._viewers)
        if not viewers:  # nobody attached: no diffing at all
            self._differ, self._rows, self._last, self._last_path = None, None, None, None
            self._sent_details = {"dns": None, "egress": None}
            return
        frame = self._inbox
        if frame is None:
            return
        need = [v for v in viewers if v.need_key]
        if frame is self._last and not need:
            return
        t = self.clock()
        differ, rows = self._differ, self._rows
        if differ is None or rows is None:
            differ, rows = self._differ, self._rows = Differ(), ProbeRows()
        delta = None
        if frame is not self._last:
            # the codec's channels for all but the probe rows, which go out as they change
            ch = differ.step(t, dataclasses.replace(frame, dns=None, egress=None))
            rows.step(differ.state, ch.channels, "dns", frame.dns)
            rows.step(differ.state, ch.channels, "egress", frame.egress)
            data = frame.path.data if frame.path is not None else None
            if data is not self._last_path:
                self._last_path = data
                row = path_row(data) if data is not None else None
                if row is None:
                    if differ.state.pop(PATH, None) is not None:
                        ch.channels[PATH] = None
                else:
                    differ.state[PATH] = row
                    ch.channels[PATH] = row
            for kind, view in (("dns", frame.dns), ("egress", frame.egress)):
                self._details(differ.state, ch.channels, kind, view)
            self._last = frame
            if ch.channels:
                delta = wire.encode({"k": "d", "t": t, "c": ch.channels})
                self.messages += 1
        key = None
        if need:
            key = wire.encode({"k": "key", "t": t, "s": differ.state, "n": 1 + len(viewers)})
            self.messages += 1
        for v in viewers:
            if v.need_key:
                if key is not None:
                    v.need_key = False
                    v.push(key)
            elif delta is not None:
                v.push(delta)
